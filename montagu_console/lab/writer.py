"""An optional background writer: one api_access_log row every few seconds, so WAL keeps flowing.

Started with :meth:`Lab.start_writer` as ``python -m montagu_console.lab.writer LAB_DIR SECONDS``;
it survives a stopped primary (it reconnects) and ``lab_down`` stops it.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from .layout import DB_NAME, DB_SUPERUSER, Layout
from .proc import pid_running, read_pid, spawn, stop_pid, wait_for

MARKER = "montagu_console.lab.writer"


def writer_pid(lab: Layout) -> int | None:
    """The writer's pid if it is running."""
    pid = read_pid(lab.writer_pidfile)
    return pid if pid_running(pid, MARKER) else None


def start(lab: Layout, every_seconds: float = 1.0) -> None:
    """Start the writer unless it is running."""
    if not writer_pid(lab):
        lab.writer_pidfile.unlink(missing_ok=True)
        spawn("start writer", [lab.python, "-m", MARKER, str(lab.lab_dir), str(every_seconds)], lab.writer_log)
        wait_for("wait for the writer", lambda: writer_pid(lab), timeout=15)


def stop(lab: Layout) -> None:
    """Stop the writer if it is running, and forget it."""
    pid = writer_pid(lab)
    if pid:
        stop_pid("stop writer", pid, MARKER, timeout=10)
    lab.writer_pidfile.unlink(missing_ok=True)


def main(argv: list[str]) -> None:
    """Insert a row every ``argv[1]`` seconds into the primary of the lab in ``argv[0]``."""
    import psycopg2

    lab = Layout(**Layout.load_inputs(Path(argv[0])))
    every = float(argv[1])
    lab.writer_pidfile.write_text(f"{os.getpid()}\n")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    conn = None
    while True:
        try:
            if conn is None:
                conn = psycopg2.connect(
                    host=str(lab.pg_run), port=lab.pg_port, user=DB_SUPERUSER, dbname=DB_NAME, connect_timeout=3
                )
                conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("INSERT INTO api_access_log (who) VALUES ('lab-writer')")
        except psycopg2.Error:
            conn = None
        time.sleep(every)


if __name__ == "__main__":
    main(sys.argv[1:])
