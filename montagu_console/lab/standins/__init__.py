"""Stand-in ``bb8`` and ``privateer`` programs for the embedded lab.

Each is a self-contained script (the standard library plus the Docker SDK and dateutil from the
project's environment) that implements the subset of the real program's command line, messages,
exit codes and on-disk formats described in the facts file, over real rsync and ssh, with the
transfers in throw-away containers like the real tools. ``lab/standin_setup.py`` writes their
configs and the wrapper scripts the lab installs (``LAB/annex/bin/bb8``, ``LAB/science/bin/bb8``,
``LAB/science/bin/privateer``). They never import the console.
"""
