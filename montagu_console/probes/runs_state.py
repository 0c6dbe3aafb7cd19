"""Read the records of detached runs and drills under ``state_dir`` (written by the action layer)."""

from __future__ import annotations

import json
from pathlib import Path

from ..runstate import effective_state


def last_run(state_dir: Path, actions: tuple[str, ...]) -> dict | None:
    """The newest record (``run.json``) of a run or drill whose action is in ``actions``, or None.

    Its ``state`` is corrected to ``interrupted`` when the run's process died without saying so.
    Run ids begin with their creation time, so records are read newest first and only until the
    newest match of each kind: a refresh costs the same after a thousand runs as after one.
    """
    newest = None
    for kind in ("runs", "drills"):
        folder = Path(state_dir) / kind
        names = sorted((p.name for p in folder.iterdir()), reverse=True) if folder.is_dir() else []
        for name in names:
            try:
                data = json.loads((folder / name / "run.json").read_text())
            except (OSError, ValueError):
                continue
            if not isinstance(data, dict) or data.get("state") == "refused":
                continue  # a refused run changed nothing
            if data.get("action") in actions:
                if newest is None or data.get("created_at", "") > newest.get("created_at", ""):
                    newest = data | {"state": str(effective_state(data))}
                break
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
