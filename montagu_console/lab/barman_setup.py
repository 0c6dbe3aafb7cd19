"""barman from the project's environment, run in the barman-montagu container like on the annex."""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import threading

from . import postgres
from .docker_daemon import docker
from .images import host_mounts
from .layout import (
    BARMAN_CONTAINER,
    BARMAN_CRON_INTERVAL,
    BARMAN_IMAGE,
    BARMAN_SERVER,
    DB_NAME,
    NIGHTLY_VOLUME,
    PG_BIN,
    RECOVER_VOLUME,
    Layout,
)
from .proc import LabError, wait_for

BARMAN_CONF = """\
[barman]
barman_user = root
barman_home = {home}
log_file = {log}
log_level = INFO

[{server}]
description = "montagu lab primary (PostgreSQL 15 on loopback)"
conninfo = host=127.0.0.1 port={port} user=barman dbname={db}
streaming_conninfo = host=127.0.0.1 port={port} user=streaming_barman dbname={db}
backup_method = postgres
streaming_archiver = on
slot_name = barman
create_slot = auto
retention_policy = REDUNDANCY 3
immediate_checkpoint = true
; archive_timeout on the primary completes a mostly empty 16 MB segment every minute
compression = gzip
path_prefix = {pg_bin}
"""


def require_barman(lab: Layout) -> None:
    """Fail when barman is not installed next to the running python."""
    if not lab.barman_exe.exists():
        raise LabError(
            f"barman is not installed next to {lab.python}: install the project with "
            f"`{lab.python} -m pip install -e .` (it pins barman)"
        )


def write_config(lab: Layout, passwords: dict[str, str]) -> None:
    """Write barman.conf (no passwords) and the passfile (mode 600) it uses through PGPASSFILE."""
    for path in (lab.barman_home, lab.barman_log.parent):
        path.mkdir(parents=True, exist_ok=True)
    lab.barman_conf.write_text(
        BARMAN_CONF.format(
            home=lab.barman_home, log=lab.barman_log, server=BARMAN_SERVER, port=lab.pg_port, db=DB_NAME, pg_bin=PG_BIN
        )
    )
    fd = os.open(lab.pgpass, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as passfile:
        for user, password in passwords.items():
            passfile.write(f"127.0.0.1:{lab.pg_port}:*:{user}:{password}\n")


def start_container(lab: Layout) -> None:
    """Run barman-montagu: the cron loop, host networking, the catalog and the two volumes."""
    path = f"{lab.venv}/bin:{PG_BIN}:/usr/local/bin:/usr/bin:/bin"
    docker(
        lab,
        "start barman-montagu",
        "run",
        "-d",
        "--name",
        BARMAN_CONTAINER,
        "--init",
        "--network",
        "host",
        "--restart",
        "no",
        "-e",
        f"BARMAN_CRON_INTERVAL={BARMAN_CRON_INTERVAL}",
        "-e",
        f"BARMAN_CRON_PAUSE_FILE={lab.cron_paused}",
        "-e",
        f"BARMAN_CRON_LOCK={lab.cron_lock}",
        "-e",
        f"PGPASSFILE={lab.pgpass}",
        "-e",
        f"PATH={path}",
        *host_mounts(),
        "-v",
        f"{lab.venv}:{lab.venv}:ro",
        "-v",
        f"{lab.barman_dir}:{lab.barman_dir}",
        "-v",
        f"{lab.barman_conf}:/etc/barman.conf:ro",
        "-v",
        f"{NIGHTLY_VOLUME}:/nightly",
        "-v",
        f"{RECOVER_VOLUME}:/recover",
        BARMAN_IMAGE,
    )


def barman(lab: Layout, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    """``docker exec barman-montagu barman ARGS``; raises LabError on failure when ``check``."""
    return docker(
        lab, f"barman {' '.join(args)}", "exec", BARMAN_CONTAINER, "barman", *args, timeout=timeout, check=check
    )


def pause_cron(lab: Layout) -> None:
    """Stop the container's cron loop from running ``barman cron``; wait for a run under way."""
    lab.cron_paused.touch()
    with open(lab.cron_lock, "a") as lock:

        def locked() -> bool:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            fcntl.flock(lock, fcntl.LOCK_UN)
            return True

        wait_for("wait for a running barman cron", locked, timeout=120, interval=0.1)


def resume_cron(lab: Layout) -> None:
    """Let the cron loop run ``barman cron`` again (from its next tick)."""
    lab.cron_paused.unlink(missing_ok=True)


def start_streaming(lab: Layout) -> None:
    """Run ``barman cron`` (starts receive-wal, creates the slot) and wait for the slot to be active."""
    barman(lab, "-q", "cron", timeout=30)
    # switch-wal before pg_receivewal streams from the slot would wait 30 s and fail
    postgres.wait_slot(lab, active=True, timeout=30)


def archive_first_wal(lab: Layout) -> None:
    """``switch-wal --force --archive``, nudging WAL so an idle primary does not stall it."""
    done = threading.Event()

    def nudge() -> None:
        while not done.wait(0.3):
            with contextlib.suppress(LabError):  # the switch-wal itself reports real trouble
                postgres.emit_wal(lab)

    nudger = threading.Thread(target=nudge, daemon=True)
    nudger.start()
    try:
        barman(lab, "switch-wal", "--force", "--archive", BARMAN_SERVER, timeout=60)
    finally:
        done.set()
        nudger.join()


def wait_check_ok(lab: Layout, timeout: float = 30) -> None:
    """Wait until ``barman check montagu`` passes; on timeout, name the checks that fail."""
    failed = ""

    def passed() -> bool:
        nonlocal failed
        result = barman(lab, "check", BARMAN_SERVER, check=False, timeout=30)
        failed = "; ".join(line.strip() for line in result.stdout.splitlines() if "FAILED" in line)
        return result.returncode == 0

    try:
        wait_for("wait for barman check", passed, timeout=timeout, interval=0.5)
    except LabError as exc:
        raise LabError(f"{exc}: {failed}") from None


def first_backup(lab: Layout) -> None:
    """``barman backup --wait montagu``."""
    barman(lab, "backup", "--wait", BARMAN_SERVER, timeout=300)
