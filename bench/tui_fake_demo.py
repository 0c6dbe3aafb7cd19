"""Run the TUI on the deterministic fake data of tests/tui/tui_fakes.py (no hosts needed).

    .venv/bin/python bench/tui_fake_demo.py [--data healthy|troubled] [--theme NAME] [--read-only]
                                            [--refresh SECONDS] [--hang PANEL ...]

The clock starts at the fake data's moment and runs at real speed; every poll re-stamps its result
with that clock, so the data stays fresh (or goes STALE for a ``--hang`` panel) as it would live.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "tui"))

import tui_fakes

from montagu_console.tui import terminal_problem


class RunningClock:
    """Starts at ``tui_fakes.NOW`` and advances with the monotonic clock."""

    def __init__(self) -> None:
        self._start = time.monotonic()

    def __call__(self):
        return tui_fakes.NOW + timedelta(seconds=time.monotonic() - self._start)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=("healthy", "troubled"), default="troubled")
    parser.add_argument("--theme")
    parser.add_argument("--read-only", action="store_true", default=None)
    parser.add_argument("--refresh", type=float, default=10)
    parser.add_argument("--hang", nargs="*", default=[], help="panels whose poll never returns")
    return parser.parse_args(argv)


def make_app(args: argparse.Namespace, app_class=None):
    """The app on the fake data, as ``args`` ask."""
    from montagu_console.tui.app import MontaguApp

    clock = RunningClock()
    collector = tui_fakes.FakeCollector(getattr(tui_fakes, args.data)(), hang=tuple(args.hang), clock=clock)
    return (app_class or MontaguApp)(
        tui_fakes.make_config(refresh_seconds=args.refresh),
        collector,
        theme=args.theme,
        read_only=args.read_only,
        clock=clock,
    )


def main() -> int:
    args = parse_args()
    problem = terminal_problem()
    if problem:
        print(problem, file=sys.stderr)
        return 2
    app = make_app(args)
    app.run()
    return app.return_code or 0


if __name__ == "__main__":
    sys.exit(main())
