"""Configuration: load and validate the console's YAML file.

Every problem is reported at once, each naming the key path, the file and the line:
``hosts.science.port: expected an integer, got "twenty-two" (config.yml line 14)``.
Unknown keys are errors, so a typo can never silently switch a check off.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from .errors import ConfigError

SEARCH_PATH_ENV = "MONTAGU_CONSOLE_CONFIG"


@dataclass(frozen=True)
class HostConfig:
    """One named host: how to reach it and its Docker endpoint."""

    name: str
    transport: str  # "local" or "ssh"
    host: str | None = None
    port: int = 22
    user: str | None = None
    key_file: str | None = None
    known_hosts: str | None = None
    docker: str | None = None  # unix://... or ssh://...
    connect_timeout: float = 5.0


@dataclass(frozen=True)
class BarmanConfig:
    host: str
    server: str = "montagu"
    command: tuple[str, ...] = ("barman",)
    container: str | None = None
    home: str = "/var/lib/barman"
    backup_warning_days: float = 32
    backup_critical_days: float = 35


@dataclass(frozen=True)
class WalConfig:
    slot: str = "barman"
    lag_warning_bytes: int = 64 * 1024**2
    lag_critical_bytes: int = 1024**3
    archive_warning_seconds: int = 600
    archive_critical_seconds: int = 3600


@dataclass(frozen=True)
class ReplayConfig:
    """The temporary PostgreSQL container that replays the WAL of a fresh nightly copy."""

    image: str = "ghcr.io/vimc/montagu-db:main"
    command: tuple[str, ...] = ("/etc/montagu/postgresql.production.conf",)
    user: str | None = None
    data_dir: str = "/pgdata"
    ready_command: tuple[str, ...] = ("montagu-wait.sh", "3600")
    timeout_seconds: int = 3600
    mounts: tuple[str, ...] = ()  # extra bind mounts, "SRC:DST[:ro]"
    env: tuple[str, ...] = ()  # extra environment, "K=V"


@dataclass(frozen=True)
class NightlyConfig:
    host: str
    volume: str | None = None
    path: str | None = None
    timestamp_file: str = ".barman-last-restore"
    profile: str = "bb8"
    jobs: int = 4
    mount: str = "/nightly"
    replay: "ReplayConfig" = None  # type: ignore[assignment]
    ship_command: tuple[str, ...] = ("bb8", "backup")
    warning_hours: float = 26
    critical_hours: float = 50


@dataclass(frozen=True)
class StarportConfig:
    host: str
    path: str = "~/starport"
    targets: tuple[str, ...] = ("barman_to_starport",)
    volume: str = "montagu_db_volume"
    warning_hours: float = 26
    critical_hours: float = 50


@dataclass(frozen=True)
class VerifyQuery:
    name: str
    sql: str
    expect: str


@dataclass(frozen=True)
class ScienceConfig:
    host: str
    container: str = "montagu-db"
    volume: str = "montagu_db_volume"
    data_dir: str = "/pgdata"
    db_user: str = "vimc"
    db_name: str = "montagu"
    profile: str = "bb8"
    data_warning_days: float = 35
    restore_command: tuple[str, ...] = ("bb8", "restore")
    ready_timeout_seconds: int = 7200
    primary_clock_command: tuple[str, ...] | None = None
    drill_max_age_days: float = 90
    require_drill: bool = False
    verify: tuple[VerifyQuery, ...] = ()
    rpo_sql: str | None = None


@dataclass(frozen=True)
class Config:
    """The whole, validated configuration."""

    path: Path
    hosts: dict[str, HostConfig]
    barman: BarmanConfig
    nightly: NightlyConfig
    starport: StarportConfig
    science: ScienceConfig
    wal: WalConfig = field(default_factory=WalConfig)
    refresh_seconds: float = 10
    read_only: bool = False
    theme: str = "montagu-dark"
    state_dir: Path = Path("~/.local/state/montagu-console").expanduser()
    notify: str | None = None
    connect_timeout: float = 5.0
    command_timeout: float = 30.0
    keys: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Schema: for each section, key -> (checker, default). A default of REQUIRED must be given.

REQUIRED = object()


def _int(v: Any) -> Any:
    if isinstance(v, bool) or not isinstance(v, int):
        raise _Bad("an integer")
    return v


def _positive_number(v: Any) -> Any:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
        raise _Bad("a positive number")
    return v


def _port(v: Any) -> Any:
    _int(v)
    if not 1 <= v <= 65535:
        raise _Bad("a port number (1-65535)")
    return v


def _str(v: Any) -> Any:
    if not isinstance(v, str) or not v.strip():
        raise _Bad("a non-empty string")
    return v


def _bool(v: Any) -> Any:
    if not isinstance(v, bool):
        raise _Bad("true or false")
    return v


def _str_list(v: Any) -> Any:
    if not isinstance(v, list) or not v or not all(isinstance(x, str) and x for x in v):
        raise _Bad("a non-empty list of strings")
    return tuple(v)


def _str_list_or_empty(v: Any) -> Any:
    if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
        raise _Bad("a list of strings")
    return tuple(v)


def _mount_list(v: Any) -> Any:
    _str_list_or_empty(v)
    if not all(len(x.split(":")) in (2, 3) and all(x.split(":")[:2]) and x.split(":")[2:] in ([], ["ro"], ["rw"])
               for x in v):
        raise _Bad('a list of bind mounts "SRC:DST" or "SRC:DST:ro"')
    return tuple(v)


def _env_list(v: Any) -> Any:
    _str_list_or_empty(v)
    if not all("=" in x and not x.startswith("=") for x in v):
        raise _Bad('a list of "NAME=VALUE"')
    return tuple(v)


def _choice(*choices: str) -> Callable[[Any], Any]:
    def check(v: Any) -> Any:
        if v not in choices:
            raise _Bad("one of " + ", ".join(choices))
        return v

    return check


def _docker_url(v: Any) -> Any:
    _str(v)
    if not v.startswith(("unix://", "ssh://", "tcp://")):
        raise _Bad("a Docker endpoint (unix://PATH or ssh://USER@HOST)")
    return v


def _url(v: Any) -> Any:
    _str(v)
    if not v.startswith(("http://", "https://")):
        raise _Bad("an http:// or https:// URL")
    return v


def _optional(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda v: None if v is None else check(v)


class _Bad(Exception):
    def __init__(self, expected: str):
        self.expected = expected


HOST_KEYS = {
    "transport": (_choice("local", "ssh"), REQUIRED),
    "host": (_str, None),
    "port": (_port, 22),
    "user": (_str, None),
    "key_file": (_str, None),
    "known_hosts": (_str, None),
    "docker": (_docker_url, None),
    "connect_timeout": (_positive_number, 5.0),
}
SSH_KEYS = {k: HOST_KEYS[k] for k in ("host", "port", "user", "key_file", "known_hosts")}

SECTIONS: dict[str, dict[str, tuple[Callable[[Any], Any], Any]]] = {
    "barman": {
        "host": (_str, REQUIRED),
        "server": (_str, "montagu"),
        "command": (_str_list, ("barman",)),
        "container": (_str, None),
        "home": (_str, "/var/lib/barman"),
        "thresholds": ({
            "backup_warning_days": (_positive_number, 32),
            "backup_critical_days": (_positive_number, 35),
        }, {}),
    },
    "wal": {
        "slot": (_str, "barman"),
        "thresholds": ({
            "lag_warning_bytes": (_int, 64 * 1024**2),
            "lag_critical_bytes": (_int, 1024**3),
            "archive_warning_seconds": (_int, 600),
            "archive_critical_seconds": (_int, 3600),
        }, {}),
    },
    "nightly": {
        "host": (_str, REQUIRED),
        "volume": (_str, None),
        "path": (_str, None),
        "timestamp_file": (_str, ".barman-last-restore"),
        "profile": (_choice("bb8", "privateer"), "bb8"),
        "jobs": (_int, 4),
        "mount": (_str, "/nightly"),
        "replay": ({
            "image": (_str, "ghcr.io/vimc/montagu-db:main"),
            "command": (_str_list, ("/etc/montagu/postgresql.production.conf",)),
            "user": (_str, None),
            "data_dir": (_str, "/pgdata"),
            "ready_command": (_str_list, ("montagu-wait.sh", "3600")),
            "timeout_seconds": (_int, 3600),
            "mounts": (_mount_list, ()),
            "env": (_env_list, ()),
        }, {}),
        "ship_command": (_str_list, ("bb8", "backup")),
        "thresholds": ({
            "warning_hours": (_positive_number, 26),
            "critical_hours": (_positive_number, 50),
        }, {}),
    },
    "starport": {
        "host": (_str, REQUIRED),
        "path": (_str, "~/starport"),
        "targets": (_str_list, ("barman_to_starport",)),
        "volume": (_str, "montagu_db_volume"),
        "thresholds": ({
            "warning_hours": (_positive_number, 26),
            "critical_hours": (_positive_number, 50),
        }, {}),
    },
    "science": {
        "host": (_str, REQUIRED),
        "container": (_str, "montagu-db"),
        "volume": (_str, "montagu_db_volume"),
        "data_dir": (_str, "/pgdata"),
        "db_user": (_str, "vimc"),
        "db_name": (_str, "montagu"),
        "profile": (_choice("bb8", "privateer"), "bb8"),
        "restore_command": (_str_list, ("bb8", "restore")),
        "ready_timeout_seconds": (_int, 7200),
        "primary_clock_command": (_str_list, None),
        "verify": ("verify", ()),
        "rpo_sql": (_str, None),
        "thresholds": ({
            "data_warning_days": (_positive_number, 35),
            "drill_max_age_days": (_positive_number, 90),
            "require_drill": (_bool, False),
        }, {}),
    },
}

TOP_KEYS: dict[str, tuple[Callable[[Any], Any], Any]] = {
    "refresh_seconds": (_positive_number, 10),
    "read_only": (_bool, False),
    "theme": (_str, "montagu-dark"),
    "state_dir": (_str, "~/.local/state/montagu-console"),
    "notify": (_optional(_url), None),
    "timeouts": ({
        "connect_seconds": (_positive_number, 5.0),
        "command_seconds": (_positive_number, 30.0),
    }, {}),
    "keys": ("keys", {}),
}

VERIFY_EXPECT = ("not null", ">", ">=", "==", "<", "<=", "!=")


# ---------------------------------------------------------------------------------------------


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
    """Read and validate ``path``; raise ConfigError listing every problem."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError([f"{path}: config file not found"]) from None
    except OSError as e:
        raise ConfigError([f"{path}: cannot read config: {e.strerror}"]) from None
    return parse_config(text, path)


def parse_config(text: str, path: Path) -> Config:
    """Validate YAML text as a config (``path`` is used in messages and relative paths)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError([f"{path.name}: not valid YAML: {problem}{where}"]) from None
    if node is None:
        raise ConfigError([f"{path.name}: config file is empty"])
    v = _Validator(path.name)
    raw = v.mapping(node, "")
    if raw is None:
        raise ConfigError(v.errors)
    cfg = v.build(raw, path)
    if v.errors:
        raise ConfigError(sorted(v.errors, key=_line_of))
    return cfg


def _line_of(message: str) -> int:
    m = re.search(r" line (\d+)\)$", message)
    return int(m.group(1)) if m else 0


class _Validator:
    def __init__(self, filename: str):
        self.filename = filename
        self.errors: list[str] = []

    def error(self, key: str, message: str, node: yaml.Node | None) -> None:
        line = f" ({self.filename} line {node.start_mark.line + 1})" if node is not None else f" ({self.filename})"
        self.errors.append(f"{key or 'config'}: {message}{line}")

    def mapping(self, node: yaml.Node, key: str) -> dict[str, tuple[yaml.Node, yaml.Node]] | None:
        if not isinstance(node, yaml.MappingNode):
            self.error(key, f"expected a mapping, got {_describe(node)}", node)
            return None
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for k, val in node.value:
            name = k.value if isinstance(k, yaml.ScalarNode) else str(k)
            if name in out:
                self.error(_join(key, name), "duplicate key", k)
            out[name] = (k, val)
        return out

    def section(self, raw: dict, key: str, schema: dict, node: yaml.Node | None) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, (k, _val) in raw.items():
            if name not in schema:
                self.error(_join(key, name), f"unknown key (allowed: {', '.join(sorted(schema))})", k)
        for name, (check, default) in schema.items():
            path = _join(key, name)
            if name not in raw:
                if default is REQUIRED:
                    self.error(path, "missing required key", node)
                elif isinstance(check, dict):
                    values[name] = self.section({}, path, check, node)
                else:
                    values[name] = default
                continue
            _k, val = raw[name]
            if default is None and isinstance(val, yaml.ScalarNode) and _scalar(val) is None:
                values[name] = None  # an optional key given as null
                continue
            if isinstance(check, dict):
                sub = self.mapping(val, path)
                values[name] = self.section(sub or {}, path, check, val)
            elif check == "verify":
                values[name] = self.verify(val, path)
            elif check == "keys":
                sub = self.mapping(val, path) or {}
                keys = {}
                for kname, (_kk, kval) in sub.items():
                    got = self.scalar(kval, _join(path, kname), _str)
                    if got is not None:
                        keys[kname] = got
                values[name] = keys
            else:
                values[name] = self.scalar(val, path, check)
        return values

    def scalar(self, node: yaml.Node, path: str, check: Callable[[Any], Any]) -> Any:
        value = yaml.safe_load(yaml.serialize(node)) if not isinstance(node, yaml.ScalarNode) else _scalar(node)
        try:
            return check(value)
        except _Bad as bad:
            self.error(path, f"expected {bad.expected}, got {_show(value)}", node)
            return None

    def verify(self, node: yaml.Node, path: str) -> tuple[VerifyQuery, ...]:
        if not isinstance(node, yaml.SequenceNode):
            self.error(path, f"expected a list of {{name, sql, expect}}, got {_describe(node)}", node)
            return ()
        out = []
        for i, item in enumerate(node.value):
            ipath = f"{path}[{i}]"
            raw = self.mapping(item, ipath)
            if raw is None:
                continue
            vals = self.section(raw, ipath, {"name": (_str, REQUIRED), "sql": (_str, REQUIRED),
                                             "expect": (_str, REQUIRED)}, item)
            expect = vals.get("expect")
            if expect is not None and parse_expect(expect) is None:
                self.error(f"{ipath}.expect", f'expected "not null" or a comparison such as "> 0", got {_show(expect)}',
                           raw["expect"][1])
            if all(vals.get(k) for k in ("name", "sql", "expect")):
                out.append(VerifyQuery(vals["name"], vals["sql"], vals["expect"]))
        return tuple(out)

    def build(self, raw: dict, path: Path) -> Config | None:
        for name, (k, _v) in raw.items():
            if name not in TOP_KEYS and name not in SECTIONS and name != "hosts":
                allowed = sorted(list(TOP_KEYS) + list(SECTIONS) + ["hosts"])
                self.error(name, f"unknown key (allowed: {', '.join(allowed)})", k)
        top = self.section({k: v for k, v in raw.items() if k in TOP_KEYS}, "", TOP_KEYS, None)
        hosts = self.hosts(raw.get("hosts"))
        sections = {}
        for name, schema in SECTIONS.items():
            if name not in raw:
                if name == "wal":
                    sections[name] = self.section({}, name, schema, None)
                else:
                    self.error(name, "missing required section", None)
                continue
            k, val = raw[name]
            sub = self.mapping(val, name)
            sections[name] = self.section(sub or {}, name, schema, val)
            host = sections[name].get("host")
            if host is not None and hosts is not None and host not in hosts:
                known = ", ".join(sorted(hosts)) or "none"
                self.error(f"{name}.host", f"unknown host {_show(host)} (hosts: {known})", (sub or {}).get("host", (None, val))[1])
        nightly = sections.get("nightly")
        if nightly and "nightly" in raw:
            if bool(nightly.get("volume")) == bool(nightly.get("path")):
                self.error("nightly", "give exactly one of volume (a Docker volume) or path (a directory)", raw["nightly"][1])
        if self.errors or hosts is None:
            return None
        base = path.parent
        t = top["timeouts"]
        return Config(
            path=path,
            hosts={n: HostConfig(**{**h, "connect_timeout": h.get("connect_timeout") or t["connect_seconds"]})
                   for n, h in hosts.items()},
            barman=BarmanConfig(**_flat(sections["barman"])),
            wal=WalConfig(**_flat(sections["wal"])),
            nightly=NightlyConfig(**{**_flat(sections["nightly"]),
                                     "replay": ReplayConfig(**sections["nightly"]["replay"])}),
            starport=StarportConfig(**_flat(sections["starport"])),
            science=ScienceConfig(**_flat(sections["science"])),
            refresh_seconds=top["refresh_seconds"],
            read_only=top["read_only"],
            theme=top["theme"],
            state_dir=(base / Path(top["state_dir"]).expanduser()).resolve(),
            notify=top["notify"],
            connect_timeout=t["connect_seconds"],
            command_timeout=t["command_seconds"],
            keys=top["keys"],
        )

    def hosts(self, entry: tuple[yaml.Node, yaml.Node] | None) -> dict[str, dict] | None:
        if entry is None:
            self.error("hosts", "missing required section", None)
            return None
        k, node = entry
        raw = self.mapping(node, "hosts")
        if raw is None:
            return None
        if not raw:
            self.error("hosts", "no hosts defined", node)
        out = {}
        for name, (_hk, hnode) in raw.items():
            path = f"hosts.{name}"
            hraw = self.mapping(hnode, path)
            if hraw is None:
                continue
            nested = {}
            if "ssh" in hraw:  # hosts.NAME.ssh.{host,port,...} is accepted as well as the flat form
                _sk, snode = hraw.pop("ssh")
                for sname, (skey, sval) in (self.mapping(snode, f"{path}.ssh") or {}).items():
                    if sname not in SSH_KEYS:
                        self.error(f"{path}.ssh.{sname}", f"unknown key (allowed: {', '.join(sorted(SSH_KEYS))})", skey)
                    elif sname in hraw:
                        self.error(f"{path}.ssh.{sname}", f"also given as {path}.{sname}", skey)
                    else:
                        nested[sname] = self.scalar(sval, f"{path}.ssh.{sname}", SSH_KEYS[sname][0])
            values = self.section(hraw, path, HOST_KEYS, hnode)
            values.update({k: v for k, v in nested.items() if v is not None})
            if values.get("transport") == "ssh" and not values.get("host"):
                self.error(f"{path}.host", "missing required key for transport: ssh", hnode)
            if values.get("key_file"):
                values["key_file"] = str(Path(values["key_file"]).expanduser())
            if values.get("known_hosts"):
                values["known_hosts"] = str(Path(values["known_hosts"]).expanduser())
            out[name] = {"name": name, **values}
        return out


def parse_expect(expect: str) -> tuple[str, float | None] | None:
    """Parse a verification expectation: ``not null`` or ``OP NUMBER``; None if malformed."""
    e = expect.strip().lower()
    if e == "not null":
        return ("not null", None)
    for op in (">=", "<=", "==", "!=", ">", "<"):
        if e.startswith(op):
            try:
                return (op, float(e[len(op):].strip()))
            except ValueError:
                return None
    return None


def _flat(values: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in values.items() if k != "thresholds"}
    out.update(values.get("thresholds") or {})
    return out


def _scalar(node: yaml.ScalarNode) -> Any:
    return yaml.safe_load(yaml.serialize(node))


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _describe(node: yaml.Node) -> str:
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    return _show(_scalar(node))


def _show(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)
