"""Config loading: every error at once, each with file, line and key path; unknown keys refused."""

import os
from pathlib import Path

import pytest

from montagu_console.config import ConfigError, find_config, load_config, parse_config

GOOD = """\
hosts:
  annex: {transport: local, docker: unix:///var/run/docker.sock}
  science:
    transport: ssh
    host: science.example
    port: 22
    user: montagu
barman: {host: annex, command: [docker, exec, barman-montagu, barman], container: barman-montagu}
nightly: {host: annex, volume: montagu_db_volume}
starport: {host: annex}
science:
  host: science
  verify:
    - {name: rows, sql: "select count(*) from api_access_log", expect: "> 0"}
  rpo_sql: select max(timestamp) from api_access_log
"""


def errors_of(text):
    with pytest.raises(ConfigError) as e:
        parse_config(text, Path("/etc/x/config.yml"))
    return e.value.errors


def test_good_config_and_defaults():
    cfg = parse_config(GOOD, Path("/etc/x/config.yml"))
    assert cfg.barman.server == "montagu" and cfg.barman.command == ("docker", "exec", "barman-montagu", "barman")
    assert cfg.hosts["science"].port == 22 and cfg.hosts["annex"].docker == "unix:///var/run/docker.sock"
    assert cfg.starport.targets == ("barman_to_starport",) and cfg.starport.path == "~/starport"
    assert cfg.refresh_seconds == 10 and cfg.read_only is False
    assert cfg.barman.backup_warning_days == 32 and cfg.wal.lag_critical_bytes == 1024**3
    assert cfg.science.verify[0].expect == "> 0"


def test_spec_example_error_message():
    errs = errors_of(GOOD.replace("port: 22", 'port: "twenty-two"'))
    assert errs == ['hosts.science.port: expected an integer, got "twenty-two" (config.yml line 6)']


def test_nested_ssh_form_is_accepted():
    text = GOOD.replace(
        "    host: science.example\n    port: 22\n    user: montagu\n",
        "    ssh: {host: science.example, port: twenty-two, user: montagu}\n",
    )
    assert errors_of(text) == ['hosts.science.ssh.port: expected an integer, got "twenty-two" (config.yml line 5)']
    cfg = parse_config(text.replace("twenty-two", "2222"), Path("config.yml"))
    assert (cfg.hosts["science"].host, cfg.hosts["science"].port) == ("science.example", 2222)


def test_all_errors_at_once_with_lines():
    text = (
        GOOD.replace("port: 22", "port: 99999").replace(
            "starport: {host: annex}", "starport: {host: anex, tragets: [x]}"
        )
        + "refresh_secs: 3\n"
    )
    errs = errors_of(text)
    assert any(e.startswith("hosts.science.port: expected a port number") and "line 6" in e for e in errs)
    assert any(e.startswith('starport.host: unknown host "anex"') for e in errs)
    assert any(e.startswith("starport.tragets: unknown key") and "line 10" in e for e in errs)
    assert any(e.startswith("refresh_secs: unknown key") and "line 16" in e for e in errs)
    assert len(errs) == 4


def test_missing_sections_and_required_keys():
    errs = errors_of("hosts:\n  annex: {transport: local}\nbarman: {server: montagu}\n")
    assert "barman.host: missing required key (config.yml line 3)" in errs
    assert any(e.startswith("nightly: missing required section") for e in errs)
    assert any(e.startswith("science: missing required section") for e in errs)


def test_bad_verify_expectation():
    errs = errors_of(GOOD.replace('expect: "> 0"', 'expect: "about ten"'))
    assert errs[0].startswith('science.verify[0].expect: expected "not null" or a comparison')


def test_nightly_needs_volume_or_path():
    errs = errors_of(GOOD.replace("nightly: {host: annex, volume: montagu_db_volume}", "nightly: {host: annex}"))
    assert errs[0].startswith("nightly: give exactly one of volume")


@pytest.mark.parametrize(
    "text,needle",
    [("", "config file is empty"), ("hosts: [\n", "not valid YAML"), ("- a\n- b\n", "config: expected a mapping")],
)
def test_empty_or_invalid(text, needle):
    assert needle in errors_of(text)[0]


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yml")


def test_no_config_anywhere_suggests_demo(monkeypatch, tmp_path):
    monkeypatch.delenv("MONTAGU_CONSOLE_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    if Path("/etc/montagu-console/config.yml").exists():
        pytest.skip("a system config exists on this machine")
    with pytest.raises(ConfigError, match="montagu-console demo"):
        find_config(None)


def test_example_config_is_valid():
    cfg = load_config(Path(__file__).resolve().parents[2] / "config.example.yml")
    assert cfg.barman.command[:3] == ("docker", "exec", "barman-montagu")


def test_relative_config_path_is_made_absolute(tmp_path, monkeypatch):
    """Finding 10: a relative --config still names the same file from another cwd (the supervisor's /)."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "config.yml").write_text(GOOD + "state_dir: state\n")
    monkeypatch.chdir(tmp_path)
    cfg = load_config(Path("sub/config.yml"))
    assert cfg.path == tmp_path.resolve() / "sub" / "config.yml" and cfg.path.is_absolute()
    assert cfg.state_dir == tmp_path.resolve() / "sub" / "state"
    monkeypatch.chdir("/")
    assert load_config(cfg.path).path == cfg.path


BAD_PATHS = ["/", "//", "/nightly data", "/a/../b", "nightly", "/a\tb", "~/x"]


@pytest.mark.parametrize("value", BAD_PATHS)
@pytest.mark.parametrize("key", ["nightly.mount", "barman.home", "nightly.replay.data_dir", "science.data_dir"])
def test_path_keys_are_absolute_and_clean(key, value):
    """Finding 1: path keys are absolute, normalised, never /, no spaces, controls or .. components."""
    section, *rest = key.split(".")
    value_yaml = '"' + value.replace("\t", "\\t") + '"'
    inner = f"{rest[-1]}: {value_yaml}" if len(rest) == 1 else f"{rest[0]}: {{{rest[1]}: {value_yaml}}}"
    text = (
        GOOD.replace(f"{section}: {{host: annex", f"{section}: {{host: annex, {inner}")
        if section != "science"
        else GOOD.replace("  host: science\n", f"  host: science\n  {inner}\n")
    )
    errs = errors_of(text)
    assert len(errs) == 1 and errs[0].startswith(key + ": expected") and "line" in errs[0], errs


def test_paths_are_normalised_and_starport_may_use_home():
    cfg = parse_config(
        GOOD.replace("volume: montagu_db_volume}", "volume: montagu_db_volume, mount: /srv//nightly/}").replace(
            "starport: {host: annex}", "starport: {host: annex, path: ~/sp/./x}"
        ),
        Path("c.yml"),
    )
    assert cfg.nightly.mount == "/srv/nightly" and cfg.starport.path == "~/sp/x"


@pytest.mark.parametrize("mount", ["/var/lib/barman", "/var/lib", "/var/lib/barman/nightly"])
def test_mount_is_not_barman_home(mount):
    """Finding 1: nightly.mount must not be barman's home, a parent of it, or inside it."""
    errs = errors_of(GOOD.replace("volume: montagu_db_volume}", f"volume: montagu_db_volume, mount: {mount}}}"))
    assert len(errs) == 1 and errs[0].startswith("nightly.mount: must not be barman's home") and "line 9" in errs[0]


@pytest.mark.parametrize("name", ["a/b", "..", ".", "-rf", "x\\ny"])
def test_timestamp_file_is_a_plain_name(name):
    """Finding 1: nightly.timestamp_file is a file name, not a path or an option."""
    errs = errors_of(
        GOOD.replace("volume: montagu_db_volume}", f'volume: montagu_db_volume, timestamp_file: "{name}"}}')
    )
    assert len(errs) == 1 and errs[0].startswith("nightly.timestamp_file: expected a plain file name"), errs


@pytest.mark.parametrize(
    "key,edit",
    [
        ("barman.server", ("server: x", None)),
        ("barman.container", ("container: barman-montagu", "container: '-it'")),
        ("nightly.volume", ("volume: montagu_db_volume}", "volume: 'a b'}")),
    ],
)
def test_names_match_a_conservative_pattern(key, edit):
    """Finding 1: names that reach argv, containers and volumes are plain names."""
    old, new = edit
    text = (
        GOOD.replace("barman: {host: annex,", "barman: {host: annex, server: '--help',")
        if new is None
        else GOOD.replace(old, new)
    )
    errs = errors_of(text)
    assert len(errs) == 1 and errs[0].startswith(key + ": expected a name"), errs


def test_starport_targets_are_names_without_duplicates():
    """Finding 13: starport targets are plain names, each once."""
    errs = errors_of(GOOD.replace("starport: {host: annex}", "starport: {host: annex, targets: [a, b, a]}"))
    assert errs == ['starport.targets[2]: duplicate target "a" (config.yml line 10)']
    errs = errors_of(GOOD.replace("starport: {host: annex}", "starport: {host: annex, targets: [a, ../etc]}"))
    assert len(errs) == 1 and errs[0].startswith("starport.targets[1]: expected a name")


def test_host_name_key_is_unknown():
    errs = errors_of(GOOD.replace("    user: montagu\n", "    user: montagu\n    name: other\n"))
    assert len(errs) == 1 and errs[0].startswith("hosts.science.name: unknown key")


@pytest.mark.parametrize(
    "line,needle",
    [
        ("refresh_seconds: .nan", "refresh_seconds: expected a finite number"),
        ("refresh_seconds: .inf", "refresh_seconds: expected a finite number"),
        ("refresh_seconds: 0.1", "refresh_seconds: expected a number of seconds (0.5-3600)"),
        ("refresh_seconds: 100000", "refresh_seconds: expected a number of seconds (0.5-3600)"),
        ("timeouts: {connect_seconds: 0}", "timeouts.connect_seconds: expected a number of seconds (> 0 and <= 86400)"),
        ("timeouts: {command_seconds: -.inf}", "timeouts.command_seconds: expected a finite number"),
        ("timeouts: {command_seconds: 86401}", "timeouts.command_seconds: expected a number of seconds"),
        ("timeouts: {command_seconds: true}", "timeouts.command_seconds: expected a number, got True"),
        ("wal: {thresholds: {lag_warning_bytes: 0}}", "wal.thresholds.lag_warning_bytes: expected a positive integer"),
        (
            "wal: {thresholds: {lag_warning_bytes: .nan}}",
            "wal.thresholds.lag_warning_bytes: expected an integer, got nan",
        ),
    ],
)
def test_numbers_are_finite_and_bounded(line, needle):
    """Finding 16: .nan and .inf are refused, every number has a sane range."""
    errs = errors_of(GOOD + line + "\n")
    assert len(errs) == 1 and errs[0].startswith(needle) and "line 16" in errs[0], errs


@pytest.mark.parametrize(
    "edit,needle",
    [
        (
            ("nightly: {host: annex,", "nightly: {host: annex, jobs: 0,"),
            "nightly.jobs: expected a number of jobs (1-64)",
        ),
        (
            ("nightly: {host: annex,", "nightly: {host: annex, jobs: 65,"),
            "nightly.jobs: expected a number of jobs (1-64)",
        ),
        (("port: 22", "port: 0"), "hosts.science.port: expected a port number (1-65535)"),
        (
            ("port: 22", "port: 22\n    connect_timeout: .inf"),
            "hosts.science.connect_timeout: expected a finite number",
        ),
        (
            ("nightly: {host: annex,", "nightly: {host: annex, thresholds: {warning_hours: 50, critical_hours: 26},"),
            "nightly.thresholds.warning_hours: warning_hours (50) must be below critical_hours (26)",
        ),
        (
            ("starport: {host: annex}", "starport: {host: annex, thresholds: {warning_hours: 60}}"),
            "starport.thresholds.warning_hours: warning_hours (60) must be below critical_hours (50)",
        ),
        (
            ("barman: {host: annex,", "barman: {host: annex, thresholds: {backup_critical_days: 32},"),
            "barman.thresholds.backup_warning_days: backup_warning_days (32) must be below backup_critical_days (32)",
        ),
    ],
)
def test_bounds_and_warning_below_critical(edit, needle):
    """Finding 16: bounded numbers; a warning threshold is below its critical one."""
    errs = errors_of(GOOD.replace(*edit))
    assert len(errs) == 1 and errs[0].startswith(needle), errs


def test_wal_warning_below_critical():
    errs = errors_of(GOOD + "wal: {thresholds: {archive_warning_seconds: 7200, archive_critical_seconds: 3600}}\n")
    assert errs == [
        "wal.thresholds.archive_warning_seconds: archive_warning_seconds (7200) must be below "
        "archive_critical_seconds (3600) (config.yml line 16)"
    ]


ALIAS_BOMB = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{n}: &{n} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)
)


def test_alias_bomb_is_refused_without_expanding():
    """Finding 15: anchors and aliases are refused, one line each, never expanded into the message."""
    errs = errors_of(GOOD + ALIAS_BOMB)
    assert errs[0] == "a: YAML anchors and aliases are not allowed (config.yml line 16)"
    assert all("YAML anchors and aliases are not allowed" in e for e in errs)
    assert sum(map(len, errs)) < 20_000 and "lol" not in "".join(errs)


def test_anchor_and_alias_in_a_section():
    text = GOOD.replace("starport: {host: annex}", "starport: {host: &h annex, volume: *h}")
    assert errors_of(text) == [
        "starport.host: YAML anchors and aliases are not allowed (config.yml line 10)",
        "starport.volume: YAML anchors and aliases are not allowed (config.yml line 10)",
    ]


@pytest.mark.parametrize(
    "value,shown",
    [
        ("[1, 2, 3]", "a list of 3 items"),
        ("{a: 1, b: 2, c: 3}", "a mapping of 3 keys"),
        ("[x]", "a list of 1 item"),
        ('"' + "y" * 5000 + '"', '"' + "y" * 60 + '..."'),
    ],
)
def test_values_described_by_type_and_size(value, shown):
    """Finding 15: non-scalars are described, never dumped; a shown value is capped."""
    errs = errors_of(GOOD.replace("port: 22", f"port: {value}"))
    assert errs == [f"hosts.science.port: expected an integer, got {shown} (config.yml line 6)"]


def test_long_unknown_key_is_capped():
    errs = errors_of(GOOD + "? " + "z" * 5000 + "\n: 1\n")
    assert len(errs) == 1 and len(errs[0]) < 400 and errs[0].startswith("z" * 60 + "...: unknown key")


def test_unreadable_config_is_one_line_naming_the_file(tmp_path):
    """Finding 12: non-UTF-8 bytes, a directory, a FIFO, a huge file: one line naming the file, no traceback."""
    bad = tmp_path / "latin1.yml"
    bad.write_bytes(GOOD.encode() + b"theme: caf\xe9\n")
    with pytest.raises(ConfigError) as e:
        load_config(bad)
    assert e.value.errors == [f"{bad}: config is not UTF-8 text (invalid byte at line 16)"]
    with pytest.raises(ConfigError) as e:
        load_config(tmp_path)
    assert e.value.errors == [f"{tmp_path}: cannot read config: it is a directory"]
    fifo = tmp_path / "fifo.yml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError) as e:
        load_config(fifo)
    assert e.value.errors == [f"{fifo}: cannot read config: not a regular file"]
    big = tmp_path / "big.yml"
    big.write_bytes(b"#" * (2 * 1024 * 1024))
    with pytest.raises(ConfigError, match="larger than"):
        load_config(big)


@pytest.mark.parametrize(
    "url",
    [
        "https://ops:hunter2secret@hooks.example/x",
        "http://hunter2secret@hooks.example/",
        "ftp://ops:hunter2secret@hooks.example/",
        "https://ops:hunter2secret@[::1/x",
    ],
)
def test_notify_with_credentials_is_refused_without_echo(url):
    """Finding 2: a notify URL with user:password@ is refused and the password never shown."""
    errs = errors_of(GOOD + f'notify: "{url}"\n')
    assert len(errs) == 1 and errs[0].startswith("notify: ") and "line 16" in errs[0], errs
    assert "hunter2secret" not in errs[0]


@pytest.mark.parametrize("url", ["ftp://hooks.example/x", "hooks.example", "https://"])
def test_notify_is_http_or_https(url):
    errs = errors_of(GOOD + f'notify: "{url}"\n')
    assert len(errs) == 1 and errs[0].startswith("notify: expected an http:// or https:// URL"), errs


def test_notify_plain_url_is_kept():
    assert parse_config(GOOD + "notify: https://hooks.example/x\n", Path("c.yml")).notify == "https://hooks.example/x"


@pytest.mark.parametrize(
    "old,new,key",
    [
        ("host: science.example", "host: -oProxyCommand=touch", "hosts.science.host"),
        ("host: science.example", 'host: "science.example -p 2"', "hosts.science.host"),
        ("user: montagu", "user: -lroot", "hosts.science.user"),
        ("user: montagu", 'user: "mont agu"', "hosts.science.user"),
    ],
)
def test_host_and_user_cannot_be_options(old, new, key):
    """Finding 20: a host or user never starts with - and has no whitespace (it could become an ssh option)."""
    errs = errors_of(GOOD.replace(old, new))
    assert len(errs) == 1 and errs[0].startswith(key + ": expected a host or user name"), errs


def test_nested_ssh_host_cannot_be_an_option():
    text = GOOD.replace(
        "    host: science.example\n    port: 22\n    user: montagu\n",
        "    ssh: {host: -oProxyCommand=x, user: montagu}\n",
    )
    errs = errors_of(text)
    assert len(errs) == 1 and errs[0].startswith("hosts.science.ssh.host: expected a host or user name")


def test_host_connect_timeout_port_and_key_paths(tmp_path, monkeypatch):
    """Finding 20: connect timeout from timeouts unless the host sets one; port not given stays None;
    relative key_file/known_hosts resolve against the config file's directory, not the cwd."""
    text = (
        GOOD.replace("    port: 22\n", "    key_file: keys/id\n    known_hosts: ~/kh\n")
        + "timeouts: {connect_seconds: 7}\n"
    )
    text = text.replace("annex: {transport: local,", "annex: {transport: local, connect_timeout: 2,")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir("/")
    cfg = parse_config(text, tmp_path / "etc" / "config.yml")
    science = cfg.hosts["science"]
    assert science.connect_timeout == 7 and cfg.hosts["annex"].connect_timeout == 2
    assert science.port is None and science.name == "science"
    assert science.key_file == str(tmp_path / "etc" / "keys" / "id")
    assert science.known_hosts == str(tmp_path / "home" / "kh")


def test_history_and_pitr_defaults_and_the_scratch_volume_kept_apart(tmp_path):
    cfg = load_config(Path(__file__).resolve().parents[2] / "config.example.yml")
    assert (cfg.history.retention_days, cfg.pitr.keep_minutes, cfg.nightly.thresholds.proof_max_age_hours) == (
        400,
        120,
        50,
    )
    text = (Path(__file__).resolve().parents[2] / "config.example.yml").read_text()
    bad = tmp_path / "config.yml"
    bad.write_text(text.replace("volume: montagu_pitr_volume", "volume: montagu_db_volume"))
    with pytest.raises(ConfigError) as e:
        load_config(bad)
    assert "pitr.volume: must be a scratch volume of its own" in str(e.value)
