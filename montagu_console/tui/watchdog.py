"""Stay alive only while the terminal is: a TTY watchdog plus SIGHUP/SIGTERM handlers.

With SIGHUP ignored (nohup, some sudo/su chains) a Textual app whose SSH session dropped spins
on the dead terminal. Worse, once Textual's writer thread has died on the dead terminal, every
later screen update queues up and the 31st blocks the event loop for good, so neither a timer
nor a graceful exit can be relied on. Hence the watchdog is a thread of its own, and a hang-up
asks the app to exit but ends the process hard if that has not happened within ``GRACE``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import termios
import threading
from collections.abc import Callable
from functools import partial

from textual.app import App

INTERVAL = 1.5  # seconds between terminal checks
GRACE = 2.0  # seconds a hang-up exit may take before the process is ended hard
TERMINAL_FDS = (0, 1, 2)  # Textual reads stdin and draws on stderr; run_tui requires all three be TTYs
EXIT_HANGUP = 128 + signal.SIGHUP
EXIT_TERM = 128 + signal.SIGTERM


def terminal_alive(fds: tuple[int, ...] = TERMINAL_FDS) -> bool:
    """True while every fd in ``fds`` is still a working terminal."""
    for fd in fds:
        try:
            if not os.isatty(fd):
                return False
            termios.tcgetattr(fd)
        except (OSError, termios.error):
            return False
    return True


class TerminalGuard:
    """Installs the watchdog thread and signal handlers on a running app; ``remove`` undoes them."""

    def __init__(self, app: App) -> None:
        self._app = app
        self._signals: list[signal.Signals] = []
        self._stopped = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def install(self) -> None:
        """Start watching. A SIGHUP ignored at start (nohup) stays ignored: the watchdog covers it."""
        loop = self._loop = asyncio.get_running_loop()
        threading.Thread(target=self._watch, name="terminal watchdog", daemon=True).start()
        handlers: dict[signal.Signals, Callable[[], object]] = {
            signal.SIGHUP: self._hang_up,
            signal.SIGTERM: partial(self._app.exit, return_code=EXIT_TERM),
        }
        for sig, handler in handlers.items():
            if signal.getsignal(sig) is not signal.SIG_IGN:
                loop.add_signal_handler(sig, handler)
                self._signals.append(sig)

    def remove(self) -> None:
        """Stop watching and remove the signal handlers (a hang-up exit under way keeps its backstop)."""
        self._stopped.set()
        for sig in self._signals:
            if self._loop is not None:
                self._loop.remove_signal_handler(sig)
        self._signals.clear()

    def _watch(self) -> None:
        while not self._stopped.wait(INTERVAL):
            if not terminal_alive():
                self._hang_up()
                return

    def _hang_up(self) -> None:
        """The terminal is gone: ask the app to exit; end the process if it is still here after GRACE."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(partial(self._app.exit, return_code=EXIT_HANGUP))
        backstop = threading.Timer(GRACE, os._exit, (EXIT_HANGUP,))
        backstop.daemon = True
        backstop.start()
