"""barman's retention policy, read the way barman applies it: which backups a new one makes obsolete.

A manual base backup "has implications for cleanup": under ``REDUNDANCY N`` the new backup pushes
the oldest beyond N out, and barman's next cron deletes them. Under ``RECOVERY WINDOW OF N
DAYS|WEEKS|MONTHS`` a backup is kept while it is inside the window, plus the newest one older
than the window (needed to recover to the window's start); a new backup changes nothing there,
but those already outside it go at the next cron. Pure functions; ``now`` is passed in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from .snapshot import BackupInfo

_REDUNDANCY = re.compile(r"REDUNDANCY\s+(\d+)\Z", re.IGNORECASE)
_WINDOW = re.compile(r"RECOVERY\s+WINDOW\s+OF\s+(\d+)\s+(DAY|WEEK|MONTH)S?\Z", re.IGNORECASE)
_KEPT = ("KEEP_FULL", "KEEP_STANDALONE")


@dataclass(frozen=True)
class RetentionOutlook:
    """What a new base backup means for the existing ones under barman's policy."""

    policy: str | None
    obsoleted: tuple[str, ...]  # backup ids the new backup makes obsolete
    outside_window: tuple[str, ...]  # ids already past a recovery window (deleted at the next cron)
    understood: bool  # False: no policy, or one this console cannot read

    def sentence(self) -> str:
        """One preflight line for the operator."""
        if self.policy is None:
            return "barman reports no retention policy: no backup is removed after this one"
        if not self.understood:
            return f"retention {self.policy}: this console cannot tell which backups it will remove"
        parts = []
        if self.obsoleted:
            parts.append(
                f"once done, retention {self.policy} makes {_ids(self.obsoleted)} obsolete "
                "(barman cron then deletes them)"
            )
        else:
            parts.append(f"retention {self.policy}: the new backup makes no backup obsolete")
        if self.outside_window:
            parts.append(f"already outside the window, deleted at the next cron: {_ids(self.outside_window)}")
        return "; ".join(parts)


def outlook(policy: str | None, backups: tuple[BackupInfo, ...], now: datetime) -> RetentionOutlook:
    """Which of ``backups`` (newest first) a new DONE backup makes obsolete under ``policy``."""
    if policy is None:
        return RetentionOutlook(None, (), (), False)
    done = [b for b in backups if b.status == "DONE" and b.retention_status not in _KEPT]
    if m := _REDUNDANCY.match(policy.strip()):
        keep = max(int(m.group(1)) - 1, 0)
        return RetentionOutlook(policy, tuple(b.backup_id for b in done[keep:]), (), True)
    if m := _WINDOW.match(policy.strip()):
        start = _window_start(now, int(m.group(1)), m.group(2).upper())
        older = [b for b in done if b.end_time is not None and b.end_time < start]
        # the newest backup older than the window stays: it is what recovers to the window's start
        return RetentionOutlook(policy, (), tuple(b.backup_id for b in older[1:]), True)
    return RetentionOutlook(policy, (), (), False)


def _window_start(now: datetime, n: int, unit: str) -> datetime:
    if unit == "DAY":
        return now - timedelta(days=n)
    if unit == "WEEK":
        return now - timedelta(weeks=n)
    month = now.month - 1 - n
    year, month = now.year + month // 12, month % 12 + 1
    day = min(now.day, _days_in(year, month))
    return now.replace(year=year, month=month, day=day)


def _days_in(year: int, month: int) -> int:
    nxt = datetime(year + month // 12, month % 12 + 1, 1)
    return (nxt - timedelta(days=1)).day


def _ids(ids: tuple[str, ...]) -> str:
    return ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
