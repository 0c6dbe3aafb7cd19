"""The stand-in ``bb8`` program for the embedded lab (bb8 is not installable; privateer is the
real one, see ``lab/privateer_lab.py``).

A self-contained script (the standard library plus the Docker SDK and dateutil from the project's
environment) that implements the subset of the real program's command line, messages, exit codes
and on-disk formats described in the facts file, over real rsync and ssh, with the transfers in
throw-away containers like the real tool. ``lab/standin_setup.py`` writes its configs and the
wrapper scripts the lab installs (``LAB/annex/bin/bb8``, ``LAB/science/bin/bb8``). It never
imports the console.
"""
