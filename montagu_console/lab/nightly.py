"""The nightly copies on the annex: barman recover, WAL replay, timestamp.

bb8's nightly copy is montagu_db_volume (/nightly in barman-montagu); privateer's (2025) is
barman_recover (/recover). The lab makes both, the way annex-dump-montagu-db does.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from ..clock import rfc3339_ns
from . import pg_container
from .barman_setup import barman
from .docker_daemon import docker, volume_path
from .layout import (
    BARMAN_CONTAINER,
    BARMAN_SERVER,
    NIGHTLY_VOLUME,
    RECOVER_VOLUME,
    REPLAY_CONTAINER,
    TIMESTAMP_FILE,
    Layout,
)

# newer barman deletes the directory it recovers into, which fails for a mount point: so recover
# into /nightly/dump and move everything (dotfiles too) up one level, like annex-dump-montagu-db
# a constant script: the mount comes in as "$1", never pasted into the text
MOVE_UP = """\
cd -- "$1/dump" || exit 1
for f in * .[!.]* ..?*; do
    if [ -e "$f" ] || [ -L "$f" ]; then mv -- "$f" "$1/" || exit 1; fi
done
cd / && rmdir -- "$1/dump"
"""
MOUNTS = {NIGHTLY_VOLUME: "/nightly", RECOVER_VOLUME: "/recover"}  # in barman-montagu


def recover(lab: Layout, volume: str = NIGHTLY_VOLUME) -> None:
    """``barman recover montagu latest <mount>/dump`` in barman-montagu, then move the dump up."""
    mount = MOUNTS[volume]
    barman(lab, "recover", BARMAN_SERVER, "latest", f"{mount}/dump", timeout=900)
    docker(lab, "move dump up one level", "exec", BARMAN_CONTAINER, "sh", "-c", MOVE_UP, "sh", mount)


def replay_wal(lab: Layout, volume: str = NIGHTLY_VOLUME, log: Path | None = None) -> None:
    """Start postgres on the recovered files (barman-replay-wal) until it opens, then stop it.

    barman recovered them as root: the container hands them to labpg before postgres starts.
    """
    pg_container.start(lab, REPLAY_CONTAINER, volume, lab.replay_port)
    try:
        pg_container.wait_open(lab, REPLAY_CONTAINER, timeout=3600)
        pg_container.stop(lab, REPLAY_CONTAINER)
    finally:
        logs = docker(lab, "save replay log", "logs", REPLAY_CONTAINER, check=False)
        (log or lab.replay_log).write_text(logs.stdout + logs.stderr)
        docker(lab, f"remove {REPLAY_CONTAINER}", "rm", "-f", REPLAY_CONTAINER, check=False)


def write_timestamp(lab: Layout, moment: datetime | None = None, volume: str = NIGHTLY_VOLUME) -> str:
    """Write ``.barman-last-restore`` in ``volume`` (now, in UTC, unless ``moment``); return it."""
    if moment is None:
        ns = time.time_ns()
        text = rfc3339_ns(datetime.fromtimestamp(ns // 10**9, UTC), ns % 10**9)
    else:
        text = rfc3339_ns(moment)
    (Path(volume_path(lab, volume)) / TIMESTAMP_FILE).write_text(text + "\n")
    return text
