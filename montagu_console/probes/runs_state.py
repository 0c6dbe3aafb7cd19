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


def last_drill(state_dir: Path) -> dict | None:
    """The newest finished drill's report (drill_id, outcome, finished_at, RTO, RPO), or None."""
    root = Path(state_dir) / "drills"
    newest = None
    for report in root.glob("*/report.json") if root.is_dir() else []:
        try:
            data = json.loads(report.read_text())
        except (OSError, ValueError):
            continue
        if data.get("outcome") == "refused":
            continue  # a refused drill restored nothing: it neither passes nor fails the estate
        if newest is None or (data.get("finished_at") or "") > (newest.get("finished_at") or ""):
            newest = data
    if newest is None:
        return None
    return {k: newest.get(k) for k in ("drill_id", "outcome", "finished_at", "rto_seconds", "rpo_seconds")}
