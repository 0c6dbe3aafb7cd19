"""The PostgreSQL 15 primary, run by labpg on a loopback port, and SQL helpers."""

from __future__ import annotations

import os
from pathlib import Path
from secrets import token_urlsafe

from .layout import DB_NAME, DB_SUPERUSER, PG_BIN, SLOT_NAME, Layout
from .proc import LabError, pid_running, read_pid, run, wait_for
from .users import ids

PRIMARY_CONF = """
# --- montagu lab ---
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{run_dir}'
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
wal_keep_size = 64MB
log_line_prefix = '%m [%p] '
log_startup_progress_interval = 1s
# with the lab's writer running, a WAL segment is completed (and archived by barman's streaming)
# at least once a minute, so the WAL panel's "last archived WAL" stays fresh
archive_timeout = 60
"""

PG_HBA = """\
local   all          all                              trust
host    all          all               127.0.0.1/32   scram-sha-256
host    replication  streaming_barman  127.0.0.1/32   scram-sha-256
"""

SCHEMA = """
CREATE TABLE api_access_log (
    id serial PRIMARY KEY,
    who text NOT NULL,
    "timestamp" timestamptz NOT NULL DEFAULT now()
);
INSERT INTO api_access_log (who) VALUES ('alice'), ('bob'), ('carol'), ('lab-setup');
"""


def psql(
    lab: Layout, sql: str, *, db: str = DB_NAME, step: str = "psql", timeout: float = 30, secrets: tuple[str, ...] = ()
) -> str:
    """Run ``sql`` on the primary over its unix socket as the superuser; return unaligned output."""
    argv: list[str | Path] = [
        PG_BIN / "psql",
        "-h",
        lab.pg_run,
        "-p",
        str(lab.pg_port),
        "-U",
        DB_SUPERUSER,
        "-d",
        db,
        "-X",
        "-A",
        "-t",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
    ]
    return run(step, argv, input=sql, timeout=timeout, secrets=secrets).stdout.strip()


def pg_ctl(lab: Layout, step: str, *args: str, timeout: float = 60) -> None:
    """Run pg_ctl on the primary's data directory as labpg."""
    run(step, [PG_BIN / "pg_ctl", "-D", lab.pg_data, *args], user=lab.pg_user, timeout=timeout)


def primary_pid(lab: Layout) -> int | None:
    """The postmaster pid of the primary if it is running."""
    pid = read_pid(lab.pg_data / "postmaster.pid")
    return pid if pid_running(pid, str(lab.pg_data)) else None


def start_primary(lab: Layout) -> None:
    """Start the primary (``pg_ctl -w start``) unless it is running."""
    if primary_pid(lab):
        return
    pg_ctl(lab, "start primary", "-l", str(lab.pg_log), "-w", "-t", "60", "start", timeout=70)


def stop_primary(lab: Layout) -> None:
    """Fast-stop the primary if it is running."""
    if primary_pid(lab):
        pg_ctl(lab, "stop primary", "-m", "fast", "-w", "-t", "60", "stop", timeout=70)


def is_ready(host: str | Path, port: int) -> bool:
    """True if a postgres at ``host`` (socket dir or address) and ``port`` accepts connections."""
    argv: list[str | Path] = [PG_BIN / "pg_isready", "-q", "-h", str(host), "-p", str(port), "-t", "2"]
    return run("pg_isready", argv, check=False, timeout=5).returncode == 0


def create_primary(lab: Layout) -> dict[str, str]:
    """initdb, configure, start and seed the primary; return the barman roles' passwords."""
    os.makedirs(lab.pg_dir, exist_ok=True)
    lab.pg_run.mkdir(exist_ok=True)
    uid, gid = ids(lab.pg_user)
    for path in (lab.pg_dir, lab.pg_run):
        os.chown(path, uid, gid)
    run(
        "initdb primary",
        [
            PG_BIN / "initdb",
            "-D",
            lab.pg_data,
            "-U",
            DB_SUPERUSER,
            "--no-sync",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            f"--wal-segsize={lab.wal_segsize_mb}",
        ],
        user=lab.pg_user,
        timeout=120,
    )
    with open(lab.pg_data / "postgresql.conf", "a") as conf:
        conf.write(PRIMARY_CONF.format(port=lab.pg_port, run_dir=lab.pg_run))
    (lab.pg_data / "pg_hba.conf").write_text(PG_HBA)
    start_primary(lab)
    passwords = {user: token_urlsafe(18) for user in ("barman", "streaming_barman")}
    psql(
        lab,
        f"""
        CREATE ROLE barman WITH LOGIN SUPERUSER PASSWORD '{passwords["barman"]}';
        CREATE ROLE streaming_barman WITH LOGIN REPLICATION PASSWORD '{passwords["streaming_barman"]}';
        CREATE DATABASE {DB_NAME};
    """,
        db="postgres",
        step="create barman roles",
        secrets=tuple(passwords.values()),
    )
    psql(lab, SCHEMA, step="create api_access_log")
    return passwords


def _slot_literal(name: str) -> str:
    """``name`` as a SQL string literal, after checking it is a plain slot name."""
    if not name or not all(c.isascii() and (c.isalnum() or c == "_") for c in name) or name != name.lower():
        raise LabError(f"not a replication slot name (lower-case letters, digits, _): {name!r}")
    return f"'{name}'"


def slot_active(lab: Layout, slot: str = SLOT_NAME) -> bool:
    """True if replication slot ``slot`` exists and a receiver is streaming from it."""
    sql = f"select active from pg_replication_slots where slot_name = {_slot_literal(slot)}"
    return psql(lab, sql, db="postgres", step="read replication slot", timeout=10) == "t"


def wait_slot(lab: Layout, active: bool, timeout: float = 30, slot: str = SLOT_NAME) -> None:
    """Wait until replication slot ``slot`` is (in)active."""
    state = "active" if active else "inactive"
    wait_for(f"wait for slot '{slot}' {state}", lambda: slot_active(lab, slot) == active, timeout=timeout, interval=0.1)


def create_slot(lab: Layout, slot: str) -> None:
    """Create physical replication slot ``slot``, reserving WAL at once (as a standby's would)."""
    sql = f"select pg_create_physical_replication_slot({_slot_literal(slot)}, immediately_reserve => true)"
    psql(lab, sql, db="postgres", step=f"create slot {slot}", timeout=30)


def drop_slot(lab: Layout, slot: str) -> None:
    """Drop replication slot ``slot`` if it exists (it must be inactive)."""
    literal = _slot_literal(slot)
    sql = f"select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = {literal}"
    psql(lab, sql, db="postgres", step=f"drop slot {slot}", timeout=30)


def slot_retained_bytes(lab: Layout, slot: str) -> int | None:
    """WAL bytes the primary keeps for ``slot`` (from its restart_lsn); None if there is no such slot."""
    sql = (
        "select coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint "
        f"from pg_replication_slots where slot_name = {_slot_literal(slot)}"
    )
    out = psql(lab, sql, db="postgres", step=f"read slot {slot}", timeout=10)
    return int(out) if out else None


def emit_wal(lab: Layout) -> None:
    """Write a tiny WAL record so an idle primary lets barman close the current segment."""
    psql(lab, "select pg_logical_emit_message(false, 'lab', 'nudge')", db="postgres", step="nudge WAL", timeout=10)
