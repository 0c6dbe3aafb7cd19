"""OS users and groups of the lab: labpg runs postgres, labsci is the SSH login of the starport."""

from __future__ import annotations

import grp
import pwd

from .layout import DOCKER_GROUP, Layout
from .proc import run


def _exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def ensure_users(lab: Layout) -> None:
    """Create (or update) labdocker, labpg and the SSH user; unlock both for sshd (``usermod -p '*'``)."""
    try:
        grp.getgrnam(DOCKER_GROUP)
    except KeyError:
        run("create group", ["groupadd", "--system", DOCKER_GROUP])
    if not _exists(lab.pg_user):
        run(
            "create user",
            [
                "useradd",
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/bin/bash",
                lab.pg_user,
            ],
        )
    if not _exists(lab.sci_user):
        run(
            "create user",
            [
                "useradd",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                str(lab.sci_home),
                "--shell",
                "/bin/bash",
                lab.sci_user,
            ],
        )
    # sshd with UsePAM no refuses accounts whose password field is '!' (what useradd writes)
    run("unlock user", ["usermod", "-p", "*", lab.pg_user])
    run("unlock user", ["usermod", "-p", "*", "--home", str(lab.sci_home), "-aG", DOCKER_GROUP, lab.sci_user])


def ids(user: str) -> tuple[int, int]:
    """(uid, gid) of ``user``."""
    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid
