"""Parse barman's JSON output, both generations (3.4's and 3.19's field names).

Pure functions over text: recorded output in ``tests/data`` exercises every branch. Each raises
:class:`ProbeError` naming the command when the output cannot be understood, whatever its shape
(a list where a dict is expected, a string instead of a number, missing keys): never another
exception. The JSON is decoded with :func:`montagu_console.text.clean_json`, so every string the
parsers return is clean (JSON escapes such as ``\u001b`` are decoded and then replaced).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from ..errors import ProbeError
from ..snapshot import BackupInfo, BarmanCheck
from ..text import clean_json, one_line

F = TypeVar("F", bound=Callable[..., Any])

SUPPORTED_MIN = (3, 4)
SUPPORTED_MAX = (3, 19)


def parse_version(text: str) -> str:
    """``barman --version`` -> "3.19.1"; ProbeError for an unsupported or unreadable version."""
    m = re.match(r"\s*(\d+)\.(\d+)(?:\.(\d+))?", text or "")
    if not m:
        raise ProbeError(f"barman --version: cannot read a version from {_clip(text)!r}")
    major, minor = int(m.group(1)), int(m.group(2))
    version = m.group(0).strip()
    if not SUPPORTED_MIN <= (major, minor) <= SUPPORTED_MAX:
        lo, hi = ".".join(map(str, SUPPORTED_MIN)), ".".join(map(str, SUPPORTED_MAX))
        raise ProbeError(f"barman {version} is not a supported version (the console reads barman {lo} to {hi})")
    return version


def shape_guard(command: str) -> Callable[[F], F]:
    """Turn any slip on an unexpected shape inside a parser into one ProbeError line."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except (AttributeError, TypeError, KeyError, IndexError, ValueError, OverflowError) as e:
                raise ProbeError(
                    f"barman {command}: unexpected output shape ({type(e).__name__}: {one_line(str(e), limit=80)})"
                ) from None

        return guarded  # type: ignore[return-value]

    return wrap


def load(text: str, command: str) -> Any:
    """Decode barman JSON output (strings cleaned), naming the command when it is not JSON."""
    try:
        return clean_json(text)
    except ValueError:
        raise ProbeError(f"barman {command}: output is not JSON: {_clip(text)!r}") from None


def server_section(data: Any, server: str, command: str) -> Any:
    """The part of barman's output for ``server``; ProbeError naming barman's own error."""
    if not isinstance(data, dict):
        raise ProbeError(f"barman {command}: unexpected output shape")
    errors = data.get("_ERROR")
    section = data.get(server)
    if errors and not section:
        said = "; ".join(map(str, errors)) if isinstance(errors, list) else str(errors)
        raise ProbeError(f"barman {command}: {one_line(said, limit=300)}")
    if section is None:
        raise ProbeError(f"barman {command}: no server {server!r} in barman's output (check barman.server)")
    return section


@shape_guard("status")
def parse_status(text: str, server: str) -> dict[str, str]:
    """``barman -f json status SERVER`` -> {key: message}."""
    section = server_section(load(text, "status"), server, "status")
    if not isinstance(section, dict):
        raise ProbeError("barman status: unexpected output shape")
    return {k: str(v.get("message", "")) if isinstance(v, dict) else str(v) for k, v in section.items()}


@shape_guard("check")
def parse_check(text: str, server: str) -> tuple[BarmanCheck, ...]:
    """``barman -f json check SERVER`` -> every check with its hint."""
    section = server_section(load(text, "check"), server, "check")
    if not isinstance(section, dict):
        raise ProbeError("barman check: unexpected output shape")
    checks = []
    for key, value in sorted(section.items()):
        if not isinstance(value, dict) or "status" not in value:
            raise ProbeError(f"barman check: unexpected entry {one_line(key, limit=80)!r}")
        checks.append(BarmanCheck(key.replace("_", " "), value["status"] == "OK", str(value.get("hint", ""))))
    if not checks:
        raise ProbeError("barman check: no checks in the output")
    return tuple(checks)


@shape_guard("list-backup")
def parse_list_backups(text: str, server: str) -> tuple[BackupInfo, ...]:
    """``barman -f json list-backup SERVER`` -> backups, newest first."""
    section = server_section(load(text, "list-backup"), server, "list-backup")
    if not isinstance(section, list):
        raise ProbeError("barman list-backup: expected a list of backups")
    backups = []
    for item in section:
        if not isinstance(item, dict) or "backup_id" not in item:
            raise ProbeError("barman list-backup: a backup entry has no backup_id")
        backups.append(
            BackupInfo(
                backup_id=str(item["backup_id"]),
                status=str(item.get("status", "UNKNOWN")),
                end_time=_epoch(item.get("end_time_timestamp")),
                size_bytes=_int_or_none(item.get("size_bytes")),
                wal_size_bytes=_int_or_none(item.get("wal_size_bytes")),
                name=str(item["backup_name"]) if item.get("backup_name") is not None else None,
                retention_status=_str_or_none(item.get("retention_status")),
            )
        )
    backups.sort(key=lambda b: b.backup_id, reverse=True)
    return tuple(backups)


# barman's backup ids: its start time, YYYYMMDDTHHMMSS (the only shape a path is built from)
BACKUP_ID = re.compile(r"\d{8}T\d{6}\Z")
_RETENTION = re.compile(r"retention:\s*([^,()]+?)\s*(?:,|\)|$)")


def parse_retention(status: dict[str, str]) -> tuple[str | None, bool]:
    """barman status's "Retention policies" -> (the policy in barman's words, whether enforced).

    e.g. "enforced (mode: auto, retention: RECOVERY WINDOW OF 3 MONTHS, WAL retention: MAIN)".
    """
    message = status.get("retention_policies") or ""
    m = _RETENTION.search(message)
    policy = one_line(m.group(1), limit=80) if m else None
    return policy, message.startswith("enforced") and policy is not None


def backup_id_time(backup_id: str) -> datetime | None:
    """The start time a backup id encodes (barman's host clock, read as UTC), None for another id."""
    if not BACKUP_ID.match(backup_id):
        return None
    try:
        return datetime.strptime(backup_id, "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None


@shape_guard("replication-status")
def parse_replication_status(text: str, server: str, slot: str) -> dict[str, Any]:
    """``barman -f json replication-status SERVER`` -> the streaming client on ``slot`` or None.

    Every barman streamer is called ``barman_receive_wal``: clients are told apart by slot.
    Returns ``{"server_lsn", "client"}``; raises ProbeError when barman cannot reach PostgreSQL.
    """
    section = server_section(load(text, "replication-status"), server, "replication-status")
    if not isinstance(section, dict):
        raise ProbeError("barman replication-status: unexpected output shape")
    client = None
    clients = section.get("streaming_clients") or []
    for c in clients if isinstance(clients, list) else []:
        if isinstance(c, dict) and c.get("replication_slot") == slot:
            client = {k: _str_or_none(v) for k, v in c.items()}
    return {"server_lsn": _str_or_none(section.get("server_lsn")), "client": client}


@shape_guard("diagnose")
def parse_diagnose(text: str, server: str) -> dict[str, Any]:
    """``barman diagnose`` -> the few WAL facts the console needs (nothing else is kept).

    diagnose prints conninfo strings (with any password in them): they are dropped here.
    """
    data = load(text, "diagnose")
    servers = data.get("servers") if isinstance(data, dict) else None
    if not isinstance(servers, dict) or server not in servers:
        raise ProbeError(f"barman diagnose: no server {server!r} in the output")
    s = _dict(servers[server])
    status = _dict(s.get("status"))
    slot = status.get("replication_slot")
    last = None
    per_tl = _dict(_dict(s.get("wals")).get("last_archived_wal_per_timeline"))
    for info in per_tl.values():
        if (
            isinstance(info, dict)
            and isinstance(info.get("name"), str)
            and info["name"]
            and (last is None or info["name"] > last["name"])
        ):
            last = info
    return {
        "slot": {"name": _str_or_none(slot[0]), "active": bool(slot[1]), "restart_lsn": _str_or_none(slot[2])}
        if isinstance(slot, list) and len(slot) >= 3
        else None,
        "current_lsn": _str_or_none(status.get("current_lsn") or status.get("xlogpos")),
        "last_archived_wal": last["name"] if last else None,
        "last_archived_at": _epoch(last.get("time")) if last else None,
    }


def parse_size(text: str | None) -> int | None:
    """ "183.4 MiB" -> bytes; None when barman printed nothing usable."""
    m = re.match(r"\s*(\d+(?:\.\d+)?)\s*([KMGTP]?i?B)\s*$", text if isinstance(text, str) else "")
    if not m:
        return None
    units = {
        "B": 1,
        "KiB": 1024,
        "MiB": 1024**2,
        "GiB": 1024**3,
        "TiB": 1024**4,
        "PiB": 1024**5,
        "KB": 1000,
        "MB": 1000**2,
        "GB": 1000**3,
        "TB": 1000**4,
        "PB": 1000**5,
    }
    factor = units.get(m.group(2))
    return int(float(m.group(1)) * factor) if factor else None


def lsn_to_int(lsn: str | None) -> int | None:
    """ "0/2B170708" -> byte position."""
    if not isinstance(lsn, str) or "/" not in lsn:
        return None
    hi, lo = lsn.split("/", 1)
    try:
        return (int(hi, 16) << 32) + int(lo, 16)
    except ValueError:
        return None


def _epoch(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)) or value == "":
        return None
    try:
        return datetime.fromtimestamp(float(value), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):  # garbage, nan, or a year past 9999
        return None


def _int_or_none(value: Any) -> int | None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or value != value
        or value in (float("inf"), float("-inf"))
    ):
        return None
    return int(value)


def _str_or_none(value: Any) -> str | None:
    return None if value is None or isinstance(value, (dict, list)) else str(value)


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _clip(text: str | None, n: int = 80) -> str:
    t = one_line(text or "", limit=4 * n)
    return t if len(t) <= n else t[: n - 1] + "…"
