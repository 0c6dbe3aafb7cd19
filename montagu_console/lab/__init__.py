"""The embedded lab: a real miniature of the Montagu backup chain on this machine.

primary (PostgreSQL 15) -> barman (in the barman-montagu container) -> nightly recovered copy
(montagu_db_volume) -> starport (rsync over the lab sshd) -> science restore (montagu-db).
"""

from .builder import lab_down, lab_up
from .handle import Lab
from .layout import DEFAULT_LAB_DIR, LabPorts
from .proc import LabError
from .status import lab_status

__all__ = ["DEFAULT_LAB_DIR", "Lab", "LabError", "LabPorts", "lab_down", "lab_status", "lab_up"]
