"""OS users and groups of the lab: labpg runs postgres, labsci is the SSH login of the starport,
labaws that of the off-site barman's host, labtunnel the off-site barman's tunnel (no shell)."""

from __future__ import annotations

import grp
import os
import pwd

from .layout import DOCKER_GROUP, Layout
from .proc import run


def _exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _useradd(name: str, home: str, shell: str) -> None:
    if not _exists(name):
        run(
            "create user",
            ["useradd", "--user-group", "--no-create-home", "--home-dir", home, "--shell", shell, name],
        )


def ensure_users(lab: Layout) -> None:
    """Create (or update) labdocker, labpg, the SSH users and the tunnel user; unlock them for
    sshd (``usermod -p '*'``). The SSH users of the starport and of the aws host are in labdocker."""
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
    _useradd(lab.sci_user, str(lab.sci_home), "/bin/bash")
    _useradd(lab.aws_user, str(lab.aws_home), "/bin/bash")
    _useradd(lab.tunnel_user, "/nonexistent", "/usr/sbin/nologin")
    # sshd with UsePAM no refuses accounts whose password field is '!' (what useradd writes)
    run("unlock user", ["usermod", "-p", "*", lab.pg_user])
    run("unlock user", ["usermod", "-p", "*", lab.tunnel_user])
    for user, home in ((lab.sci_user, lab.sci_home), (lab.aws_user, lab.aws_home)):
        run("unlock user", ["usermod", "-p", "*", "--home", str(home), "-aG", DOCKER_GROUP, user])
    lab.aws_home.mkdir(mode=0o750, exist_ok=True)
    uid, gid = ids(lab.aws_user)
    os.chown(lab.aws_home, uid, gid)


def ids(user: str) -> tuple[int, int]:
    """(uid, gid) of ``user``."""
    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid
