"""The embedded lab: a real miniature of the Montagu backup chain on this machine.

primary (PostgreSQL 15, a writer inserting every few seconds) -> barman (in the barman-montagu
container) -> nightly recovered copies (montagu_db_volume for bb8, barman_recover for privateer)
-> starport (the stand-in ``bb8 backup``: rsync over the lab sshd) -> science restore (the
stand-in ``bb8 restore`` or ``privateer restore``) -> montagu-db. The primary also streams to
the off-site barman (barman-aws, slot barman_aws) through an SSH tunnel (``ssh -L``, as the AWS
barman's autossh); the console reaches that barman's host over a second sshd.
"""

from .builder import lab_down, lab_up
from .handle import Lab
from .layout import DEFAULT_LAB_DIR, LabPorts
from .proc import LabError
from .status import lab_status

__all__ = ["DEFAULT_LAB_DIR", "Lab", "LabError", "LabPorts", "lab_down", "lab_status", "lab_up"]
