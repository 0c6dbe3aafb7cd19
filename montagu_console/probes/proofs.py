"""Proofs of the nightly copy: ``state_dir/proofs.jsonl``, one JSON record per line.

The action layer appends a record each time it has replayed a copy and run science.verify and
science.rpo_sql against it (actions/proof.py); the starport and restore panels read the file's
tail here. Only the newest :data:`TAIL_BYTES` are read, so a file of years costs what a file of
a week does; a line that is not a proof record is skipped, and every string is cleaned
(:func:`montagu_console.text.clean_json`). The record's fields (:data:`FIELDS`) are a contract
with the history.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from datetime import datetime
from pathlib import Path
from typing import Any

from ..clock import parse_iso
from ..snapshot import Proof, StarportFacts
from ..text import clean_json

PROOFS_FILE = "proofs.jsonl"
TAIL_BYTES = 1024 * 1024  # about 2,000 proofs: years of nights
FIELDS = ("proof_id", "run_id", "proven_at", "outcome", "copy_restored_at", "data_newest", "checks", "reason", "how")
OUTCOMES = ("passed", "failed")


def _time(value: Any, *, required: bool = False) -> datetime | None:
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise ValueError("not a time")
    return parse_iso(value)


def parse_proof(line: str | bytes) -> Proof | None:
    """One line of proofs.jsonl as a :class:`Proof`, None when it is not a proof record."""
    try:
        data = clean_json(line)
        if not isinstance(data, dict) or data.get("outcome") not in OUTCOMES:
            return None
        checks = data.get("checks") or []
        if not isinstance(checks, list) or not all(isinstance(c, dict) for c in checks):
            return None
        proven_at = _time(data.get("proven_at"), required=True)
        assert proven_at is not None
        return Proof(
            proof_id=str(data.get("proof_id") or ""),
            run_id=data["run_id"] if isinstance(data.get("run_id"), str) else None,
            proven_at=proven_at,
            outcome=data["outcome"],
            copy_restored_at=_time(data.get("copy_restored_at")),
            data_newest=_time(data.get("data_newest")),
            checks=tuple(checks),
            reason=data["reason"] if isinstance(data.get("reason"), str) else None,
            how=str(data.get("how") or ""),
        )
    except (ValueError, TypeError, KeyError):
        return None


def read_proofs(state_dir: Path | str, *, tail_bytes: int = TAIL_BYTES) -> list[Proof]:
    """The proofs in the newest ``tail_bytes`` of proofs.jsonl, oldest first; [] without the file.

    A symlink or anything but a regular file is not read (a FIFO would block a refresh). The
    answer is kept while the file's identity, size and mtime stay the same (every refresh asks)."""
    path = Path(state_dir) / PROOFS_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return []
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return []
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, tail_bytes)
        cached = _CACHE.get(str(path))
        if cached is not None and cached[0] == key:
            return list(cached[1])
        start = max(0, st.st_size - tail_bytes)
        data = os.pread(fd, st.st_size - start, start)
    finally:
        os.close(fd)
    lines = data.split(b"\n")
    if start > 0:
        lines = lines[1:]  # the first line was cut by the tail
    proofs = [p for p in map(parse_proof, lines) if p is not None]
    _CACHE[str(path)] = (key, tuple(proofs))
    return proofs


_CACHE: dict[str, tuple[tuple, tuple[Proof, ...]]] = {}  # path -> (file identity, its proofs)


def proof_of_copy(proofs: list[Proof], restored_at: datetime | None) -> Proof | None:
    """The newest proof of the copy stamped ``restored_at``.

    A copy without a stamp (a nightly recover whose proof failed writes none) is taken to be the
    one of the newest proof only when that proof has no stamp either."""
    if restored_at is None:
        newest = max(proofs, key=lambda p: p.proven_at, default=None)
        return newest if newest is not None and newest.copy_restored_at is None else None
    matching = [p for p in proofs if p.copy_restored_at == restored_at]
    return max(matching, key=lambda p: p.proven_at, default=None)


def passed_copies(proofs: list[Proof]) -> set[datetime]:
    """The stamps of every copy with a passed proof."""
    return {p.copy_restored_at for p in proofs if p.outcome == "passed" and p.copy_restored_at is not None}


def newest_passed(proofs: list[Proof], restored_at: datetime | None = None) -> Proof | None:
    """The newest passed proof (of the copy stamped ``restored_at`` when given)."""
    passed = [p for p in proofs if p.outcome == "passed" and (restored_at is None or p.copy_restored_at == restored_at)]
    return max(passed, key=lambda p: p.proven_at, default=None)


def with_proofs(facts: StarportFacts, state_dir: Path | str) -> StarportFacts:
    """The starport's facts with the proofs of its nightly copy (read every refresh: a local file)."""
    proofs = read_proofs(state_dir)
    return dataclasses.replace(
        facts,
        proof=proof_of_copy(proofs, facts.nightly_restored_at),
        last_passed_proof=newest_passed(proofs),
    )


def copy_proven(state_dir: Path | str, restored_at: datetime | None) -> bool | None:
    """Whether data stamped ``restored_at`` (science's) is a copy with a passed proof; None when
    its stamp is unknown."""
    if restored_at is None:
        return None
    return restored_at in passed_copies(read_proofs(state_dir))
