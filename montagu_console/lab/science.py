"""The science host: science_db_volume restored from the starport, and the montagu-db container."""

from __future__ import annotations

from pathlib import Path

from . import pg_container, sshd
from .docker_daemon import docker, volume_path
from .layout import RESTORE_TARGET, SCIENCE_CONTAINER, SCIENCE_VOLUME, Layout
from .proc import run
from .starport import RSYNC_FLAGS, remote_data


def restore(lab: Layout) -> None:
    """What ``bb8 restore`` does: rsync main_db_restore's data into science_db_volume, for labpg."""
    docker(lab, "create science volume", "volume", "create", SCIENCE_VOLUME)
    data = volume_path(lab, SCIENCE_VOLUME)
    run("rsync starport to science",
        ["rsync", *RSYNC_FLAGS, "-e", sshd.rsync_shell(lab),
         f"{lab.sci_user}@127.0.0.1:{remote_data(RESTORE_TARGET)}", data + "/"], timeout=1800)
    run("chown science data", ["chown", "-R", f"{lab.pg_user}:{lab.pg_user}", data])
    Path(data).chmod(0o700)


def start(lab: Layout) -> None:
    """Run montagu-db on science_db_volume and wait until it is open (not in recovery)."""
    pg_container.start(lab, SCIENCE_CONTAINER, SCIENCE_VOLUME, lab.science_port)
    pg_container.wait_open(lab, SCIENCE_CONTAINER)
