"""PostgreSQL start-up progress from the log (lines as PostgreSQL 15 writes them)."""

from montagu_console.probes.pglog import parse_startup

START = """\
2026-11-25 05:00:00.000 UTC [1] LOG:  starting PostgreSQL 15.18 (Debian 15.18-0+deb12u1) on x86_64-pc-linux-gnu
2026-11-25 05:00:00.010 UTC [1] LOG:  listening on IPv4 address "127.0.0.1", port 55433
2026-11-25 05:00:00.020 UTC [7] LOG:  database system was interrupted; last known up at 2026-11-24 07:13:55 UTC
"""
REDO = (
    START
    + """\
2026-11-25 05:00:00.100 UTC [7] LOG:  redo starts at 0/22000028
2026-11-25 05:00:01.100 UTC [8] FATAL:  the database system is starting up
2026-11-25 05:00:01.200 UTC [7] LOG:  redo in progress, elapsed time: 1.00 s, current LSN: 0/26C20068
"""
)
READY = (
    REDO
    + """\
2026-11-25 05:00:02.000 UTC [7] LOG:  redo done at 0/35E44A10 system usage: CPU: user: 0.85 s
2026-11-25 05:00:02.100 UTC [1] LOG:  database system is ready to accept connections
"""
)


def test_no_start_line():
    assert parse_startup("").phase == "unknown"


def test_starting():
    assert parse_startup(START).phase == "starting"


def test_redo_in_progress_ignores_benign_fatal():
    p = parse_startup(REDO)
    assert (p.phase, p.redo_start_lsn, p.current_lsn, p.elapsed_seconds) == ("redo", "0/22000028", "0/26C20068", 1.0)


def test_ready():
    p = parse_startup(READY)
    assert p.phase == "ready" and p.redo_done_lsn == "0/35E44A10"


def test_only_the_last_start_counts():
    log = READY + "2026-11-25 06:00:00 UTC [1] LOG:  database system is shut down\n" + START
    assert parse_startup(log).phase == "starting"


def test_failed_start():
    log = START + "2026-11-25 05:00:00.300 UTC [7] PANIC:  could not locate a valid checkpoint record\n"
    p = parse_startup(log)
    assert p.phase == "failed" and "checkpoint" in p.failure


def test_failure_line_is_one_clean_line():
    log = "LOG:  starting PostgreSQL 15.4\nFATAL:  could not open file \x1b]0;pwned\x07\tx [/]\n"
    progress = parse_startup(log)
    assert progress.phase == "failed" and progress.failure == "FATAL: could not open file \ufffd x [/]"


def test_unparsable_elapsed_time_is_unknown_not_a_crash():
    log = "starting PostgreSQL 15.4\nredo in progress, elapsed time: 1.2.3 s, current LSN: 0/3000000\n"
    progress = parse_startup(log)
    assert (progress.phase, progress.elapsed_seconds, progress.current_lsn) == ("redo", None, "0/3000000")
