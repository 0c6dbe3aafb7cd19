"""The Textual TUI of montagu-console. Import lazily: the headless core never needs it.

``run_tui`` checks the terminal first (a TTY of at least 80x24) and only then imports Textual.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from typing import Any

from ..config import Config
from ..errors import ConsoleError

MIN_COLUMNS, MIN_LINES = 80, 24
HEADLESS_HINT = "use `montagu-console check` for a headless report"


def terminal_problem() -> str | None:
    """Why this process cannot run the TUI (not a TTY, too small), or None when it can."""
    for fd, stream in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        if not os.isatty(fd):
            return f"montagu-console needs an interactive terminal ({stream} is not a TTY); {HEADLESS_HINT}"
    size = os.get_terminal_size(1)
    if size.columns < MIN_COLUMNS or size.lines < MIN_LINES:
        return (
            f"montagu-console needs a terminal of at least {MIN_COLUMNS}x{MIN_LINES} "
            f"(this one is {size.columns}x{size.lines}); {HEADLESS_HINT}"
        )
    return None


def run_tui(
    config: Config,
    collector_factory: Callable[[Config], Any],
    *,
    theme: str | None = None,
    read_only: bool | None = None,
) -> int:
    """Run the TUI on ``collector_factory(config)``; return the exit status.

    Problems the operator must fix (no TTY, small terminal, unknown theme, bad keymap) are printed
    as one line on stderr, never as a traceback.
    """
    problem = terminal_problem()
    if problem:
        print(problem, file=sys.stderr)
        return 2
    from .app import MontaguApp

    collector = collector_factory(config)
    try:
        app = MontaguApp(config, collector, theme=theme, read_only=read_only)
    except ConsoleError as e:
        asyncio.run(collector.close())
        print(f"montagu-console: {e}", file=sys.stderr)
        return e.exit_code
    app.run()
    return app.return_code or 0
