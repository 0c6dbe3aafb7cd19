"""The nightly copy on the annex: barman recover into montagu_db_volume, WAL replay, timestamp."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

from . import pg_container
from .barman_setup import barman
from .docker_daemon import docker, volume_path
from .layout import BARMAN_CONTAINER, BARMAN_SERVER, NIGHTLY_VOLUME, REPLAY_CONTAINER, TIMESTAMP_FILE, Layout
from .proc import run

# newer barman deletes the directory it recovers into, which fails for a mount point: so recover
# into /nightly/dump and move everything (dotfiles too) up one level, like annex-dump-montagu-db
MOVE_UP = """\
cd /nightly/dump
for f in * .[!.]* ..?*; do
    if [ -e "$f" ] || [ -L "$f" ]; then mv "$f" /nightly/ || exit 1; fi
done
cd / && rmdir /nightly/dump
"""


def recover(lab: Layout) -> None:
    """``barman recover montagu latest /nightly/dump`` in barman-montagu, then move the dump up."""
    barman(lab, "recover", BARMAN_SERVER, "latest", "/nightly/dump", timeout=900)
    docker(lab, "move dump up one level", "exec", BARMAN_CONTAINER, "sh", "-c", MOVE_UP)


def replay_wal(lab: Layout) -> None:
    """Start postgres on the recovered files (barman-replay-wal) until it opens, then stop it."""
    data = volume_path(lab, NIGHTLY_VOLUME)
    run("chown nightly data", ["chown", "-R", f"{lab.pg_user}:{lab.pg_user}", data])
    Path(data).chmod(0o700)
    pg_container.start(lab, REPLAY_CONTAINER, NIGHTLY_VOLUME, lab.replay_port)
    try:
        pg_container.wait_open(lab, REPLAY_CONTAINER, timeout=3600)
        pg_container.stop(lab, REPLAY_CONTAINER)
    finally:
        logs = docker(lab, "save replay log", "logs", REPLAY_CONTAINER, check=False)
        lab.replay_log.write_text(logs.stdout + logs.stderr)
        docker(lab, f"remove {REPLAY_CONTAINER}", "rm", "-f", REPLAY_CONTAINER, check=False)


def rfc3339_ns(moment: datetime, nanosecond: int | None = None) -> str:
    """Format like ``date --rfc-3339=ns``: ``2026-11-25 05:01:02.123456789+00:00`` (naive means UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    ns = moment.microsecond * 1000 if nanosecond is None else nanosecond
    offset = moment.strftime("%z")
    return f"{moment:%Y-%m-%d %H:%M:%S}.{ns:09d}{offset[:3]}:{offset[3:5]}"


def write_timestamp(lab: Layout, moment: datetime | None = None) -> str:
    """Write ``.barman-last-restore`` in the nightly volume (now, in UTC, unless ``moment``); return it."""
    if moment is None:
        ns = time.time_ns()
        text = rfc3339_ns(datetime.fromtimestamp(ns // 10**9, timezone.utc), ns % 10**9)
    else:
        text = rfc3339_ns(moment)
    (Path(volume_path(lab, NIGHTLY_VOLUME)) / TIMESTAMP_FILE).write_text(text + "\n")
    return text
