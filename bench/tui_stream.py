"""Key latency while a run's log grows fast: the run view streaming N lines/s (headless Pilot).

A run directory in a temporary state_dir is fed by ``tests/tui/fake_supervisor.py`` (a process
that says it is the run's supervisor and appends ``--rate`` lines a second); the console
re-attaches to it, and, with and then without the stream, measures on the run view:

* answer: from a key reaching the app (as from the terminal) to its effect (``?`` opens the
  help, ``esc`` closes it): how soon the operator sees the console react;
* pilot.press: ``time.perf_counter`` around ``pilot.press`` for ``up``/``down`` (scrolling the
  log being written); Pilot also waits for the process to go idle, so this is an upper bound;
* the tailer's messages and lines, and then, for 3 s with no key pressed, the app's CPU (all
  its threads, % of one core) while the run view shows the stream.

    .venv/bin/python bench/tui_stream.py [--rate 10000] [--seconds 8] [--size 120x36]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "tui"))

import tui_fakes
import tui_runs
from tui_helpers import answer_time, ready, wait_for

from montagu_console.tui.app import MontaguApp
from montagu_console.tui.messages import RunUpdated
from montagu_console.tui.screens.help import HelpScreen
from montagu_console.tui.screens.run import RunScreen

IDLE_SECONDS = 3.0


def figures(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return f"median {statistics.median(ms):6.1f} ms  p95 {p95:6.1f} ms  max {ms[-1]:6.1f} ms  (n={len(ms)})"


async def measure(rate: int, seconds: float, size: tuple[int, int]) -> None:
    config = tui_runs.write_config(Path(tempfile.mkdtemp(prefix="montagu-bench-")))
    run = tui_runs.create_run(config, "nightly-recover")
    proc = tui_runs.start_fake_supervisor(run, rate=rate, seconds=seconds + IDLE_SECONDS + 5, step=1)
    batches: list[int] = []

    def hook(message) -> None:
        if isinstance(message, RunUpdated):
            batches.append(len(message.lines))

    app = MontaguApp(config, tui_fakes.FakeCollector(), clock=tui_fakes.frozen())
    try:
        async with app.run_test(size=size, message_hook=hook) as pilot:
            await ready(pilot)
            await wait_for(pilot, lambda: app.attached_runs == [run], timeout=10)
            await pilot.press("v")
            await wait_for(pilot, lambda: isinstance(app.screen, RunScreen))
            answered, pressed = [], []
            wall = time.monotonic()
            while time.monotonic() - wall < seconds:
                answered.append(
                    await answer_time(app, "question_mark", "?", lambda: isinstance(app.screen, HelpScreen))
                )
                await pilot.pause()
                answered.append(await answer_time(app, "escape", None, lambda: isinstance(app.screen, RunScreen)))
                await pilot.pause()
                for key in ("up", "down"):
                    start = time.perf_counter()
                    await pilot.press(key)
                    pressed.append(time.perf_counter() - start)
            cpu, wall = time.process_time(), time.monotonic()
            await asyncio.sleep(IDLE_SECONDS)
            cpu = (time.process_time() - cpu) / (time.monotonic() - wall)
            lines = sum(batches)
    finally:
        proc.kill()
        proc.wait()
    print(f"log growing at {rate:>6} lines/s, run view {size[0]}x{size[1]}:")
    print(f"  answer (? opens help, esc closes)  {figures(answered)}")
    print(f"  pilot.press (up/down in the log)   {figures(pressed)}")
    print(
        f"  tailer: {len(batches)} messages for {lines} lines "
        f"({lines / max(len(batches), 1):.0f} lines a message); app CPU with no key pressed {cpu:.0%} of one core"
    )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rate", type=int, default=10_000, help="log lines per second")
    p.add_argument("--seconds", type=float, default=8, help="how long to press keys")
    p.add_argument("--size", default="120x36")
    args = p.parse_args()
    size = tuple(int(x) for x in args.size.split("x"))
    for rate in (args.rate, 0):
        asyncio.run(measure(rate, args.seconds, size))


if __name__ == "__main__":
    main()
