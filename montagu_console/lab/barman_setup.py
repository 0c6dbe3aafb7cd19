"""barman from the project's environment, run in containers of one image like on the estate:
barman-montagu on the annex (straight to the primary, slot barman) and the off-site barman-aws
(through the SSH tunnel, slot barman_aws). Each function takes the :class:`BarmanSite`
(default: the annex's)."""

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
    BARMAN_CRON_INTERVAL,
    BARMAN_IMAGE,
    BARMAN_SERVER,
    DB_NAME,
    NIGHTLY_VOLUME,
    PG_BIN,
    PITR_MOUNT,
    PITR_VOLUME,
    RECOVER_VOLUME,
    RETENTION_POLICY,
    BarmanSite,
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
description = "{description}"
conninfo = host=127.0.0.1 port={port} user=barman dbname={db}
streaming_conninfo = host=127.0.0.1 port={port} user=streaming_barman dbname={db}
backup_method = postgres
streaming_archiver = on
slot_name = {slot}
create_slot = auto
retention_policy = {retention}
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


DESCRIPTIONS = {
    "annex": "montagu lab primary (PostgreSQL 15 on loopback)",
    "aws": "montagu lab primary, off-site (through the SSH tunnel)",
}


def _site(lab: Layout, site: BarmanSite | None) -> BarmanSite:
    return site or lab.annex_barman_site


def write_config(lab: Layout, passwords: dict[str, str], site: BarmanSite | None = None) -> None:
    """Write the site's barman.conf (no passwords) and the passfile (mode 600) it uses through
    PGPASSFILE, for the port it reaches the primary on."""
    site = _site(lab, site)
    for path in (site.home, site.log.parent):
        path.mkdir(parents=True, exist_ok=True)
    site.conf.write_text(
        BARMAN_CONF.format(
            home=site.home,
            log=site.log,
            server=BARMAN_SERVER,
            description=DESCRIPTIONS.get(site.name, site.name),
            port=site.pg_port,
            db=DB_NAME,
            slot=site.slot,
            retention=RETENTION_POLICY,
            pg_bin=PG_BIN,
        )
    )
    fd = os.open(site.pgpass, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as passfile:
        for user, password in passwords.items():
            passfile.write(f"127.0.0.1:{site.pg_port}:*:{user}:{password}\n")


def start_container(lab: Layout, site: BarmanSite | None = None) -> None:
    """Run the site's container of the barman image: the cron loop (its own pause file and lock),
    host networking, its files; the annex's also mounts the two nightly volumes and the PITR
    scratch volume."""
    site = _site(lab, site)
    path = f"{lab.venv}/bin:{PG_BIN}:/usr/local/bin:/usr/bin:/bin"
    volumes = []
    if site.name == "annex":
        volumes = [
            *("-v", f"{NIGHTLY_VOLUME}:/nightly"),
            *("-v", f"{RECOVER_VOLUME}:/recover"),
            *("-v", f"{PITR_VOLUME}:{PITR_MOUNT}"),
        ]
    docker(
        lab,
        f"start {site.container}",
        "run",
        "-d",
        "--name",
        site.container,
        "--init",
        "--network",
        "host",
        "--restart",
        "no",
        "-e",
        f"BARMAN_CRON_INTERVAL={BARMAN_CRON_INTERVAL}",
        "-e",
        f"BARMAN_CRON_PAUSE_FILE={site.cron_paused}",
        "-e",
        f"BARMAN_CRON_LOCK={site.cron_lock}",
        "-e",
        f"PGPASSFILE={site.pgpass}",
        "-e",
        f"PATH={path}",
        *host_mounts(),
        "-v",
        f"{lab.venv}:{lab.venv}:ro",
        "-v",
        f"{site.dir}:{site.dir}",
        "-v",
        f"{site.conf}:/etc/barman.conf:ro",
        *volumes,
        BARMAN_IMAGE,
    )


def barman(
    lab: Layout, *args: str, timeout: float = 120, check: bool = True, site: BarmanSite | None = None
) -> subprocess.CompletedProcess:
    """``docker exec <site container> barman ARGS``; raises LabError on failure when ``check``."""
    site = _site(lab, site)
    return docker(
        lab,
        f"barman {' '.join(args)} ({site.container})",
        "exec",
        site.container,
        "barman",
        *args,
        timeout=timeout,
        check=check,
    )


def pause_cron(lab: Layout, site: BarmanSite | None = None) -> None:
    """Stop the site's cron loop from running ``barman cron``; wait for a run under way."""
    site = _site(lab, site)
    site.cron_paused.touch()
    with open(site.cron_lock, "a") as lock:

        def locked() -> bool:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            fcntl.flock(lock, fcntl.LOCK_UN)
            return True

        wait_for(f"wait for a running barman cron in {site.container}", locked, timeout=120, interval=0.1)


def resume_cron(lab: Layout, site: BarmanSite | None = None) -> None:
    """Let the site's cron loop run ``barman cron`` again (from its next tick)."""
    _site(lab, site).cron_paused.unlink(missing_ok=True)


def start_streaming(lab: Layout, site: BarmanSite | None = None, timeout: float = 30) -> None:
    """Run ``barman cron`` (starts receive-wal, creates the slot) and wait for the slot to be active."""
    site = _site(lab, site)
    barman(lab, "-q", "cron", timeout=30, site=site)
    # switch-wal before pg_receivewal streams from the slot would wait 30 s and fail
    postgres.wait_slot(lab, active=True, timeout=timeout, slot=site.slot)


def archive_first_wal(lab: Layout, site: BarmanSite | None = None) -> None:
    """``switch-wal --force --archive``, nudging WAL so an idle primary does not stall it."""
    done = threading.Event()

    def nudge() -> None:
        while not done.wait(0.3):
            with contextlib.suppress(LabError):  # the switch-wal itself reports real trouble
                postgres.emit_wal(lab)

    nudger = threading.Thread(target=nudge, daemon=True)
    nudger.start()
    try:
        barman(lab, "switch-wal", "--force", "--archive", BARMAN_SERVER, timeout=60, site=site)
    finally:
        done.set()
        nudger.join()


def wait_check_ok(lab: Layout, timeout: float = 30, site: BarmanSite | None = None) -> None:
    """Wait until ``barman check montagu`` passes; on timeout, name the checks that fail."""
    failed = ""

    def passed() -> bool:
        nonlocal failed
        result = barman(lab, "check", BARMAN_SERVER, check=False, timeout=30, site=site)
        failed = "; ".join(line.strip() for line in result.stdout.splitlines() if "FAILED" in line)
        return result.returncode == 0

    try:
        wait_for(f"wait for barman check in {_site(lab, site).container}", passed, timeout=timeout, interval=0.5)
    except LabError as exc:
        raise LabError(f"{exc}: {failed}") from None


def first_backup(lab: Layout, site: BarmanSite | None = None) -> None:
    """``barman backup --wait montagu``."""
    barman(lab, "backup", "--wait", BARMAN_SERVER, timeout=300, site=site)
