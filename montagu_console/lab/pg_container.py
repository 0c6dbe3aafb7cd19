"""PostgreSQL 15 in a container of montagu-lab/postgres:host, run as labpg on a data volume."""

from __future__ import annotations

from .docker_daemon import container_state, docker, logs_tail
from .images import host_mounts
from .layout import DB_NAME, DB_SUPERUSER, PG_BIN, POSTGRES_IMAGE, Layout
from .proc import wait_for
from .users import ids


def start(lab: Layout, name: str, volume: str, port: int) -> None:
    """Run postgres on ``volume`` (at /pgdata) as labpg, listening on 127.0.0.1:``port``.

    It logs to stderr, so ``docker logs NAME`` shows start-up and redo lines; ``docker stop``
    sends SIGINT (fast shutdown).
    """
    uid, gid = ids(lab.pg_user)
    docker(lab, f"start {name}", "run", "-d", "--name", name, "--init", "--network", "host",
           "--restart", "no", "--user", f"{uid}:{gid}", "--stop-signal", "SIGINT",
           "-e", f"PATH={PG_BIN}:/usr/bin:/bin", "-e", "PGHOST=/tmp", "-e", f"PGPORT={port}",
           "-e", f"PGUSER={DB_SUPERUSER}", "-e", f"PGDATABASE={DB_NAME}",
           *host_mounts(), "-v", f"{volume}:/pgdata",
           POSTGRES_IMAGE,
           f"{PG_BIN}/postgres", "-D", "/pgdata", "-p", str(port), "-c", "listen_addresses=127.0.0.1",
           "-c", "unix_socket_directories=/tmp", "-c", "log_startup_progress_interval=1s")


def in_recovery(lab: Layout, name: str) -> str:
    """``select pg_is_in_recovery()`` through ``docker exec NAME psql`` ('' if it cannot connect)."""
    result = docker(lab, f"query {name}", "exec", name, "psql", "-XAtqc", "select pg_is_in_recovery()",
                    check=False, timeout=15)
    return result.stdout.strip() if result.returncode == 0 else ""


def wait_open(lab: Layout, name: str, timeout: float = 120) -> None:
    """Wait until the database in ``name`` is open for writes (recovery finished)."""
    def gone() -> str | None:
        state = container_state(lab, name).get(name, {})
        if not state.get("Running"):
            return f"container {name} is not running; docker logs: {logs_tail(lab, name)}"
        return None
    wait_for(f"wait for {name} to open", lambda: in_recovery(lab, name) == "f", timeout=timeout,
             interval=0.2, gone=gone)


def stop(lab: Layout, name: str, timeout: int = 60) -> None:
    """Stop the container (postgres fast shutdown) and wait for it."""
    docker(lab, f"stop {name}", "stop", "-t", str(timeout), name, timeout=timeout + 15)
