"""run_tui in real terminals (ptys): the pre-checks, and exiting when the terminal goes away."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
import tui_fakes

from montagu_console.tui import watchdog

HERE = Path(__file__).resolve().parent
CHILD = f"""
import sys
sys.path.insert(0, {str(HERE)!r})
import tui_fakes
from montagu_console.tui import run_tui
theme = sys.argv[1] if len(sys.argv) > 1 else None
refresh = float(sys.argv[2]) if len(sys.argv) > 2 else 10
sys.exit(run_tui(tui_fakes.make_config(refresh_seconds=refresh), lambda config: tui_fakes.FakeCollector(), theme=theme))
"""


CONFIG_CHILD = f"""
import sys
sys.path.insert(0, {str(HERE)!r})
import tui_fakes
from montagu_console.config import load_config
from montagu_console.tui import run_tui
from pathlib import Path
sys.exit(run_tui(load_config(Path(sys.argv[1])), lambda config: tui_fakes.FakeCollector()))
"""


class Child:
    """The TUI in a pty of ``cols`` x ``rows``; ``read_until`` collects what it draws."""

    def __init__(
        self,
        cols: int = 80,
        rows: int = 24,
        *,
        ignore_hup: bool = False,
        args: tuple[str, ...] = (),
        script: str = CHILD,
    ):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: size its terminal, then become the TUI
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            if ignore_hup:
                signal.signal(signal.SIGHUP, signal.SIG_IGN)
            os.execv(sys.executable, [sys.executable, "-c", script, *args])
        self.output = b""
        self.status: int | None = None

    def read_until(self, needle: bytes, timeout: float = 15.0) -> bool:
        deadline = time.monotonic() + timeout
        while needle not in self.output and time.monotonic() < deadline:
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if ready:
                try:
                    self.output += os.read(self.fd, 65536)
                except OSError:  # the child closed its side
                    break
        return needle in self.output

    def wait(self, timeout: float) -> int | None:
        """The exit status (code, or -signal), or None if still running after ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.fd is not None:
                self.read_until(b"\0never\0", timeout=0.05)
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
                return self.status
            time.sleep(0.05)
        return None

    def hang_up(self) -> None:
        """Close the terminal, as a dropped SSH session does."""
        os.close(self.fd)
        self.fd = None

    def kill(self) -> None:
        if self.status is None:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        if self.fd is not None:
            os.close(self.fd)


@pytest.fixture
def spawn():
    children = []

    def start(*args, **kw) -> Child:
        children.append(Child(*args, **kw))
        return children[-1]

    yield start
    for child in children:
        child.kill()


def test_small_terminal_is_one_clear_line(spawn):
    child = spawn(60, 20)
    assert child.wait(15) == 2
    text = child.output.decode()
    assert text.strip() == (
        "montagu-console needs a terminal of at least 80x24 (this one is 60x20); "
        "use `montagu-console check` for a headless report"
    )


def test_not_a_tty_is_one_clear_line():
    run = subprocess.run(
        [sys.executable, "-c", CHILD], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30
    )
    assert run.returncode == 2
    assert run.stdout == ""
    assert run.stderr == (
        "montagu-console needs an interactive terminal (stdin is not a TTY); "
        "use `montagu-console check` for a headless report\n"
    )


def test_unknown_theme_is_one_clear_line(spawn):
    child = spawn(args=("solarized",))
    assert child.wait(15) == 2
    assert child.output.decode().strip() == (
        "montagu-console: unknown theme 'solarized' (available: montagu-dark, montagu-high-contrast, montagu-light)"
    )


def test_q_quits_and_restores_the_terminal(spawn):
    child = spawn()
    assert child.read_until(b"montagu on annex")
    os.write(child.fd, b"q")
    assert child.wait(10) == 0
    assert b"\x1b[?1049l" in child.output  # left the alternate screen


def test_sigterm_exits(spawn):
    child = spawn()
    assert child.read_until(b"montagu on annex")
    os.kill(child.pid, signal.SIGTERM)
    assert child.wait(10) == watchdog.EXIT_TERM
    assert b"\x1b[?1049l" in child.output


@pytest.mark.parametrize("ignore_hup", [False, True], ids=["sighup", "sighup-ignored"])
@pytest.mark.parametrize("refresh", ["10", "1"], ids=["idle", "redrawing"])
def test_exits_when_the_terminal_goes_away(spawn, ignore_hup, refresh):
    child = spawn(ignore_hup=ignore_hup, args=("montagu-dark", refresh))
    assert child.read_until(b"montagu on annex")
    time.sleep(1)
    child.hang_up()
    # without the watchdog an ignored SIGHUP leaves the app spinning (idle) or blocked writing (redrawing)
    assert child.wait(watchdog.INTERVAL + watchdog.GRACE + 3) == watchdog.EXIT_HANGUP


def test_terminal_alive_is_false_for_a_pipe():
    read, write = os.pipe()
    try:
        assert not watchdog.terminal_alive((read, write))
    finally:
        os.close(read)
        os.close(write)


def test_q_quits_at_once_while_a_preflight_waits_on_a_host(spawn, tmp_path):
    """q while the base-backup preflight waits on a host that does not answer (its barman command
    sleeps, with a 300 s command timeout) ends the console at once: the preflight is a cancellable
    worker, and cancelling it kills the command, instead of a thread the exit has to wait for."""
    marker = tmp_path / "still-running"
    config = tmp_path / "config.yml"
    hang = f"touch {marker}; sleep 300; echo done"  # sh stays, its command line naming the marker
    config.write_text(
        tui_fakes.CONFIG_YAML.replace(
            "command: [docker, exec, barman-montagu, barman]", f"command: [sh, -c, {hang!r}, sh]"
        )
        + f"state_dir: {tmp_path / 'state'}\ntimeouts: {{command_seconds: 300}}\n"
    )
    child = spawn(script=CONFIG_CHILD, args=(str(config),))
    assert child.read_until(b"montagu on annex"), child.output[-2000:]
    os.write(child.fd, b"b")
    assert child.read_until(b"checking")
    deadline = time.monotonic() + 15
    while not marker.exists():  # the host's command is under way
        assert time.monotonic() < deadline, "the preflight never ran its command"
        time.sleep(0.05)
    os.write(child.fd, b"q")
    assert child.wait(20) == 0  # a bound against a hang (the command would sleep 300 s), not a speed figure
    ps = subprocess.run(["pgrep", "-f", str(marker)], capture_output=True, text=True)
    assert ps.stdout == "", "the preflight's command was left running"
