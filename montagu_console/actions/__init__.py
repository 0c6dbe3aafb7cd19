"""Actions: base backup, nightly recover, science restore and drills, run detached and audited.

The flow: :mod:`plans` turns the config into a list of steps; :mod:`service` checks read-only,
locks and what is already running, records the audit line and starts :mod:`supervisor` as a
detached process that runs the steps and writes ``state_dir/runs/<id>/``; the console and
``runs attach`` follow that directory.
"""
