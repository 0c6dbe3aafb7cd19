"""Polling: one poll at a time per panel, re-armed with a timer when it finishes.

Each panel has its own async worker, so a slow or dead host holds up only its own panels.
A poll never overlaps the previous one of the same panel: the next is scheduled only when
the current one has ended, and "refresh now" leaves a panel whose poll is in flight alone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Protocol

from textual.app import App
from textual.timer import Timer

from ..snapshot import PANELS, PanelResult, Status
from .messages import ActionNote, PanelUpdated


class Collector(Protocol):
    """What the TUI needs from ``montagu_console.collect.Collector``."""

    async def panel(self, name: str) -> PanelResult: ...

    def read_in_full(self) -> None: ...

    async def close(self) -> None: ...


class Recorder(Protocol):
    """What the TUI needs from ``montagu_console.history.PanelRecorder`` (called from a thread)."""

    def offer(self, result: PanelResult) -> str | None: ...


class Poller:
    """Runs the per-panel poll workers on ``app``; results arrive as :class:`PanelUpdated`."""

    def __init__(
        self,
        app: App,
        collector: Collector,
        period: float,
        clock: Callable[[], datetime],
        recorder: Recorder | None = None,
    ) -> None:
        self.period = period
        self._recorder = recorder
        self._app = app
        self._collector = collector
        self._clock = clock
        self._since: dict[str, datetime] = {}  # clock time each poll in flight started
        self._ended: dict[str, float] = {}  # monotonic time each panel's last poll ended
        self._timers: dict[str, Timer] = {}

    def start(self) -> None:
        """Start the first poll of every panel."""
        for name in PANELS:
            self.poll(name)

    def polling_since(self, name: str) -> datetime | None:
        """When the poll in flight for ``name`` started; None when it is idle."""
        return self._since.get(name)

    def poll(self, name: str) -> bool:
        """Poll ``name`` now, unless a poll of it is already in flight (then return False)."""
        if name in self._since:
            return False
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.stop()
        self._since[name] = self._clock()
        self._app.run_worker(self._run(name), name=f"poll {name}", group=f"poll-{name}", exit_on_error=False)
        return True

    def set_period(self, period: float) -> None:
        """Change the period; waiting panels are re-armed to their last poll's end plus the new period."""
        self.period = period
        now = time.monotonic()
        for name, timer in list(self._timers.items()):
            remaining = self._ended[name] + period - now
            if remaining > 0:
                timer.stop()
                self._arm(name, remaining)
            else:
                self.poll(name)

    async def _run(self, name: str) -> None:
        try:
            result = await self._collector.panel(name)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the collector promises not to raise; a bug there must not stop polling
            result = PanelResult(
                name,
                Status.UNKNOWN,
                f"{name}: the probe failed: {type(e).__name__}: {e}",
                {},
                self._clock(),
                error=repr(e),
            )
        del self._since[name]
        self._ended[name] = time.monotonic()
        self._arm(name, self.period)
        self._app.post_message(PanelUpdated(result))
        if self._recorder is not None:  # the history, written off the UI thread; a failure says so once
            problem = await asyncio.to_thread(self._recorder.offer, result)
            if problem:
                self._app.post_message(ActionNote(problem))

    def _arm(self, name: str, delay: float) -> None:
        self._timers[name] = self._app.set_timer(delay, partial(self.poll, name), name=f"poll {name}")
