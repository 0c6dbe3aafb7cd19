"""Proof of each nightly copy on the real lab: the nightly recover proves its copy, a failing
verification fails it (CRITICAL) until a good run clears it, prove-nightly proves the current
copy and leaves it unchanged, and its refusals. Run under the actions flock (common brief)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from montagu_console.probes.proofs import FIELDS
from tests.conftest import config_variant, console, run_check

pytestmark = pytest.mark.lab

IMPOSSIBLE = "impossible: a negative row count"


def state_dir(config: Path) -> Path:
    return Path(yaml.safe_load(config.read_text())["state_dir"])


def proofs(config: Path) -> list[dict]:
    path = state_dir(config) / "proofs.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def starport(config: Path) -> dict:
    return run_check(config, "--json", "--panel", "starport")[1]["panels"]["starport"]


def run_id(output: str) -> str:
    return output.split("run ", 1)[1].split()[0]


def in_barman(lab, *argv: str) -> subprocess.CompletedProcess:
    return lab.docker("exec", "barman-montagu", *argv)


def copy_listing(lab) -> str:
    """Every file of the nightly copy with its size, mtime, mode and owner, and checksums of a few."""
    listing = in_barman(lab, "find", "/nightly", "-printf", "%P %s %T@ %m %U:%G\\n")
    sums = in_barman(
        lab,
        "sha256sum",
        "/nightly/global/pg_control",
        "/nightly/PG_VERSION",
        "/nightly/.barman-last-restore",
        "/nightly/postgresql.conf",
    )
    assert listing.returncode == 0 and sums.returncode == 0, listing.stderr + sums.stderr
    return "\n".join(sorted(listing.stdout.splitlines())) + "\n" + sums.stdout


def secrets_of(lab) -> list[str]:
    return [line.rsplit(":", 1)[1] for line in Path(lab.pgpass).read_text().splitlines() if line.strip()]


def failing_variant(lab_config: Path, tmp_path: Path) -> Path:
    """The lab's config (same state_dir) with one more verification query that cannot pass."""

    def edit(c):
        c["science"]["verify"].append(
            {"name": IMPOSSIBLE, "sql": "SELECT count(*) FROM api_access_log", "expect": "< 0"}
        )

    return config_variant(lab_config, tmp_path, edit)


def test_nightly_recover_leaves_a_passed_proof_in_state_and_in_the_copy(lab, lab_config, tmp_path):
    r = console(lab_config, "run", "nightly-recover", "--yes")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    assert "verify: api_access_log has rows" in r.stdout and "PASSED" in r.stdout
    proof = proofs(lab_config)[-1]
    assert tuple(proof) == FIELDS
    assert proof["outcome"] == "passed" and proof["how"] == "nightly-recover" and proof["reason"] is None
    assert proof["run_id"] == run_id(r.stdout)
    assert [c["name"] for c in proof["checks"]] == ["api_access_log has rows", "newest api_access_log entry"]
    assert all(c["passed"] and set(c) == {"name", "value", "expect", "passed"} for c in proof["checks"])
    assert proof["data_newest"] and proof["data_newest"] <= proof["proven_at"]

    panel = starport(lab_config)
    facts = panel["facts"]
    assert panel["status"] == "OK" and "proven restorable" in panel["summary"], panel
    assert proof["copy_restored_at"] == facts["nightly_restored_at"]  # the stamp the copy got
    assert facts["proof_outcome"] == "passed" and facts["proven_at"] == proof["proven_at"]
    assert facts["proven_data_newest"] == proof["data_newest"]

    # .montagu-proof.json beside .barman-last-restore in the copy, and shipped with it
    in_copy = in_barman(lab, "cat", "/nightly/.montagu-proof.json")
    assert in_copy.returncode == 0 and json.loads(in_copy.stdout) == proof
    shipped = Path(lab.starport_dir) / "barman_to_starport" / "data" / "montagu_db_volume" / ".montagu-proof.json"
    assert json.loads(shipped.read_text()) == proof

    text = (state_dir(lab_config) / "proofs.jsonl").read_text() + in_copy.stdout
    assert not any(s in text for s in secrets_of(lab))

    prom = tmp_path / "montagu.prom"
    assert run_check(lab_config, "--prometheus", str(prom))[0] in (0, 1, 2)
    metrics = prom.read_text()
    assert "montagu_starport_proof_passed 1.0" in metrics and "montagu_starport_proof_age_seconds " in metrics
    rc, nagios, _ = run_check(lab_config, "--nagios", "--panel", "starport")
    assert rc == 0 and " proof_age=" in nagios.splitlines()[0]


def test_failing_verification_fails_the_proof_and_the_panel_until_a_good_run(lab, lab_config, tmp_path):
    bad = failing_variant(lab_config, tmp_path)
    try:
        r = console(bad, "run", "nightly-recover", "--yes")
        assert r.returncode == 1, r.stdout[-3000:]
        assert "replay the WAL in a temporary postgres container: FAILED" in r.stdout
        assert f"the copy is not proven restorable: check '{IMPOSSIBLE}' failed" in r.stdout
        assert "==> [6/6]" not in r.stdout  # stopped there: the unproven copy is never shipped
        proof = proofs(lab_config)[-1]
        assert proof["outcome"] == "failed" and proof["run_id"] == run_id(r.stdout)
        assert proof["copy_restored_at"] is None  # the copy got no stamp: not to be used
        assert [c["name"] for c in proof["checks"] if not c["passed"]] == [IMPOSSIBLE]
        panel = starport(lab_config)
        assert panel["status"] == "CRITICAL", panel
        assert "failed its proof" in panel["summary"] and IMPOSSIBLE in panel["summary"]
        assert panel["facts"]["proof_outcome"] == "failed" and panel["facts"]["proof_failing"] == [IMPOSSIBLE]
        audit = [
            json.loads(line)
            for line in (state_dir(lab_config) / "audit.jsonl").read_text().splitlines()
            if json.loads(line).get("run_id") == run_id(r.stdout)
        ]
        replay = [a for a in audit if a.get("step") == "replay the WAL in a temporary postgres container"]
        assert [a["event"] for a in replay] == ["step started", "step finished"] and replay[1]["outcome"] == "failed"
        assert audit[-1]["event"] == "finished" and audit[-1]["outcome"] == "failed"
    finally:
        good = console(lab_config, "run", "nightly-recover", "--yes")
    assert good.returncode == 0, good.stdout[-3000:]
    panel = starport(lab_config)
    assert panel["status"] == "OK" and panel["facts"]["proof_outcome"] == "passed", panel


def test_prove_nightly_proves_the_copy_and_leaves_it_unchanged(lab, lab_config, tmp_path):
    stamp = starport(lab_config)["facts"]["nightly_restored_at"]
    before = copy_listing(lab)
    bad = failing_variant(lab_config, tmp_path)
    try:
        r = console(bad, "run", "prove-nightly", "--yes")
        assert r.returncode == 1 and IMPOSSIBLE in r.stdout, r.stdout[-3000:]
        failed = proofs(lab_config)[-1]
        assert failed["outcome"] == "failed" and failed["how"] == "prove-nightly"
        assert failed["copy_restored_at"] == stamp  # a proof of THIS copy, which failed
        panel = starport(lab_config)
        assert panel["status"] == "CRITICAL" and IMPOSSIBLE in panel["summary"], panel
        assert copy_listing(lab) == before
    finally:
        r = console(lab_config, "run", "prove-nightly", "--yes")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    assert "the copy itself is left as it is" in r.stdout
    proof = proofs(lab_config)[-1]
    assert proof["outcome"] == "passed" and proof["how"] == "prove-nightly" and proof["copy_restored_at"] == stamp
    assert proof["run_id"] == run_id(r.stdout)
    assert copy_listing(lab) == before  # names, sizes, mtimes, modes, owners and checksums
    panel = starport(lab_config)
    assert panel["status"] == "OK" and panel["facts"]["proven_at"] == proof["proven_at"], panel
    volumes = lab.docker("volume", "ls", "-q").stdout.split()
    containers = lab.docker("ps", "-a", "--format", "{{.Names}}").stdout.split()
    assert "montagu_db_volume_proof" not in volumes
    assert not any(c.startswith("barman-prove-nightly") for c in containers)


def test_prove_nightly_read_only_is_refused_before_any_step(lab_config):
    runs = state_dir(lab_config) / "runs"
    before = sorted(p.name for p in runs.iterdir()) if runs.is_dir() else []
    count = len(proofs(lab_config))
    r = console(lab_config, "--read-only", "run", "prove-nightly", "--yes")
    assert r.returncode == 2 and "prove-nightly refused: read-only" in r.stderr, r.stdout + r.stderr
    assert " started" not in r.stdout
    assert sorted(p.name for p in runs.iterdir()) == before and len(proofs(lab_config)) == count
    last = json.loads((state_dir(lab_config) / "audit.jsonl").read_text().splitlines()[-1])
    assert last["event"] == "refused" and last["action"] == "prove-nightly"


def test_prove_nightly_is_refused_while_a_replay_holds_the_copy(lab, lab_config):
    """cron's update-nightly replays in barman-replay-wal: no proof while it runs."""
    started = lab.docker(
        "run", "-d", "--name", "barman-replay-wal", "--network", "none", "-v", "/usr:/usr:ro", "-v",
        "/lib:/lib:ro", "-v", "/lib64:/lib64:ro", "montagu-lab/postgres:host", "sleep", "120",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    try:
        r = console(lab_config, "run", "prove-nightly", "--yes")
    finally:
        lab.docker("rm", "-f", "barman-replay-wal")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "prove-nightly refused: container barman-replay-wal is running on annex" in r.stderr
    assert " started" not in r.stdout
