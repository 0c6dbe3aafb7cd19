"""Bad configs derived from the lab's: `config check` and `check` refuse each with one clear line.

Every case runs the real `montagu-console` as a subprocess, as an operator would: exit 2 for
`config check` (3, UNKNOWN, for `check`), one line per error naming the key and its line, no
traceback, nothing echoed that should not be, and bounded output (findings 1, 2, 10, 12, 13, 15,
16, 20 of issue 10).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import CONSOLE, annex_barman, config_variant, run_check

pytestmark = pytest.mark.lab

LINE = re.compile(r"^montagu-console: (?P<key>[\w.\[\]-]+): (?P<msg>.+) \(config\.yml line (?P<line>\d+)\)$")


def config_check(config: Path | str, *, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CONSOLE, "config", "check", "--config", str(config)], capture_output=True, text=True, timeout=120, cwd=cwd
    )


def refused(config: Path, key: str, needle: str) -> str:
    """Both commands refuse ``config``; the one error names ``key``, a line and ``needle``."""
    r = config_check(config)
    assert r.returncode == 2 and r.stdout == "", (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and len(r.stderr) < 4000, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    m = LINE.match(lines[0])
    assert m and m["key"] == key and needle in m["msg"] and int(m["line"]) > 0, lines[0]
    rc, out, err = run_check(config)
    assert rc == 3 and out == "" and err.strip() == lines[0], (rc, out, err)
    return lines[0]


def raw_variant(lab_config: Path, tmp_path: Path, edit) -> Path:
    """A copy whose YAML text is edited (for what a mapping edit cannot express)."""
    out = tmp_path / "config.yml"
    out.write_bytes(edit(config_variant(lab_config, tmp_path, lambda c: None).read_bytes()))
    return out


@pytest.mark.parametrize(
    "mount,needle",
    [
        ("/", "expected a directory below /"),
        ("/nightly copy", "without spaces or control characters"),
        ("/nightly/../etc", "without .. components"),
        ("nightly", "expected an absolute path"),
    ],
)
def test_bad_nightly_mount(lab_config, tmp_path, mount, needle):
    """Finding 1: nightly.mount is an absolute, clean path, never /."""
    refused(config_variant(lab_config, tmp_path, lambda c: c["nightly"].update(mount=mount)), "nightly.mount", needle)


def test_mount_is_barman_home(lab_config, tmp_path):
    """Finding 1: nightly.mount must not be barman's home (a recover there would wipe barman)."""
    cfg = config_variant(lab_config, tmp_path, lambda c: c["nightly"].update(mount=annex_barman(c)["home"]))
    refused(cfg, "nightly.mount", "must not be barman's home")


@pytest.mark.parametrize("name", ["../.barman-last-restore", "sub/stamp", "..", "-rf"])
def test_bad_timestamp_file(lab_config, tmp_path, name):
    """Finding 1: nightly.timestamp_file is a plain file name."""
    cfg = config_variant(lab_config, tmp_path, lambda c: c["nightly"].update(timestamp_file=name))
    refused(cfg, "nightly.timestamp_file", "expected a plain file name")


def test_argv_names_are_plain(lab_config, tmp_path):
    """Finding 1: a name that reaches argv (barman server) cannot be an option; the key is named as
    written (the lab lists its barmans, so annex's is barman[0])."""
    cfg = config_variant(lab_config, tmp_path, lambda c: annex_barman(c).update(server="--help"))
    refused(cfg, "barman[0].server", "expected a name")
    single = config_variant(lab_config, tmp_path, lambda c: c.update(barman=dict(annex_barman(c), server="--help")))
    refused(single, "barman.server", "expected a name")


def test_duplicate_starport_targets(lab_config, tmp_path):
    """Finding 13: starport targets are names, each once."""
    cfg = config_variant(
        lab_config, tmp_path, lambda c: c["starport"].update(targets=["barman_to_starport", "barman_to_starport"])
    )
    refused(cfg, "starport.targets[1]", 'duplicate target "barman_to_starport"')


def test_alias_bomb(lab_config, tmp_path):
    """Finding 15: an alias bomb is refused, never expanded (it once gave a 312 MB message)."""
    bomb = b'lol: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + b"".join(
        f"lol{n}: &{n} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n".encode()
        for p, n in zip("abcdefgh", "bcdefghi", strict=True)
    )
    cfg = raw_variant(lab_config, tmp_path, lambda text: text + bomb)
    r = config_check(cfg)
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr) < 4000, r.stderr[:2000]
    lines = r.stderr.strip().splitlines()
    assert lines and all(LINE.match(x) and "YAML anchors and aliases are not allowed" in x for x in lines), lines
    assert lines[0].startswith("montagu-console: lol: ")
    rc, _out, err = run_check(cfg)
    assert rc == 3 and len(err) < 4000 and "Traceback" not in err


def test_alias_in_a_value(lab_config, tmp_path):
    """Finding 15: a plain anchor/alias pair is refused too, naming the key."""
    cfg = raw_variant(
        lab_config, tmp_path, lambda t: t.replace(b"refresh_seconds: 5", b"refresh_seconds: &r 5") + b"theme: *r\n"
    )
    r = config_check(cfg)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 2, r.stderr
    assert {LINE.match(x)["key"] for x in lines} == {"refresh_seconds", "theme"}


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_non_finite_numbers(lab_config, tmp_path, value):
    """Finding 16: .nan and .inf are refused."""
    cfg = raw_variant(
        lab_config, tmp_path, lambda t: re.sub(rb"refresh_seconds: \S+", b"refresh_seconds: " + value.encode(), t)
    )
    refused(cfg, "refresh_seconds", "expected a finite number")


def test_warning_above_critical(lab_config, tmp_path):
    """Finding 16: a warning threshold must be below its critical one."""
    cfg = config_variant(
        lab_config, tmp_path, lambda c: c["nightly"].update(thresholds={"warning_hours": 60, "critical_hours": 50})
    )
    refused(cfg, "nightly.thresholds.warning_hours", "must be below critical_hours")


def test_timeout_out_of_bounds(lab_config, tmp_path):
    """Finding 16: timeouts are bounded (0 < t <= 86400)."""
    cfg = config_variant(lab_config, tmp_path, lambda c: c.update(timeouts={"command_seconds": 10**9}))
    refused(cfg, "timeouts.command_seconds", "expected a number of seconds")


def test_non_utf8_config(lab_config, tmp_path):
    """Finding 12: a non-UTF-8 file is one line naming the file."""
    cfg = raw_variant(lab_config, tmp_path, lambda t: t + b"theme: caf\xe9\xff\n")
    r = config_check(cfg)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.strip().splitlines() == [
        f"montagu-console: {cfg}: config is not UTF-8 text (invalid byte at line {t_lines(cfg)})"
    ]


def t_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n")


def test_config_is_a_directory(tmp_path):
    """Finding 12: a directory as --config is one line naming it."""
    r = config_check(tmp_path)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        f"montagu-console: {tmp_path}: cannot read config: it is a directory"
    ], r.stderr


def test_notify_with_password(lab_config, tmp_path):
    """Finding 2: a notify URL with user:password@ is refused; the password is never echoed."""
    cfg = config_variant(lab_config, tmp_path, lambda c: c.update(notify="https://ops:Sup3rS3cretPw@hooks.example/x"))
    line = refused(cfg, "notify", "credentials")
    assert "Sup3rS3cretPw" not in line


@pytest.mark.parametrize(
    "key,value",
    [("host", "-oProxyCommand=touch /tmp/pwned-by-config"), ("user", "-oProxyCommand=x"), ("host", "127.0.0.1 -p 22")],
)
def test_host_or_user_as_ssh_option(lab_config, tmp_path, key, value):
    """Finding 20: hosts.X.host / user never start with - and have no whitespace."""
    cfg = config_variant(lab_config, tmp_path, lambda c: c["hosts"]["starport"].update({key: value}))
    refused(cfg, f"hosts.starport.{key}", "expected a host or user name")
    assert not Path("/tmp/pwned-by-config").exists()


def test_relative_config_from_another_cwd(lab_config, tmp_path):
    """Finding 10: a relative --config is resolved to an absolute path (the supervisor runs in /)."""
    cfg = config_variant(lab_config, tmp_path, lambda c: None)
    r = config_check(Path(cfg.name), cwd=cfg.parent)
    assert r.returncode == 0 and r.stdout.startswith(f"{cfg.resolve()}: OK"), (r.stdout, r.stderr)


def test_relative_key_file_resolves_against_the_config_dir(lab, lab_config, tmp_path):
    """Finding 20: a relative key_file/known_hosts is read next to the config file, whatever the cwd."""
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "client_key").write_bytes(Path(lab.ssh_dir, "client_key").read_bytes())
    (keys / "client_key").chmod(0o600)
    (keys / "known_hosts").write_bytes(Path(lab.ssh_dir, "known_hosts").read_bytes())
    cfg = config_variant(
        lab_config,
        tmp_path,
        lambda c: c["hosts"]["starport"].update(key_file="keys/client_key", known_hosts="keys/known_hosts"),
    )
    r = subprocess.run(
        [CONSOLE, "check", "--json", "--panel", "starport", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
    )
    assert "Traceback" not in r.stderr and '"starport"' in r.stdout, (r.stdout[:2000], r.stderr)
    assert "key file" not in r.stdout and "host key not in" not in r.stdout, r.stdout[:2000]


def test_deeply_nested_yaml_is_one_line(lab_config, tmp_path):
    """Finding 12: YAML nested thousands deep is one line, not a RecursionError traceback."""
    cfg = raw_variant(lab_config, tmp_path, lambda text: text + b"keys: " + b"[" * 5000 + b"\n")
    r = config_check(cfg)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == ["montagu-console: config.yml: YAML nested too deeply to be a config"]
    rc, _out, err = run_check(cfg)
    assert rc == 3 and "Traceback" not in err


def test_a_bad_notify_url_is_not_echoed(lab_config, tmp_path):
    """Finding 2: a webhook's path is its secret, so a refused notify URL is described, never shown."""
    cfg = config_variant(lab_config, tmp_path, lambda c: c.update(notify="ftp://hooks.example/services/T0/S3CR3T"))
    line = refused(cfg, "notify", "expected an http:// or https:// URL")
    assert "S3CR3T" not in line
