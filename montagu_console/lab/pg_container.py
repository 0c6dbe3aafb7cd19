"""PostgreSQL 15 in a container of montagu-lab/postgres:host: started as root, run as labpg."""

from __future__ import annotations

from .docker_daemon import container_state, docker, logs_tail
from .images import host_mounts
from .layout import DB_NAME, DB_SUPERUSER, PG_BIN, PG_USER, POSTGRES_IMAGE, Layout
from .proc import wait_for


def postgres_command(port: int | str, data_dir: str = "/pgdata") -> list[str]:
    """The container command: as root, hand ``data_dir`` to labpg, then exec postgres as labpg.

    ``port`` may be ``"$PGPORT"``: the port is then the container's environment's (the console's
    replay config, so a point-in-time recovery's copy can listen on a port of its own).

    Like the real montagu-db image (its entrypoint starts as root and gives PGDATA to postgres),
    so data restored by bb8 or privateer (written by root) just works.
    """
    return [
        "sh",
        "-c",
        f"chown -R {PG_USER}:{PG_USER} {data_dir} && chmod 700 {data_dir} && "
        f"exec /usr/bin/setpriv --reuid={PG_USER} --regid={PG_USER} --clear-groups "
        f"{PG_BIN}/postgres -D {data_dir} -p {port} -c listen_addresses=127.0.0.1 "
        "-c unix_socket_directories=/tmp -c log_startup_progress_interval=1s",
    ]


def environment(port: int) -> list[str]:
    """``K=V`` environment of the lab's postgres containers (psql in them finds the database)."""
    return [
        f"PATH={PG_BIN}:/usr/bin:/bin",
        "PGHOST=/tmp",
        f"PGPORT={port}",
        f"PGUSER={DB_SUPERUSER}",
        f"PGDATABASE={DB_NAME}",
    ]


def start(lab: Layout, name: str, volume: str, port: int) -> None:
    """Run postgres on ``volume`` (at /pgdata), listening on 127.0.0.1:``port``.

    The container starts as root and hands /pgdata to labpg (:func:`postgres_command`). postgres
    logs to stderr, so ``docker logs NAME`` shows start-up and redo lines; ``docker stop`` sends
    SIGINT (fast shutdown).
    """
    env = [x for kv in environment(port) for x in ("-e", kv)]
    docker(
        lab,
        f"start {name}",
        "run",
        "-d",
        "--name",
        name,
        "--init",
        "--network",
        "host",
        "--restart",
        "no",
        "--user",
        "0",
        "--stop-signal",
        "SIGINT",
        *env,
        *host_mounts(),
        "-v",
        f"{volume}:/pgdata",
        POSTGRES_IMAGE,
        *postgres_command(port),
    )


def in_recovery(lab: Layout, name: str) -> str:
    """``select pg_is_in_recovery()`` through ``docker exec NAME psql`` ('' if it cannot connect)."""
    result = docker(
        lab, f"query {name}", "exec", name, "psql", "-XAtqc", "select pg_is_in_recovery()", check=False, timeout=15
    )
    return result.stdout.strip() if result.returncode == 0 else ""


def wait_open(lab: Layout, name: str, timeout: float = 120) -> None:
    """Wait until the database in ``name`` is open for writes (recovery finished)."""

    def gone() -> str | None:
        state = container_state(lab, name).get(name, {})
        if not state.get("Running"):
            return f"container {name} is not running; docker logs: {logs_tail(lab, name)}"
        return None

    wait_for(
        f"wait for {name} to open", lambda: in_recovery(lab, name) == "f", timeout=timeout, interval=0.2, gone=gone
    )


def stop(lab: Layout, name: str, timeout: int = 60) -> None:
    """Stop the container (postgres fast shutdown) and wait for it."""
    docker(lab, f"stop {name}", "stop", "-t", str(timeout), name, timeout=timeout + 15)
