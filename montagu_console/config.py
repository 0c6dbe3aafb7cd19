"""Configuration: load and validate the console's YAML file.

The schema is declared once, as frozen pydantic dataclasses below (unknown keys forbidden).
Every problem is reported at once, each naming the key path, the file and the line:
``hosts.science.port: expected an integer, got "twenty-two" (config.yml line 14)``.
Unknown keys are errors, so a typo can never silently switch a check off.
"""

from __future__ import annotations

import dataclasses
import math
import os
import posixpath
import re
import stat
from pathlib import Path
from typing import Annotated, Any, Generic, Literal, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    Strict,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.dataclasses import dataclass
from pydantic_core import ArgsKwargs, PydanticCustomError

from .errors import ConfigError
from .redact import redact

_T = TypeVar("_T")

SEARCH_PATH_ENV = "MONTAGU_CONSOLE_CONFIG"
SHOW_CHARS = 60  # the longest value quoted back in an error message
MAX_CONFIG_BYTES = 1024 * 1024  # a config file is a few KiB; this refuses /dev/zero or a log by mistake

_MODEL = ConfigDict(extra="forbid", allow_inf_nan=False, arbitrary_types_allowed=True)


# -- value types ------------------------------------------------------------------------------


def _bad(message: str, at: str = "") -> PydanticCustomError:
    """A validation error with our own wording; ``at`` is a key path below the failing location."""
    return PydanticCustomError("config", "{message}", {"message": message, "at": at})


def _got(value: Any) -> str:
    return _show(value)


def _bounded(lo: float | None, hi: float | None, what: str, *, lo_open: bool = False):
    def check(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            raise _bad(f"expected a finite number, got {_got(v)}")
        if (lo is not None and (v <= lo if lo_open else v < lo)) or (hi is not None and v > hi):
            if lo is not None and hi is not None:
                span = f"{'above ' if lo_open else ''}{lo:g}-{hi:g}" if not lo_open else f"> {lo:g} and <= {hi:g}"
            elif lo is not None:
                span = f"> {lo:g}" if lo_open else f">= {lo:g}"
            else:
                span = f"<= {hi:g}"
            raise _bad(f"expected {what} ({span}), got {_got(v)}")
        return v

    return AfterValidator(check)


def _nonblank(v: str) -> str:
    if not v.strip():
        raise _bad("expected a non-empty string, got " + _got(v))
    return v


Int = Annotated[int, Strict()]
Num = Annotated[float, Strict()]
Bool = Annotated[bool, Strict()]
Str = Annotated[str, Strict(), AfterValidator(_nonblank)]
Positive = Annotated[Num, _bounded(0, None, "a positive number", lo_open=True)]
PositiveInt = Annotated[Int, _bounded(0, None, "a positive integer", lo_open=True)]
Port = Annotated[Int, _bounded(1, 65535, "a port number")]
Timeout = Annotated[Num, _bounded(0, 86400, "a number of seconds", lo_open=True)]
TimeoutInt = Annotated[Int, _bounded(0, 86400, "a number of seconds", lo_open=True)]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")


def _name(v: str) -> str:
    if not _NAME.match(v):
        raise _bad(f"expected a name of letters, digits, _ . - (not starting with . _ -), got {_got(v)}")
    return v


Name = Annotated[str, Strict(), AfterValidator(_name)]


def _clean_path(v: str, *, home_ok: bool) -> str:
    if not v or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in v):
        raise _bad(f"expected an absolute path without spaces or control characters, got {_got(v)}")
    rest = v[2:] if home_ok and v.startswith("~/") else v
    if not (rest.startswith("/") or (home_ok and v.startswith("~/"))):
        raise _bad(f"expected an absolute path{' (or ~/...)' if home_ok else ''}, got {_got(v)}")
    if ".." in rest.split("/"):
        raise _bad(f"expected a path without .. components, got {_got(v)}")
    norm = posixpath.normpath(rest) if rest.startswith("/") else posixpath.normpath("/" + rest)[1:]
    if norm in ("/", "//", "", "."):
        raise _bad(f"expected a directory below /, got {_got(v)}")
    if norm.startswith("//"):
        norm = norm[1:]
    return "~/" + norm if v.startswith("~/") else norm


AbsPath = Annotated[str, Strict(), AfterValidator(lambda v: _clean_path(v, home_ok=False))]
HomePath = Annotated[str, Strict(), AfterValidator(lambda v: _clean_path(v, home_ok=True))]


def _file_name(v: str) -> str:
    if "/" in v or v in (".", "..") or v.startswith("-") or not v or any(ord(c) < 32 or ord(c) == 127 for c in v):
        raise _bad(f"expected a plain file name (no /, not . or .., not starting with -), got {_got(v)}")
    return v


FileName = Annotated[str, Strict(), AfterValidator(_file_name)]


def _host_ref(v: str, info: ValidationInfo) -> str:
    known = (info.context or {}).get("hosts")
    if known is not None and v not in known:
        raise _bad(f"unknown host {_got(v)} (hosts: {', '.join(sorted(known)) or 'none'})")
    return v


HostRef = Annotated[Str, AfterValidator(_host_ref)]


def _argv(v: tuple[str, ...]) -> tuple[str, ...]:
    if not v or not all(x for x in v):
        raise _bad("expected a non-empty list of non-empty strings, got " + _got(list(v)))
    return v


Argv = Annotated[tuple[Annotated[str, Strict()], ...], AfterValidator(_argv)]


def _mounts(v: tuple[str, ...]) -> tuple[str, ...]:
    for i, x in enumerate(v):
        parts = x.split(":")
        if not (len(parts) in (2, 3) and all(parts[:2]) and parts[2:] in ([], ["ro"], ["rw"])):
            raise _bad(f'expected a bind mount "SRC:DST" or "SRC:DST:ro", got {_got(x)}', at=f"[{i}]")
    return v


def _env(v: tuple[str, ...]) -> tuple[str, ...]:
    for i, x in enumerate(v):
        if "=" not in x or x.startswith("="):
            raise _bad(
                'expected "NAME=VALUE", got ' + _got(x.split("=", 1)[0] + "=..." if "=" in x else x), at=f"[{i}]"
            )
    return v


def _docker_url(v: str) -> str:
    if not v.startswith(("unix://", "ssh://", "tcp://")):
        raise _bad(f"expected a Docker endpoint (unix://PATH or ssh://USER@HOST), got {_got(v)}")
    return v


def _notify_url(v: str) -> str:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(v)
        has_credentials = parts.username is not None or parts.password is not None
    except ValueError:
        raise _bad("expected an http:// or https:// URL") from None
    if has_credentials or "@" in parts.netloc:
        raise _bad("a URL with credentials (user:password@) is not allowed; use a token-free endpoint")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        # the value is not shown: a webhook's path and query are its secret
        raise _bad(f"expected an http:// or https:// URL, got a {parts.scheme or 'schemeless'} URL")
    return v


def _ssh_word(v: str) -> str:
    if not v or v.startswith("-") or any(c.isspace() or not c.isprintable() for c in v):
        raise _bad(f"expected a host or user name (no spaces, not starting with -), got {_got(v)}")
    return v


SshWord = Annotated[str, Strict(), AfterValidator(_ssh_word)]


def _local_file(v: str | None, info: ValidationInfo) -> str | None:
    """key_file / known_hosts: ``~`` expanded, relative to the config file's directory."""
    if v is None:
        return None
    p = Path(v).expanduser()
    base = (info.context or {}).get("base")
    if base and not p.is_absolute():
        p = Path(base) / p
    return str(p)


DockerUrl = Annotated[Str, AfterValidator(_docker_url)]
NotifyUrl = Annotated[str, Strict(), AfterValidator(_notify_url)]


def _warn_below_crit(warning: str, critical: str):
    """A model check: ``warning`` must be below ``critical`` (named by their keys)."""

    def check(self: Any) -> Any:
        if getattr(self, warning) >= getattr(self, critical):
            raise _bad(
                f"{warning} ({getattr(self, warning):g}) must be below {critical} ({getattr(self, critical):g})",
                at=warning,
            )
        return self

    return model_validator(mode="after")(check)


def _lift_thresholds(thresholds: type) -> Any:
    """Accept the flat keyword form ``BarmanConfig(backup_warning_days=...)`` used in code: every
    field of the section's ``thresholds`` class may be given at the top level."""

    def lift(data: Any) -> Any:
        names = [f.name for f in dataclasses.fields(thresholds)]
        if not isinstance(data, ArgsKwargs) or not data.kwargs or not any(n in data.kwargs for n in names):
            return data
        kwargs = dict(data.kwargs)
        base = kwargs.get("thresholds")
        merged: dict[str, Any] = dict(base.__dict__) if dataclasses.is_dataclass(base) else dict(base or {})
        merged.update({n: kwargs.pop(n) for n in names if n in kwargs})
        kwargs["thresholds"] = merged
        return ArgsKwargs(data.args, kwargs)

    return model_validator(mode="before")(lift)


class _Flat(Generic[_T]):
    """A read-only flat name for ``<obj>.<section>.<name>`` (``barman.backup_warning_days``,
    ``config.connect_timeout``): the attributes code has always read, declared once."""

    def __init__(self, section: str, name: str | None = None) -> None:
        self.section, self.name = section, name

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = self.name or name

    def __get__(self, obj: Any, owner: type | None = None) -> _T:
        return getattr(getattr(obj, self.section), self.name or "")


# -- the schema ---------------------------------------------------------------------------------


class _Copyable:
    """``model_copy(update=...)`` as on pydantic models: a copy with fields replaced, NOT validated
    (``dataclasses.replace`` validates). For tests that hand the steps what a bypass would."""

    def model_copy(self, *, update: dict[str, Any] | None = None) -> Any:
        import copy

        clone = copy.copy(self)
        for name, value in (update or {}).items():
            object.__setattr__(clone, name, value)
        return clone


@dataclass(frozen=True, config=_MODEL)
class SshConfig(_Copyable):
    """The ``hosts.NAME.ssh`` form of a host's SSH settings."""

    host: SshWord | None = None
    port: Port | None = None
    user: SshWord | None = None
    key_file: Str | None = None
    known_hosts: Str | None = None


@dataclass(frozen=True, config=_MODEL)
class HostConfig(_Copyable):
    """One named host: how to reach it and its Docker endpoint."""

    name: str = ""
    transport: str = "local"  # "local" or "ssh" (checked in the config file by the host section)
    host: SshWord | None = None
    port: Port | None = None  # None: not given, ~/.ssh/config's Port (or 22) applies
    user: SshWord | None = None
    key_file: Str | None = None
    known_hosts: Str | None = None
    docker: DockerUrl | None = None  # unix://... or ssh://...
    connect_timeout: Timeout | None = None  # None: timeouts.connect_seconds
    ssh: SshConfig | None = None

    @model_validator(mode="after")
    def _merge_ssh(self, info: ValidationInfo) -> HostConfig:
        if self.ssh is not None:
            for f in dataclasses.fields(SshConfig):
                value = getattr(self.ssh, f.name)
                if value is None:
                    continue
                if getattr(self, f.name) is not None:
                    raise _bad(f"also given as {f.name} of this host", at=f"ssh.{f.name}")
                object.__setattr__(self, f.name, value)
            object.__setattr__(self, "ssh", None)
        for name in ("key_file", "known_hosts"):
            object.__setattr__(self, name, _local_file(getattr(self, name), info))
        if self.transport == "ssh" and not self.host:
            raise _bad("missing required key for transport: ssh", at="host")
        return self


@dataclass(frozen=True, config=_MODEL)
class _HostEntry(HostConfig):
    """A host as written in the config file: the transport is one of the known ones."""

    transport: Literal["local", "ssh"] = Field(default=...)

    @model_validator(mode="before")
    @classmethod
    def _no_name_key(cls, data: Any) -> Any:
        if isinstance(data, dict) and "name" in data:  # the name is the key under hosts:
            raise _bad(f"unknown key (allowed: {', '.join(_allowed(cls))})", at="name")
        return data


@dataclass(frozen=True, config=_MODEL)
class BarmanThresholds(_Copyable):
    backup_warning_days: Positive = 32
    backup_critical_days: Positive = 35
    _order = _warn_below_crit("backup_warning_days", "backup_critical_days")


@dataclass(frozen=True, config=_MODEL)
class BarmanConfig(_Copyable):
    """One barman instance (``barman`` is one of these or a list of them; the first is annex's)."""

    host: HostRef
    name: Name | None = None  # filled in: the host's name when not given
    slot: Name | None = None  # filled in: wal.slot when not given
    server: Name = "montagu"
    command: Argv = ("barman",)
    container: Name | None = None
    home: AbsPath = "/var/lib/barman"
    thresholds: BarmanThresholds = dataclasses.field(default_factory=BarmanThresholds)
    _lift = _lift_thresholds(BarmanThresholds)

    backup_warning_days = _Flat[float]("thresholds")
    backup_critical_days = _Flat[float]("thresholds")

    def exec_prefix(self) -> tuple[str, ...] | None:
        """The argv prefix that runs a program where barman runs: ``command`` minus its final
        ``barman`` (``()`` for a local barman); None when ``command`` does not end with barman."""
        if self.command and posixpath.basename(self.command[-1]) == "barman":
            return tuple(self.command[:-1])
        return None


@dataclass(frozen=True, config=_MODEL)
class WalThresholds(_Copyable):
    lag_warning_bytes: PositiveInt = 64 * 1024**2
    lag_critical_bytes: PositiveInt = 1024**3
    archive_warning_seconds: PositiveInt = 600
    archive_critical_seconds: PositiveInt = 3600
    slot_retained_critical_bytes: PositiveInt = 1024**3
    _lag = _warn_below_crit("lag_warning_bytes", "lag_critical_bytes")
    _archive = _warn_below_crit("archive_warning_seconds", "archive_critical_seconds")


@dataclass(frozen=True, config=_MODEL)
class WalConfig(_Copyable):
    slot: Name = "barman"
    thresholds: WalThresholds = dataclasses.field(default_factory=WalThresholds)
    _lift = _lift_thresholds(WalThresholds)

    lag_warning_bytes = _Flat[int]("thresholds")
    lag_critical_bytes = _Flat[int]("thresholds")
    archive_warning_seconds = _Flat[int]("thresholds")
    archive_critical_seconds = _Flat[int]("thresholds")
    slot_retained_critical_bytes = _Flat[int]("thresholds")


@dataclass(frozen=True, config=_MODEL)
class PrimaryConfig(_Copyable):
    """Where ``psql`` runs connected to the primary: ``command`` is an argv prefix (e.g. through
    barman's container, which holds the passfile); the console appends ``-X -A -t -c SQL``."""

    host: HostRef
    command: Argv


@dataclass(frozen=True, config=_MODEL)
class ReplayConfig(_Copyable):
    """The temporary PostgreSQL container that replays the WAL of a fresh nightly copy."""

    image: Str = "ghcr.io/vimc/montagu-db:main"
    command: Argv = ("/etc/montagu/postgresql.production.conf",)
    user: Str | None = None
    data_dir: AbsPath = "/pgdata"
    ready_command: Argv = ("montagu-wait.sh", "3600")
    timeout_seconds: TimeoutInt = 3600
    mounts: Annotated[tuple[Annotated[str, Strict()], ...], AfterValidator(_mounts)] = ()  # "SRC:DST[:ro]"
    env: Annotated[tuple[Annotated[str, Strict()], ...], AfterValidator(_env)] = ()  # "K=V"


@dataclass(frozen=True, config=_MODEL)
class HoursThresholds(_Copyable):
    warning_hours: Positive = 26
    critical_hours: Positive = 50
    _order = _warn_below_crit("warning_hours", "critical_hours")


NIGHTLY_DUMP_DIR = "dump"  # the directory in the nightly copy that a recover writes into first


@dataclass(frozen=True, config=_MODEL)
class NightlyThresholds(HoursThresholds):
    proof_max_age_hours: Positive = 50  # no passed proof of the copy in this long is a WARNING
    # room for this many copies beside the copy (a recover writes a new one before the old goes):
    # less is a WARNING, less than one copy CRITICAL, and the nightly recover is refused
    free_space_factor: Annotated[Num, _bounded(1, 10, "a factor between 1 and 10")] = 1.2


@dataclass(frozen=True, config=_MODEL)
class NightlyConfig(_Copyable):
    host: HostRef
    volume: Name | None = None
    path: AbsPath | None = None
    timestamp_file: FileName = ".barman-last-restore"
    profile: Literal["bb8", "privateer"] = "bb8"
    jobs: Annotated[Int, _bounded(1, 64, "a number of jobs")] = 4
    mount: AbsPath = "/nightly"
    replay: ReplayConfig = dataclasses.field(default_factory=ReplayConfig)
    ship_command: Argv = ("bb8", "backup")
    thresholds: NightlyThresholds = dataclasses.field(default_factory=NightlyThresholds)
    _lift = _lift_thresholds(NightlyThresholds)

    @model_validator(mode="after")
    def _one_place(self) -> NightlyConfig:
        if bool(self.volume) == bool(self.path):
            raise _bad("give exactly one of volume (a Docker volume) or path (a directory)")
        return self

    warning_hours = _Flat[float]("thresholds")
    critical_hours = _Flat[float]("thresholds")


def _unique_names(v: tuple[str, ...]) -> tuple[str, ...]:
    if not v:
        raise _bad("expected a non-empty list of target names, got an empty list")
    seen: set[str] = set()
    for i, name in enumerate(v):
        _name_at(name, f"[{i}]")
        if name in seen:
            raise _bad(f"duplicate target {_got(name)}", at=f"[{i}]")
        seen.add(name)
    return v


def _name_at(v: str, at: str) -> None:
    try:
        _name(v)
    except PydanticCustomError as e:
        raise _bad(e.context["message"] if e.context else str(e), at=at) from None


@dataclass(frozen=True, config=_MODEL)
class StarportConfig(_Copyable):
    host: HostRef
    path: HomePath = "~/starport"
    targets: Annotated[tuple[Annotated[str, Strict()], ...], AfterValidator(_unique_names)] = ("barman_to_starport",)
    volume: Name = "montagu_db_volume"
    thresholds: HoursThresholds = dataclasses.field(default_factory=HoursThresholds)
    _lift = _lift_thresholds(HoursThresholds)

    warning_hours = _Flat[float]("thresholds")
    critical_hours = _Flat[float]("thresholds")


def _expectation(v: str) -> str:
    if parse_expect(v) is None:
        raise _bad(f'expected "not null" or a comparison such as "> 0", got {_got(v)}')
    return v


@dataclass(frozen=True, config=_MODEL)
class VerifyQuery(_Copyable):
    name: Str
    sql: Str
    expect: Annotated[Str, AfterValidator(_expectation)]


@dataclass(frozen=True, config=_MODEL)
class ScienceThresholds(_Copyable):
    data_warning_days: Positive = 35
    drill_max_age_days: Positive = 90
    require_drill: Bool = False


@dataclass(frozen=True, config=_MODEL)
class ScienceConfig(_Copyable):
    host: HostRef
    container: Name = "montagu-db"
    volume: Name = "montagu_db_volume"
    data_dir: AbsPath = "/pgdata"
    db_user: Str = "vimc"
    db_name: Str = "montagu"
    profile: Literal["bb8", "privateer"] = "bb8"
    restore_command: Argv = ("bb8", "restore")
    ready_timeout_seconds: TimeoutInt = 7200
    primary_clock_command: Argv | None = None
    verify: tuple[VerifyQuery, ...] = ()
    rpo_sql: Str | None = None
    thresholds: ScienceThresholds = dataclasses.field(default_factory=ScienceThresholds)
    _lift = _lift_thresholds(ScienceThresholds)

    data_warning_days = _Flat[float]("thresholds")
    drill_max_age_days = _Flat[float]("thresholds")
    require_drill = _Flat[bool]("thresholds")


@dataclass(frozen=True, config=_MODEL)
class HistoryConfig(_Copyable):
    """The history database (``state_dir/history.sqlite3``)."""

    retention_days: Annotated[Int, _bounded(1, 36500, "a number of days")] = 400
    panel_every_seconds: Annotated[Num, _bounded(0, 86400, "a number of seconds")] = 60  # and on every change


def _within(path: str, top: str) -> bool:
    """Whether ``path`` is ``top`` or lies below it (both absolute)."""
    return path == top or path.startswith(top.rstrip("/") + "/")


@dataclass(frozen=True, config=_MODEL)
class PitrConfig(_Copyable):
    """Point-in-time recovery: a scratch copy on the nightly's host, never the nightly copy or science."""

    volume: Name = "montagu_pitr_volume"
    mount: AbsPath = "/pitr"  # where barman's container mounts that volume (barman recovers into it)
    keep_minutes: Annotated[Int, _bounded(1, 7 * 24 * 60, "a number of minutes")] = 120
    port: Port = 15433  # the scratch database's port on that host, for the operator's psql


@dataclass(frozen=True, config=_MODEL)
class Timeouts(_Copyable):
    connect_seconds: Timeout = 5.0  # SSH connect / Docker ping
    command_seconds: Timeout = 30.0  # any one command or file read on a host


def _dir_path(v: Any, info: ValidationInfo) -> Path:
    """state_dir / lock_dir: ``~`` expanded, relative to the config file's directory, absolute."""
    text = str(v)
    if not text or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise _bad(f"expected a directory path, got {_got(text)}")
    base = (info.context or {}).get("base")
    p = Path(text).expanduser()
    if not p.is_absolute():
        p = Path(base or Path.cwd()) / p
    if ".." in p.parts:
        raise _bad(f"expected a path without .. components, got {_got(text)}")
    p = Path(posixpath.normpath(str(p)))
    if p == Path("/"):
        raise _bad(f"expected a directory below /, got {_got(text)}")
    return p


DirPath = Annotated[Path, AfterValidator(_dir_path)]


@dataclass(frozen=True, config=_MODEL)
class Config(_Copyable):
    """The whole, validated configuration (``path`` is the file it came from, absolute)."""

    hosts: dict[str, _HostEntry]
    barmans: tuple[BarmanConfig, ...]  # the YAML key `barman`: one mapping or a list of them
    nightly: NightlyConfig
    starport: StarportConfig
    science: ScienceConfig
    path: Path = Path("config.yml")
    wal: WalConfig = dataclasses.field(default_factory=WalConfig)
    primary: PrimaryConfig | None = None
    refresh_seconds: Annotated[Num, _bounded(0.5, 3600, "a number of seconds")] = 10
    read_only: Bool = False
    theme: Str = "montagu-dark"
    state_dir: DirPath = Path("~/.local/state/montagu-console")
    lock_dir: DirPath = Path("/run/montagu-console")
    notify: NotifyUrl | None = None
    timeouts: Timeouts = dataclasses.field(default_factory=Timeouts)
    keys: dict[str, Str] = dataclasses.field(default_factory=dict)
    history: HistoryConfig = dataclasses.field(default_factory=HistoryConfig)
    pitr: PitrConfig = dataclasses.field(default_factory=PitrConfig)

    @field_validator("hosts", mode="after")
    @classmethod
    def _some_hosts(cls, v: dict[str, HostConfig]) -> dict[str, HostConfig]:
        if not v:
            raise _bad("no hosts defined")
        for name in v:
            _name_at(name, name)
        return v

    @field_validator("barmans", mode="after")
    @classmethod
    def _named_barmans(cls, v: tuple[BarmanConfig, ...]) -> tuple[BarmanConfig, ...]:
        if not v:
            raise _bad("expected one barman or a list of them, got an empty list")
        seen: set[str] = set()
        named = []
        for i, b in enumerate(v):
            b = b if b.name else dataclasses.replace(b, name=b.host)
            if b.name in seen:
                raise _bad(f"duplicate barman name {_got(b.name)} (give each instance its own name)", at=f"[{i}].name")
            seen.add(b.name or "")
            named.append(b)
        return tuple(named)

    @field_validator("nightly", mode="after")
    @classmethod
    def _mount_apart_from_barman_home(cls, v: NightlyConfig, info: ValidationInfo) -> NightlyConfig:
        barmans = info.data.get("barmans")
        barman = barmans[0] if barmans else None
        if barman is not None:
            mount, home = v.mount, barman.home
            if mount == home or home.startswith(mount + "/") or mount.startswith(home + "/"):
                raise _bad(
                    f"must not be barman's home {_got(home)}, a parent of it or inside it, got {_got(mount)}",
                    at="mount",
                )
        return v

    @field_validator("pitr", mode="after")
    @classmethod
    def _pitr_apart(cls, v: PitrConfig, info: ValidationInfo) -> PitrConfig:
        nightly, science = info.data.get("nightly"), info.data.get("science")
        taken = {getattr(nightly, "volume", None): "nightly.volume", getattr(science, "volume", None): "science.volume"}
        if v.volume in taken:
            raise _bad(f"must be a scratch volume of its own, got {_got(v.volume)} ({taken[v.volume]})", at="volume")
        barmans = info.data.get("barmans")
        kept = {getattr(nightly, "mount", None): "nightly.mount", barmans[0].home if barmans else None: "barman's home"}
        for path, what in kept.items():
            if path and (_within(v.mount, path) or _within(path, v.mount)):
                raise _bad(
                    f"must be apart from {what} {_got(path)} (not it, a parent or inside it), got {_got(v.mount)}",
                    at="mount",
                )
        return v

    @model_validator(mode="after")
    def _fill_hosts(self) -> Config:
        for name, h in list(self.hosts.items()):
            changes: dict[str, Any] = {}
            if h.name != name:
                changes["name"] = name
            if h.connect_timeout is None:
                changes["connect_timeout"] = self.timeouts.connect_seconds
            if changes:
                self.hosts[name] = dataclasses.replace(h, **changes)
        slotted = tuple(b if b.slot else dataclasses.replace(b, slot=self.wal.slot) for b in self.barmans)
        if slotted != self.barmans:
            object.__setattr__(self, "barmans", slotted)
        return self

    @property
    def barman(self) -> BarmanConfig:
        """The first barman instance (annex's): the one the actions run on."""
        return self.barmans[0]

    def barman_named(self, name: str) -> BarmanConfig:
        """The barman instance called ``name``; ConfigError listing the names otherwise."""
        for b in self.barmans:
            if b.name == name:
                return b
        names = ", ".join(b.name or "" for b in self.barmans)
        raise ConfigError([f"no barman instance {name!r} in the config (instances: {names})"])

    connect_timeout = _Flat[float]("timeouts", "connect_seconds")
    command_timeout = _Flat[float]("timeouts", "command_seconds")


# -- finding and loading ------------------------------------------------------------------------


def find_config(explicit: str | None) -> Path:
    """The config file to use: --config, $MONTAGU_CONSOLE_CONFIG, the user's, the system's."""
    if explicit:
        return Path(explicit).expanduser()
    candidates = []
    if os.environ.get(SEARCH_PATH_ENV):
        return Path(os.environ[SEARCH_PATH_ENV]).expanduser()
    candidates.append(Path("~/.config/montagu-console/config.yml").expanduser())
    candidates.append(Path("/etc/montagu-console/config.yml"))
    for c in candidates:
        if c.exists():
            return c
    looked = ", ".join(["--config", f"${SEARCH_PATH_ENV}"] + [str(c) for c in candidates])
    raise ConfigError([f"no config found (looked at {looked}); try `montagu-console demo` for the embedded lab"])


def load_config(path: Path) -> Config:
    """Read and validate ``path``; raise ConfigError listing every problem.

    ``Config.path`` is absolute (resolved now), so a process with another cwd (the detached
    supervisor runs in ``/``) re-reads the same file.
    """
    path = Path(path).expanduser().resolve()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise ConfigError([f"{path}: config file not found"]) from None
    except OSError as e:
        raise ConfigError([f"{path}: cannot read config: {e.strerror}"]) from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise ConfigError([f"{path}: cannot read config: it is a directory"])
        if not stat.S_ISREG(mode):
            raise ConfigError([f"{path}: cannot read config: not a regular file"])
        data = b""
        while len(data) <= MAX_CONFIG_BYTES and (chunk := os.read(fd, MAX_CONFIG_BYTES + 1 - len(data))):
            data += chunk
    except OSError as e:
        raise ConfigError([f"{path}: cannot read config: {e.strerror}"]) from None
    finally:
        os.close(fd)
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError([f"{path}: cannot read config: larger than {MAX_CONFIG_BYTES // 1024} KiB"])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ConfigError([f"{path}: config is not UTF-8 text (invalid byte at line {line})"]) from None
    return parse_config(text, path)


def parse_config(text: str, path: Path) -> Config:
    """Validate YAML text as a config (``path`` is used in messages and relative paths)."""
    path = Path(path).expanduser().resolve()
    try:
        return _parse(text, path)
    except RecursionError:
        raise ConfigError([f"{path.name}: YAML nested too deeply to be a config"]) from None


def _parse(text: str, path: Path) -> Config:
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError([f"{path.name}: not valid YAML: {problem}{where}"]) from None
    if node is None:
        raise ConfigError([f"{path.name}: config file is empty"])
    tree = _Tree(path.name)
    data = tree.value(node, ())
    if tree.errors:
        raise ConfigError(_sorted(tree.errors))
    if not isinstance(data, dict):
        line = node.start_mark.line + 1
        raise ConfigError([f"config: expected a mapping, got {_show(data)} ({path.name} line {line})"])
    errors = []
    for hidden in ("path", "barmans"):
        if hidden in data:
            errors.append(tree.message((hidden,), f"unknown key (allowed: {', '.join(_allowed(Config))})"))
            data.pop(hidden)
    listed = isinstance(data.get("barman"), list)
    if "barman" in data:
        data["barmans"] = data.pop("barman") if listed else [data.pop("barman")]
    context = {"hosts": set(data["hosts"]) if isinstance(data.get("hosts"), dict) else None, "base": str(path.parent)}
    try:
        cfg = _ADAPTER.validate_python({**data, "path": path}, context=context)
    except ValidationError as e:
        errors += [tree.message(*_yaml_loc(*_explain(err), listed)) for err in e.errors(include_url=False)]
    if errors:
        raise ConfigError(_sorted(errors))
    return cfg


_ADAPTER: TypeAdapter[Config] = TypeAdapter(Config)


def parse_expect(expect: str) -> tuple[str, float | None] | None:
    """Parse a verification expectation: ``not null`` or ``OP NUMBER``; None if malformed."""
    e = expect.strip().lower()
    if e == "not null":
        return ("not null", None)
    for op in (">=", "<=", "==", "!=", ">", "<"):
        if e.startswith(op):
            try:
                number = float(e[len(op) :].strip())
            except ValueError:
                return None
            return (op, number) if math.isfinite(number) else None
    return None


# -- YAML nodes to data, with lines; pydantic errors to messages -------------------------------

Loc = tuple[Any, ...]


class _Loader(yaml.SafeLoader):
    """Composes without expanding aliases: an anchor or alias becomes a marked node, refused later
    (an alias bomb of a few hundred bytes would otherwise expand to gigabytes)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.get_event()
            node: Any = yaml.ScalarNode("tag:yaml.org,2002:null", "", event.start_mark, event.end_mark)
            node.aliased = True
            return node
        anchored = getattr(self.peek_event(), "anchor", None) is not None
        node = super().compose_node(parent, index)
        if anchored:
            node.aliased = True
        return node


class _Tree:
    """Turns a composed YAML node tree into plain data, remembering each value's line."""

    def __init__(self, filename: str):
        self.filename = filename
        self.lines: dict[Loc, int] = {(): 0}
        self.errors: list[str] = []
        self._constructor = yaml.SafeLoader("")

    def value(self, node: yaml.Node, loc: Loc) -> Any:
        self.lines[loc] = node.start_mark.line + 1
        if getattr(node, "aliased", False):
            self.errors.append(self.message(loc, "YAML anchors and aliases are not allowed"))
            return None
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for k, v in node.value:
                key = self._constructor.construct_object(k) if isinstance(k, yaml.ScalarNode) else None
                name = str(key) if key is not None else f"<{_describe_node(k)}>"
                if name in out:
                    self.lines[(*loc, name)] = k.start_mark.line + 1
                    self.errors.append(self.message((*loc, name), "duplicate key"))
                    continue
                out[name] = self.value(v, (*loc, name))
                self.lines[(*loc, name)] = min(self.lines[(*loc, name)], k.start_mark.line + 1)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.value(v, (*loc, i)) for i, v in enumerate(node.value)]
        return self._constructor.construct_object(node)

    def line(self, loc: Loc) -> int:
        while loc and loc not in self.lines:
            loc = loc[:-1]
        return self.lines.get(loc, 0)

    def message(self, loc: Loc, text: str) -> str:
        line = self.line(loc)
        where = f"{self.filename} line {line}" if line else self.filename
        return f"{_key(loc) or 'config'}: {text} ({where})"


_EXPECTED = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "finite_number": "a finite number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "path_type": "a path",
    "tuple_type": "a list",
    "list_type": "a list",
    "dict_type": "a mapping",
    "dataclass_type": "a mapping",
    "dataclass_args_type": "a mapping",
    "model_type": "a mapping",
}


def _explain(err: Any) -> tuple[Loc, str]:
    """The key path and the message for one pydantic error."""
    loc: Loc = tuple(x for x in err["loc"] if x != "[key]")
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "config":
        at = ctx.get("at") or ""
        for part in re.findall(r"[^.\[\]]+|\[\d+\]", at):
            loc = (*loc, int(part[1:-1]) if part.startswith("[") else part)
        return loc, ctx["message"]
    if kind in ("missing", "missing_argument", "missing_keyword_only_argument"):
        return loc, "missing required section" if len(loc) == 1 else "missing required key"
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        return loc, f"unknown key (allowed: {', '.join(_allowed(_model_at(loc[:-1])))})"
    if kind == "literal_error":
        return loc, f"expected one of {ctx.get('expected', '?').replace(chr(39), '')}, got {_show(err.get('input'))}"
    if kind in _EXPECTED:
        return loc, f"expected {_EXPECTED[kind]}, got {_show(err.get('input'))}"
    return loc, f"{redact(str(err.get('msg', 'invalid')))[:SHOW_CHARS]}, got {_show(err.get('input'))}"


def _yaml_loc(loc: Loc, message: str, listed: bool) -> tuple[Loc, str]:
    """A location in the ``barmans`` field written as the YAML key ``barman`` (a list or, when
    ``listed`` is false, the one mapping the field holds as its only entry)."""
    if loc[:1] == ("barmans",):
        rest = loc[1:] if listed or not loc[1:] or not isinstance(loc[1], int) else loc[2:]
        loc = ("barman", *rest)
    return loc, message


def _model_at(loc: Loc) -> Any:
    """The schema class that validates the mapping at ``loc`` (None if not a mapping of fields)."""
    import typing

    cls: Any = Config
    i = 0
    while i < len(loc) and cls is not None:
        hints = typing.get_type_hints(cls, include_extras=True)
        t = hints.get(loc[i])
        i += 1
        cls = _strip(t)
        origin = typing.get_origin(cls)
        if origin in (dict, tuple) and i < len(loc):
            args = typing.get_args(cls)
            cls = _strip(args[-1] if origin is dict else args[0])
            i += 1
    return cls if dataclasses.is_dataclass(cls) else None


def _strip(t: Any) -> Any:
    import types
    import typing

    while True:
        if typing.get_origin(t) is Annotated:
            t = typing.get_args(t)[0]
        elif typing.get_origin(t) in (typing.Union, types.UnionType):
            t = next(a for a in typing.get_args(t) if a is not type(None))
        else:
            return t


def _allowed(cls: Any) -> list[str]:
    if cls is None:
        return []
    if cls is Config:
        return sorted({f.name for f in dataclasses.fields(cls)} - {"path", "barmans"} | {"barman"})
    hidden = {"name"} if issubclass(cls, HostConfig) else set()
    return sorted(f.name for f in dataclasses.fields(cls) if f.name not in hidden)


def _key(loc: Loc) -> str:
    out = ""
    for part in loc:
        if not isinstance(part, int):
            part = "".join(c if c.isprintable() else "?" for c in str(part))
            part = part[:SHOW_CHARS] + "..." if len(part) > SHOW_CHARS else part
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _sorted(errors: list[str]) -> list[str]:
    return sorted(dict.fromkeys(errors), key=_line_of)


def _line_of(message: str) -> int:
    m = re.search(r" line (\d+)\)$", message)
    return int(m.group(1)) if m else 0


def _describe_node(node: yaml.Node) -> str:
    if isinstance(node, yaml.SequenceNode):
        return f"a list of {len(node.value)} items"
    if isinstance(node, yaml.MappingNode):
        return f"a mapping of {len(node.value)} keys"
    return "a value"


def _show(value: Any) -> str:
    """A value for an error message: scalars quoted and capped, containers by type and size."""
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return f"a mapping of {len(value)} key{'s' if len(value) != 1 else ''}"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)} item{'s' if len(value) != 1 else ''}"
    if isinstance(value, str):
        text = redact(value)
        text = "".join(c if c.isprintable() else "?" for c in text)
        if len(text) > SHOW_CHARS:
            text = text[:SHOW_CHARS] + "..."
        return f'"{text}"'
    if isinstance(value, (bool, int, float)):
        return repr(value)[:SHOW_CHARS]
    return f"a {type(value).__name__}"
