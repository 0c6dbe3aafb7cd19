"""What the action keys will do, in words, until the action layer arrives (spec section 5)."""

from __future__ import annotations

import shlex

from ..config import Config

PENDING = "actions arrive with the actions issue; nothing was run"
REFUSED = "refused: this console is read-only (--read-only or read_only: true in the config); nothing was run"


def describe(action: str, config: Config) -> str:
    """One line naming the action, the command or steps, and the host it would run on."""
    if action == "base-backup":
        argv = [*config.barman.command, "backup", config.barman.server, "--wait"]
        return f"base backup via `{shlex.join(argv)}` on {config.barman.host}"
    if action == "nightly-recover":
        n = config.nightly
        into = f"volume {n.volume}" if n.volume else n.path
        return (f"nightly recover ({n.profile} profile): barman recover latest into {into} on {n.host}, "
                f"replay the WAL, write {n.timestamp_file}")
    if action == "science-restore":
        s = config.science
        return f"science restore ({s.profile} profile) of {s.container} on {s.host}: it overwrites science's database"
    if action == "restore-drill":
        return (f"guided restore drill on {config.science.host}: restore, start, follow the redo, "
                "verify, report RTO and RPO")
    if action == "cancel-run":
        return "cancel the selected run (no run started from this console is attached)"
    raise ValueError(f"unknown action {action!r}")
