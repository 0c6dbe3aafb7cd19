"""Read the records of detached runs under ``state_dir/runs`` (written by the action layer)."""

from __future__ import annotations

import json
from pathlib import Path


def last_run(state_dir: Path, action: str) -> dict | None:
    """The newest run record of ``action`` (a dict from ``runs/<id>/run.json``), or None."""
    runs = Path(state_dir) / "runs"
    if not runs.is_dir():
        return None
    newest = None
    for record in runs.glob("*/run.json"):
        try:
            data = json.loads(record.read_text())
        except (OSError, ValueError):
            continue
        if data.get("action") == action and (newest is None or data.get("started_at", "") > newest.get("started_at", "")):
            newest = data
    return newest
