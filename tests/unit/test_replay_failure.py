"""A replay container that stops before it is ready: the failure names the line that says why."""

from __future__ import annotations

from montagu_console.actions.steps import ContainerLog, why_stopped


def log_of(*lines: str) -> ContainerLog:
    logs = ContainerLog(container=None)
    logs.recent.extend(lines)
    return logs


def test_the_last_fatal_line_is_named():
    logs = log_of(
        "LOG:  starting PostgreSQL 15",
        'FATAL:  could not create lock file "/tmp/.s.PGSQL.55434.lock": Address already in use',
        "LOG:  database system is shut down",
    )
    assert why_stopped(logs).startswith("FATAL: could not create lock file")


def test_without_a_fatal_line_the_last_line_is_named():
    assert why_stopped(log_of("one", "two")) == "two"
    assert why_stopped(log_of()) == "its log is empty"


def test_a_hostile_line_is_one_clean_capped_line():
    [line] = [why_stopped(log_of("PANIC: \x1b[31mred\x1b[0m\n[bold]x[/bold]" + "y" * 5000))]
    assert line.startswith("PANIC: ") and line.endswith("[... truncated]") and len(line) < 250
    assert "\x1b" not in line and "\n" not in line
