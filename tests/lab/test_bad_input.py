"""Bad input gives one clear line, exit 2 or 3, and UNKNOWN for the affected panel only."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.conftest import annex_barman, run_check
from tests.conftest import config_variant as variant

pytestmark = pytest.mark.lab


def fake_barman(tmp_path: Path, body: str) -> str:
    script = tmp_path / "fake-barman"
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def assert_only(doc, panels, status, needle):
    for name, p in doc["panels"].items():
        if name in panels:
            assert p["status"] == status and needle in p["summary"], (name, p)
            assert "Traceback" not in p["summary"]
        else:
            assert p["status"] == "OK", (name, p)


def test_barman_missing(lab_config, tmp_path):
    cfg = variant(lab_config, tmp_path, lambda c: annex_barman(c).update(command=["no-such-barman"], container=None))
    rc, doc, err = run_check(cfg, "--json")
    assert rc == 3 and err == ""
    assert_only(doc, {"barman", "wal"}, "UNKNOWN", "no-such-barman")


def test_barman_timing_out(lab_config, tmp_path):
    def edit(c):
        annex_barman(c).update(command=["sh", "-c", "sleep 30", "barman"], container=None)
        c["timeouts"] = {"command_seconds": 2}

    rc, doc, _ = run_check(variant(lab_config, tmp_path, edit), "--json", timeout=60)
    assert rc == 3
    assert_only(doc, {"barman", "wal"}, "UNKNOWN", "timed out after 2")


def test_barman_printing_non_json(lab_config, tmp_path):
    body = 'case "$1" in --version) echo "3.19.1 Barman by EnterpriseDB";; *) echo "ERROR: not json at all";; esac'
    cfg = variant(
        lab_config, tmp_path, lambda c: annex_barman(c).update(command=[fake_barman(tmp_path, body)], container=None)
    )
    rc, doc, _ = run_check(cfg, "--json")
    assert rc == 3
    assert_only(doc, {"barman", "wal"}, "UNKNOWN", "output is not JSON")


def test_unknown_barman_version(lab_config, tmp_path):
    cfg = variant(
        lab_config,
        tmp_path,
        lambda c: annex_barman(c).update(
            command=[fake_barman(tmp_path, 'echo "2.19 Barman by 2ndQuadrant"')], container=None
        ),
    )
    rc, doc, _ = run_check(cfg, "--json")
    assert rc == 3
    assert_only(doc, {"barman", "wal"}, "UNKNOWN", "barman 2.19 is not a supported version")


def test_docker_daemon_down(lab_config, tmp_path):
    def edit(c):
        for h in c["hosts"].values():
            if "docker" in h:
                h["docker"] = f"unix://{tmp_path}/no-docker.sock"

    rc, doc, _ = run_check(variant(lab_config, tmp_path, edit), "--json")
    assert rc == 3
    for name in ("barman", "wal", "restore"):
        assert doc["panels"][name]["status"] == "UNKNOWN", doc["panels"][name]
        assert "no-docker.sock" in doc["panels"][name]["summary"]


def test_wrong_host_key_is_rejected(lab, lab_config, tmp_path):
    cfg = variant(
        lab_config,
        tmp_path,
        lambda c: c["hosts"]["starport"].update(known_hosts=str(Path(lab.ssh_dir) / "known_hosts.wrong")),
    )
    rc, doc, _ = run_check(cfg, "--json")
    assert rc == 3
    assert_only(doc, {"starport"}, "UNKNOWN", "host key")


def test_unknown_host_key_is_rejected(lab_config, tmp_path):
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    cfg = variant(lab_config, tmp_path, lambda c: c["hosts"]["starport"].update(known_hosts=str(empty)))
    _rc, doc, _ = run_check(cfg, "--json")
    assert_only(doc, {"starport"}, "UNKNOWN", "host key")


def test_missing_metadata(lab, lab_config, tmp_path):
    cfg = variant(lab_config, tmp_path, lambda c: c["starport"].update(targets=["barman_to_starport", "orderly"]))
    rc, doc, _ = run_check(cfg, "--json")
    s = doc["panels"]["starport"]
    assert (
        rc == 2 and s["status"] == "CRITICAL" and "orderly" in s["summary"] and "metadata.json missing" in s["summary"]
    )


@pytest.mark.parametrize("text,needle", [("", "config file is empty"), ("hosts: [", "not valid YAML")])
def test_bad_config_gives_one_line_and_unknown(tmp_path, text, needle):
    cfg = tmp_path / "config.yml"
    cfg.write_text(text)
    rc, out, err = run_check(cfg, "--json")
    assert rc == 3 and out == "" and needle in err and len(err.strip().splitlines()) == 1


def test_no_password_reaches_any_output(lab, lab_config, tmp_path):
    secrets = [line.rsplit(":", 1)[1] for line in Path(lab.pgpass).read_text().splitlines() if line.strip()]
    outputs = [run_check(lab_config, *args)[1] for args in (("--json",), ("--nagios",), ())]
    for out in outputs:
        for secret in secrets:
            assert secret not in str(out)
