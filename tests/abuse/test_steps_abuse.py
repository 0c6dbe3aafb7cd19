"""Abuse of the action steps on the real lab: shell-hostile paths, a mount that is not the volume,
secrets and escape sequences in step output, secrets in plan.json, hostile values in report.md.

Every test names the finding of issue 10 it covers. The lab's barman container, its nightly
volumes and montagu-db are real; what a test creates it removes in a ``finally``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from montagu_console.actions import plans
from montagu_console.actions.steps import RunLog, StepFailed, StepRunner
from montagu_console.config import load_config
from montagu_console.errors import ConsoleError
from tests.conftest import config_variant, console

pytestmark = pytest.mark.lab

BARMAN = "barman-montagu"
SECRET = "Hunter2Secret"
TOKEN = "XyZwebhookTOKEN123"


# --- helpers -----------------------------------------------------------------------------------


def with_nightly(config, **changes):
    """``config`` with nightly keys changed WITHOUT validation (what a bug or a bypass would give the steps)."""
    n = config.nightly
    if hasattr(n, "model_copy"):
        return config.model_copy(update={"nightly": n.model_copy(update=changes)})
    return dataclasses.replace(config, nightly=dataclasses.replace(n, **changes))


def runner(config, log_path: Path) -> tuple[StepRunner, RunLog]:
    log = RunLog.open(log_path)
    return StepRunner(config, log, lambda p: None, lambda: False), log


def step_named(plan: dict, op: str) -> dict:
    return next(s for s in plan["steps"] if s.get("op") == op)


def in_barman(lab, *argv: str) -> subprocess.CompletedProcess:
    return lab.docker("exec", BARMAN, *argv, timeout=60)


def script(lab, op: str, mount: str, *extra: str) -> subprocess.CompletedProcess:
    """The nightly recover's constant script, run in barman's container as the step runs it."""
    return in_barman(
        lab, "sh", "-c", plans.NIGHTLY_SCRIPT, "sh", op, mount, str(lab.barman_home), ".barman-last-restore", *extra
    )


@pytest.fixture
def scratch(lab):
    """A directory beside barman's home (the container sees it at the same path), with a canary."""
    parent = Path(tempfile.mkdtemp(prefix="abuse-steps-", dir=lab.barman_dir))
    (parent / "canary").write_text("must survive\n")
    try:
        yield parent
    finally:
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture
def home_canary(lab):
    """A canary file in barman's home: nothing a nightly step does may remove it."""
    canary = Path(lab.barman_home) / f".abuse-steps-canary-{os.getpid()}"
    canary.write_text("barman's home must be untouched\n")
    try:
        yield canary
    finally:
        canary.unlink(missing_ok=True)


def assert_home_intact(lab, canary: Path) -> None:
    home = Path(lab.barman_home)
    assert canary.read_text() == "barman's home must be untouched\n"
    assert any((home / "montagu" / "base").iterdir()), "barman's base backups are gone"
    assert (home / "montagu" / "wals").is_dir(), "barman's WAL archive is gone"


# --- finding 1: paths pasted into shell strings --------------------------------------------------


def test_mount_with_a_space_cannot_delete_its_parent(lab, lab_config, tmp_path, scratch, home_canary):
    """Finding 1: a nightly.mount with a space deleted its parent directory (`rm -rf /p/ nightly/dump`)."""
    mount = f"{scratch}/ nightly"
    Path(mount).mkdir()
    (Path(mount) / "old-copy").write_text("old\n")

    # the config refuses it at load: nothing runs
    cfg = config_variant(lab_config, tmp_path, lambda c: c["nightly"].update(mount=mount))
    r = console(cfg, "run", "nightly-recover", "--yes")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "nightly.mount" in r.stderr and len(r.stderr.strip().splitlines()) <= 3, r.stderr

    # the steps themselves, given such a config by a bypass: the volume is not mounted there, refused
    config = with_nightly(load_config(lab_config), mount=mount)
    plan = plans.plan(config, "nightly-recover")
    run, log = runner(config, tmp_path / "log")
    with log, pytest.raises(StepFailed) as failed:
        run.run(step_named(plan, "prepare"))
    message = str(failed.value)
    assert "montagu_db_volume" in message and mount in message and BARMAN in message
    assert (scratch / "canary").exists() and (Path(mount) / "old-copy").exists()

    # the constant script, on the real container, with that path as its argument: quoted everywhere
    assert script(lab, "prepare", mount).returncode == 0
    assert (Path(mount) / "dump").is_dir() and (scratch / "canary").exists()
    (Path(mount) / "dump" / "PG_VERSION").write_text("15\n")
    (Path(mount) / "dump" / ".hidden file").write_text("x\n")
    r = script(lab, "move-up", mount)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in Path(mount).iterdir()) == [".hidden file", "PG_VERSION"]
    r = script(lab, "timestamp", mount, "2026-01-02 03:04:05.000000000+00:00")
    assert r.returncode == 0, r.stderr
    assert (Path(mount) / ".barman-last-restore").read_text() == "2026-01-02 03:04:05.000000000+00:00\n"
    assert (scratch / "canary").read_text() == "must survive\n"
    assert sorted(p.name for p in scratch.iterdir()) == [" nightly", "canary"]
    assert_home_intact(lab, home_canary)


def test_a_mount_that_is_or_holds_barmans_home_is_refused_by_the_step_itself(
    lab, lab_config, tmp_path, scratch, home_canary
):
    """Finding 1: a nightly.mount equal to barman's home deleted every backup and the WAL archive."""
    home = str(lab.barman_home)
    config = load_config(lab_config)
    for mount in (home, str(lab.barman_dir), "/", "relative/nightly", f"{home}/montagu"):
        with pytest.raises(ConsoleError, match="nightly recover refused"):
            plans.plan(with_nightly(config, mount=mount), "nightly-recover")

    # a step from a plan made before the config changed (or forged): the step checks again
    prepare = step_named(plans.plan(config, "nightly-recover"), "prepare")
    run, log = runner(config, tmp_path / "log")
    with log:
        for mount, why in ((home, "holds barman's home"), ("/", "is /"), ("nightly", "not an absolute path")):
            with pytest.raises(StepFailed, match=why):
                run.run(prepare | {"mount": mount})
        with pytest.raises(StepFailed, match="not a plain file name"):
            run.run(prepare | {"timestamp_file": "../home/x"})

    # and the script in the container refuses too, also through a symlink to barman's home
    link = scratch / "nightly-link"
    link.symlink_to(home)
    for mount in (home, str(lab.barman_dir), str(link), "/", "relative"):
        for op in ("prepare", "move-up"):
            r = script(lab, op, mount)
            assert r.returncode == 2 and "refusing" in r.stderr, (mount, op, r.stdout, r.stderr)
    r = in_barman(lab, "sh", "-c", plans.NIGHTLY_SCRIPT, "sh", "timestamp", f"{scratch}", home, "../canary", "x")
    assert r.returncode == 2 and "not a plain file name" in r.stderr
    assert (scratch / "canary").read_text() == "must survive\n"
    assert_home_intact(lab, home_canary)


def test_preflight_refuses_a_mount_the_volume_is_not_mounted_at(lab, lab_config, tmp_path):
    """Finding 1: nothing checked that nightly.volume is really mounted at nightly.mount in barman's container."""
    recover = lab.volume_path("barman_recover")
    nightly = lab.volume_path("montagu_db_volume")
    before = (sorted(p.name for p in recover.iterdir()), (nightly / ".barman-last-restore").read_text())
    # montagu_db_volume with the other volume's mount point: a plausible copy-paste mistake
    cfg = config_variant(lab_config, tmp_path, lambda c: c["nightly"].update(mount="/recover"))
    r = console(cfg, "run", "nightly-recover", "--yes")
    assert r.returncode == 2, r.stdout + r.stderr
    [line] = [x for x in r.stderr.splitlines() if "refused" in x]
    assert "montagu_db_volume" in line and "/recover" in line and BARMAN in line and "/nightly" in line
    assert "Traceback" not in r.stderr and "started" not in r.stdout
    # and the step refuses the same when it is reached without the preflight
    config = load_config(cfg)
    run, log = runner(config, tmp_path / "log")
    with log, pytest.raises(StepFailed, match="montagu_db_volume is not mounted at /recover"):
        run.run(step_named(plans.plan(config, "nightly-recover"), "prepare"))
    assert (sorted(p.name for p in recover.iterdir()), (nightly / ".barman-last-restore").read_text()) == before


# --- finding 4 (and 22's tails): what a step prints -----------------------------------------------

CLIP = "ZWNobyBwd25lZA=="
# what the step prints (its argv carries no secret: only the output does, as a tool's would)
NOISY = (
    (
        f"conninfo host=h password={SECRET} dbname=x\n"
        f"url postgresql://u:{SECRET}@h/db\n"
        f"notify https://hooks.slack.com/services/T0000/B0000/{TOKEN}\n"
        f"title \x1b]0;pwned\x07 clear \x1b[2J clip \x1b]52;c;{CLIP}\x07 nul \x00 bad @BAD@ end\n"
        "action [@click=app.quit]quit[/] markup\n"
        + "".join(f"\r  {i},000  {i * 2}%  1.00MB/s  0:00:{40 - i:02d}" for i in range(40))
        + "\n"
        f"last words, no newline, password={SECRET}"
    )
    .encode()
    .replace(b"@BAD@", b"\xff\xfe")
)  # invalid UTF-8


def test_step_output_reaches_no_log_screen_or_report_with_secrets_or_escapes(lab, lab_config, tmp_path):
    """Finding 4: run logs kept raw step output (a conninfo password, webhook tokens), were world-readable,
    and `runs attach` replayed them raw; finding 22: tails repeated rsync's progress redraws."""
    from montagu_console.actions.drill import write_reports
    from montagu_console.actions.runs import Run, RunStore

    cfg = config_variant(lab_config, tmp_path, lambda c: c.update(state_dir=str(tmp_path / "state")))
    config = load_config(cfg)
    payload = tmp_path / "output"
    payload.write_bytes(NOISY)
    plan = {
        "action": "abuse-output",
        "host": "annex",
        "title": "a noisy step",
        "profile": None,
        "config": str(cfg),
        "steps": [
            {
                "name": "noisy",
                "kind": "command",
                "host": "annex",
                "argv": ["sh", "-c", 'cat -- "$1"; exit 3', "sh", str(payload)],
            }
        ],
    }
    run = RunStore(config.state_dir).create("abuse-output", plan)
    r = subprocess.run(
        [sys.executable, "-m", "montagu_console.actions.supervisor", str(run.path)],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 1, r.stdout + r.stderr  # the step exited 3

    log = run.log_path.read_bytes()
    assert (run.log_path.stat().st_mode & 0o777) == 0o600
    record = (run.path / "run.json").read_text()
    attach = console(cfg, "runs", "attach", run.id)
    report = write_reports(Run(run.path), "failed")
    md = (run.path / "report.md").read_text()
    for name, text in (
        ("log", log.decode("utf-8")),
        ("run.json", record),
        ("runs attach", attach.stdout),
        ("report.json", json.dumps(report)),
        ("report.md", md),
    ):
        for bad in (SECRET, TOKEN, CLIP, "\x1b", "\x07", "\x00", "]52;", "\\u001b"):
            assert bad not in text, f"{name} carries {bad!r}"
    assert b"password=*REDACTED*" in log and b"last words" in log and b"markup" in log
    assert "exited 3" in json.loads(record)["error"]
    # the 40 redraws: one line in the step's tail, the final one
    tail = json.loads(record)["steps"][0]["output_tail"]
    progress = [line for line in tail if "MB/s" in line]
    assert progress == ["  39,000  78%  1.00MB/s  0:00:01"], tail
    assert tail[-1].startswith("last words, no newline")


# --- finding 21: plan.json and the replay's environment ------------------------------------------


def test_plan_json_keeps_replay_env_names_and_the_step_resolves_values(lab, lab_config, tmp_path):
    """Finding 21: plan.json kept nightly.replay.env values (POSTGRES_PASSWORD), world-readable."""
    import docker

    from montagu_console.actions.runs import RunStore

    value = "Abuse-Pa55-word"

    def edit(c):
        c["state_dir"] = str(tmp_path / "state")
        c["nightly"]["replay"]["env"].append(f"POSTGRES_PASSWORD={value}")

    config = load_config(config_variant(lab_config, tmp_path, edit))
    plan = plans.plan(config, "nightly-recover")
    run = RunStore(config.state_dir).create("nightly-recover", plan)
    text = (run.path / "plan.json").read_text()
    assert value not in text and "POSTGRES_PASSWORD" in text
    assert ((run.path / "plan.json").stat().st_mode & 0o777) == 0o600

    # the replay step, from that plan, gets the value from the config when it runs
    digest = hashlib.sha256(value.encode()).hexdigest()
    replay = next(s for s in json.loads(text)["steps"] if s["kind"] == "replay") | {
        "container": "abuse-steps-replay",
        "volume": "abuse_steps_replay",
        "timeout": 60,
        "command": ["sh", "-c", 'trap "exit 0" TERM; while :; do sleep 1; done'],
        "ready_command": ["sh", "-c", '[ "$(printf %s "$POSTGRES_PASSWORD" | sha256sum)" = "$0  -" ]', digest],
    }
    client = docker.DockerClient(base_url=lab.docker_host)
    steps, log = runner(config, tmp_path / "log")
    try:
        with log:
            steps.run(replay)
        assert "succeeded" in (tmp_path / "log").read_text()
        assert value not in (tmp_path / "log").read_text()
    finally:
        for remove in (
            lambda: client.containers.get("abuse-steps-replay").remove(force=True),
            lambda: client.volumes.get("abuse_steps_replay").remove(force=True),
        ):
            with contextlib.suppress(docker.errors.NotFound):
                remove()
        client.close()


# --- finding 22: report.md ---------------------------------------------------------------------

HOSTILE_SQL = (
    "SELECT 'a|b' || chr(10) || '| c ``` `x` [link](http://e.x) <b>bold</b>' || chr(27) || ']0;pwned' "
    "|| chr(7) || ' password=Sekr3tValue'"
)


def test_report_md_tables_hold_hostile_values_and_are_replaced_atomically(lab, lab_config, tmp_path):
    """Finding 22: report.md was not written atomically, and values broke its tables."""
    from montagu_console.actions.drill import DrillRunner, drill_plan, write_reports
    from montagu_console.actions.runs import Run, RunStore

    def edit(c):
        c["state_dir"] = str(tmp_path / "state")
        c["science"]["verify"] = [{"name": "pipes | and `ticks`", "sql": HOSTILE_SQL, "expect": "not null"}]

    config = load_config(config_variant(lab_config, tmp_path, edit))
    run = RunStore(config.state_dir, "drills").create("drill", drill_plan(config))
    with RunLog.open(run.log_path) as log:  # the real verification query, on the real restored database
        DrillRunner(run, config, log, lambda p: None, lambda: False).run(
            {"kind": "drill_verify", "host": config.science.host, "container": config.science.container}
        )
    [row] = Run(run.path).record()["drill"]["verify"]
    assert row["passed"] and "a|b\n|" in row["value"] and "Sekr3tValue" not in row["value"]

    # readers never see a partial report while it is rewritten (the same report, 100 times)
    Run(run.path).update(state="failed", finished_at="2026-01-02T03:04:05.000+00:00")
    seen: list[str] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            with contextlib.suppress(FileNotFoundError):
                seen.append((run.path / "report.md").read_text())

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(100):
            write_reports(Run(run.path), "failed")
    finally:
        done.set()
        reader.join(timeout=30)
    md = (run.path / "report.md").read_text()
    assert seen and all(text == md for text in seen), "a reader saw a partial report.md"
    assert sorted(p.name for p in run.path.iterdir()) == ["log", "plan.json", "report.json", "report.md", "run.json"]

    for bad in ("\x1b", "\x07", "Sekr3tValue"):
        assert bad not in md
    section = md.split("## Verification", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    assert len(rows) == 3, section  # header, rule, the one query: the value's newline made no row
    cells = [len(re.findall(r"(?<!\\)\|", line)) for line in rows]
    assert cells == [6, 6, 6], rows
    assert rows[2].endswith("| PASS |")
    value = re.split(r"(?<!\\)\|", rows[2])[4]  # no markup from the database: no tag, no link
    assert "<b>" not in value and "](http" not in value and "\\<b\\>bold" in value
    assert value.strip().startswith("a\\|b<br>\\| c")
    report = json.loads((run.path / "report.json").read_text())
    assert "\x1b" not in json.dumps(report) and "Sekr3tValue" not in json.dumps(report)
