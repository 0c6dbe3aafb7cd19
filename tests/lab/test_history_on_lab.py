"""The history on the real lab: `check` writes every panel and barman instance, a status change is
recorded, `history --json` and `--csv` read back what was written, a history that is a directory
leaves `check` as it was, and a run shows up.

The base-backup test runs an action: run it under the actions lock (common to every helper's action
tests): ``flock /tmp/montagu-lab-actions.lock MONTAGU_KEEP_LAB=1 .venv/bin/pytest tests/lab/test_history_on_lab.py``.
"""

from __future__ import annotations

import json

import pytest

from montagu_console.history import from_csv
from tests.conftest import annex_barman, config_variant, console, run_check

pytestmark = pytest.mark.lab


@pytest.fixture
def own_state(lab_config, tmp_path):
    """The lab's config with a state_dir of this test's own (so the history holds only its rows)."""
    state = tmp_path / "state"

    def edit(data):
        data["state_dir"] = str(state)

    return config_variant(lab_config, tmp_path, edit), state


def history(config, *args: str):
    r = console(config, "history", *args, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    return r.stdout


def latest(rows: list[dict]) -> dict[tuple[str, str | None], dict]:
    """The newest row of each (panel, instance)."""
    out: dict[tuple[str, str | None], dict] = {}
    for row in rows:
        if row["id"] is None:
            out[(row["panel"], row["instance"])] = row
    return out


def test_check_writes_every_panel_and_instance_as_it_said_them(own_state):
    config, state = own_state
    rc, doc, err = run_check(config, "--json")
    assert isinstance(doc, dict) and err == ""
    assert rc == ["OK", "WARNING", "CRITICAL", "UNKNOWN"].index(doc["status"])
    rows = json.loads(history(config, "--since", "1h", "--json"))
    newest = latest(rows)
    assert set(newest) == {
        ("barman", None),
        ("barman", "annex"),
        ("barman", "aws"),
        ("wal", None),
        ("wal", "annex"),
        ("wal", "aws"),
        ("starport", None),
        ("restore", None),
    }
    for name, panel in doc["panels"].items():
        row = newest[(name, None)]
        assert (row["status"], row["summary"]) == (panel["status"], panel["summary"])
        for key, value in row["facts"].items():
            assert panel["facts"][key] == value  # the numbers check printed, exactly
        for inst in panel["facts"].get("instances") or []:
            row = newest[(name, inst["name"])]
            assert (row["status"], row["summary"]) == (inst["status"], inst["summary"])
    assert newest[("wal", "aws")]["facts"]["lag_bytes"] == doc["panels"]["wal"]["facts"]["instances"][1]["lag_bytes"]
    assert (state / "history.sqlite3").stat().st_mode & 0o777 == 0o600

    # --csv reads back what --json shows
    as_csv = history(config, "--since", "1h", "--csv")
    assert as_csv.splitlines()[0] == "at,panel,instance,id,status,summary,facts"
    assert from_csv(as_csv) == json.loads(history(config, "--since", "1h", "--json"))
    only_aws = json.loads(history(config, "--instance", "aws", "--panel", "wal", "--json"))
    assert [(r["panel"], r["instance"]) for r in only_aws] == [("wal", "aws")]


def test_a_status_change_is_recorded(own_state, tmp_path):
    config, _state = own_state
    run_check(config, "--panel", "barman")

    def tight(data):
        annex_barman(data)["thresholds"] = {"backup_warning_days": 0.00001}  # 0.9 s: the last backup is older

    warned = _variant(config, tmp_path, tight)
    _rc, doc, err = run_check(warned, "--json", "--panel", "barman")
    assert doc["panels"]["barman"]["status"] == "WARNING", doc["panels"]["barman"]["summary"]
    assert err == ""
    rows = [r for r in json.loads(history(config, "--panel", "barman", "--json")) if r["instance"] == "annex"]
    assert [r["status"] for r in rows][-2:] == ["OK", "WARNING"]
    table = history(config, "--panel", "barman")
    assert " *WARNING " in table and table.rstrip().endswith("previous row of that panel and instance")


def _variant(config, tmp_path, edit):
    where = tmp_path / "variant"
    where.mkdir(exist_ok=True)
    return config_variant(config, where, edit)


def test_a_history_that_is_a_directory_leaves_check_as_it_was(own_state):
    config, state = own_state
    state.mkdir(parents=True)
    db = state / "history.sqlite3"
    for _attempt in range(3):  # the shared lab may change between the two checks: compare a quiet pair
        db.mkdir()
        rc_broken, broken, err = run_check(config, "--json")
        db.rmdir()
        rc_ok, ok, err_ok = run_check(config, "--json")
        for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
            path.unlink(missing_ok=True)
        statuses = [{n: p["status"] for n, p in d["panels"].items()} for d in (broken, ok)]
        if statuses[0] == statuses[1]:
            break
    db.mkdir()
    assert rc_broken == rc_ok and broken["status"] == ok["status"] and statuses[0] == statuses[1]
    assert set(broken) == set(ok) and {n: set(p["facts"]) for n, p in broken["panels"].items()} == {
        n: set(p["facts"]) for n, p in ok["panels"].items()
    }
    assert err_ok == ""
    assert err.count("\n") == 1, err
    assert err.startswith("montagu-console: WARNING: history ") and "is a directory" in err
    # the Nagios line is unchanged too: its first line is still the status line
    _rc, out, err = run_check(config, "--nagios")
    assert out.startswith("MONTAGU ") and err.count("\n") == 1


def test_a_base_backup_run_appears_in_the_history(own_state):
    config, _state = own_state
    r = console(config, "run", "base-backup", "--yes", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    run_id = next(line.split()[1] for line in r.stdout.splitlines() if line.startswith("run ") and " started" in line)
    runs = json.loads(history(config, "--panel", "runs", "--json"))
    [row] = [x for x in runs if x["id"] == run_id]
    assert row["panel"] == "runs" and row["status"] == "succeeded"
    assert row["summary"].startswith("base-backup succeeded in ") and row["facts"]["action"] == "base-backup"
    assert run_id in history(config, "--since", "1h")
