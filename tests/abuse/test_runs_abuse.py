"""Abuse of the run lifecycle on the real lab: ids that are paths, a killed supervisor whose step
runs on, two operators, a relative config, read-only cancel, corrupt and symlinked state, forged
identity, a webhook with a token in its path, a supervisor that dies at once.

Every test names the finding of issue 10 it covers. Base backups here run the lab's real barman
for the preflight; their step is replaced (through ``barman.command``) by a real long or quick
command, so no test takes a real base backup. Each test uses its own state_dir.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from montagu_console.actions import locks
from montagu_console.config import load_config
from tests.conftest import annex_barman, config_variant, console, wait_for

pytestmark = pytest.mark.lab

TOKEN = "PathTok3nSecret"
QTOKEN = "QueryTok3nSecret"


def one_line_error(r: subprocess.CompletedProcess) -> str:
    """The refusal: exit 2, one line on stderr, no traceback."""
    assert r.returncode == 2, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    assert "Traceback" not in r.stderr + r.stdout
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


def backup_variant(lab_config: Path, tmp_path: Path, step_script: str, name: str = "a", **top) -> Path:
    """The lab config with its own state_dir; ``barman backup`` runs ``step_script`` instead."""
    directory = tmp_path / name
    directory.mkdir()

    def edit(c):
        c["state_dir"] = str(directory / "state")
        annex_barman(c)["command"] = [
            "sh",
            "-c",
            'case " $* " in *" backup "*) ' + step_script + ';; esac; exec "$0" "$@"',
            *annex_barman(c)["command"],
        ]
        c.update(top)

    return config_variant(lab_config, directory, edit)


def state_dir(config: Path) -> Path:
    return Path(load_config(config).state_dir)


def run_id(output: str) -> str:
    return output.split("run ", 1)[1].split()[0]


def record(config: Path, rid: str) -> dict:
    return json.loads((state_dir(config) / "runs" / rid / "run.json").read_text())


def audit(config: Path) -> list[dict]:
    return [json.loads(line) for line in (state_dir(config) / "audit.jsonl").read_text().splitlines()]


def step_running(config: Path, rid: str) -> dict | None:
    rec = record(config, rid)
    return rec if rec["steps"][0]["state"] == "running" else None


@contextlib.contextmanager
def long_backup(config: Path):
    """A detached base backup whose step is ``sleep``; its process group is killed at the end."""
    r = console(config, "run", "base-backup", "--yes", "--detach")
    assert r.returncode == 0, r.stdout + r.stderr
    rid = run_id(r.stdout)
    try:
        rec = wait_for(lambda: step_running(config, rid), timeout=60, interval=0.2, what="the backup step running")
        yield rid, rec
    finally:
        pgid = record(config, rid).get("pgid")
        if pgid:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)


def test_8_run_and_drill_ids_are_not_paths(lab_config, tmp_path):
    """Finding 8: `runs cancel ../../x` signalled the pid of a forged run.json; `runs attach /abs`
    and `run drill --resume DIR` took any directory. Now an id is checked against one pattern and
    resolved inside the store: each is one line, exit 2, and nothing is signalled or started."""
    cfg = backup_variant(lab_config, tmp_path, "exit 0")
    victim = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        forged = tmp_path / "forged"
        forged.mkdir()
        (forged / "plan.json").write_text(json.dumps({"action": "restore", "host": "science", "steps": []}))
        (forged / "run.json").write_text(
            json.dumps({"id": "x", "action": "restore", "state": "running", "pid": victim.pid, "pgid": victim.pid})
        )
        (forged / "log").write_text("forged log\n")
        state = state_dir(cfg)
        state.mkdir(parents=True)
        rel = os.path.relpath(forged, state / "runs")
        for args in (
            ("runs", "cancel", rel),
            ("runs", "cancel", str(forged)),
            ("runs", "attach", str(forged)),
            ("runs", "attach", "../forged"),
            ("run", "drill", "--resume", str(forged)),
            ("run", "drill", "--resume", "../../forged"),
        ):
            line = one_line_error(console(cfg, *args))
            assert "not a run id" in line or "not a drill id" in line, line
        assert victim.poll() is None, "the forged run's pid was signalled"
        assert not (state / "drills").exists() or not any((state / "drills").iterdir())
        assert [r["event"] for r in audit(cfg)].count("refused") >= 4  # cancels and resumes are audited
    finally:
        victim.kill()
        victim.wait()


def test_9_a_killed_supervisor_keeps_the_lock_while_its_step_runs(lab_config, tmp_path):
    """Finding 9: a SIGKILLed supervisor freed its flock while its step ran on, and a second
    backup started beside the first; locks lived in each operator's state_dir. Now the lock is in
    one directory for all operators and is held while any member of the supervisor's process
    group lives: a second operator (another state_dir) is refused until the step is gone."""
    first = backup_variant(lab_config, tmp_path, "exec sleep 300", "alice")
    second = backup_variant(lab_config, tmp_path, "exit 0", "bob")
    with long_backup(first) as (rid, rec):
        r = console(second, "run", "base-backup", "--yes", "--detach")
        assert "already running" in one_line_error(r) and rid in r.stderr
        os.kill(rec["pid"], signal.SIGKILL)  # the supervisor only: its step (sleep) runs on
        wait_for(
            lambda: "interrupted" in console(first, "runs", "list").stdout,
            timeout=30,
            what="the run shown as interrupted",
        )
        r = console(second, "run", "base-backup", "--yes", "--detach")
        assert "already running" in one_line_error(r) and rid in r.stderr
        held = locks.holder(locks.lock_dir(load_config(second)), "base-backup", "annex")
        assert held is not None and held.run_id == rid
        os.killpg(rec["pgid"], signal.SIGKILL)
        wait_for(
            lambda: locks.holder(locks.lock_dir(load_config(second)), "base-backup", "annex") is None,
            timeout=30,
            interval=0.2,
            what="the lock freed once the step is gone",
        )
    r = console(second, "run", "base-backup", "--yes")
    assert r.returncode == 0, r.stdout + r.stderr


def test_10_relative_config_with_detach_from_another_cwd(lab_config, tmp_path):
    """Finding 10: the supervisor re-read a relative --config from `/`: the run failed while
    --detach said "started". Now plan.json records the config's absolute path."""
    cfg = backup_variant(lab_config, tmp_path, "echo fake backup done; exit 0")
    r = console(cfg.name, "run", "base-backup", "--yes", "--detach", cwd=cfg.parent)
    assert r.returncode == 0, r.stdout + r.stderr
    rid = run_id(r.stdout)
    plan = json.loads((state_dir(cfg) / "runs" / rid / "plan.json").read_text())
    assert plan["config"] == str(cfg.resolve())
    wait_for(
        lambda: record(cfg, rid)["state"] == "succeeded",
        timeout=60,
        interval=0.2,
        what=f"the run succeeded (record: {record(cfg, rid)})",
    )
    a = console(str(cfg), "runs", "attach", rid, cwd=Path("/"))
    assert a.returncode == 0 and "fake backup done" in a.stdout


def test_11_read_only_refuses_cancel(lab_config, tmp_path):
    """Finding 11: read-only did not refuse `runs cancel`. Now the service refuses it, audited."""
    cfg = backup_variant(lab_config, tmp_path, "exec sleep 300")
    with long_backup(cfg) as (rid, rec):
        line = one_line_error(console(cfg, "--read-only", "runs", "cancel", rid))
        assert "read-only" in line
        assert record(cfg, rid)["state"] == "running" and os.getpgid(rec["pid"]) == rec["pgid"]
        assert any(r["event"] == "refused" and "read-only" in r.get("reason", "") for r in audit(cfg))
        assert console(cfg, "runs", "cancel", rid).returncode == 0
        wait_for(lambda: record(cfg, rid)["state"] == "cancelled", timeout=30, interval=0.2, what="cancelled")


def test_12_corrupt_or_partial_state_is_one_line(lab_config, tmp_path):
    """Finding 12 (runs): a corrupt run.json, a corrupt report.json and an unusable state_dir
    gave tracebacks. Now `runs list`, `runs attach`, `drills show` and `run` say one line, exit 2."""
    cfg = backup_variant(lab_config, tmp_path, "echo ok; exit 0")
    r = console(cfg, "run", "base-backup", "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    rid = run_id(r.stdout)
    run_json = state_dir(cfg) / "runs" / rid / "run.json"
    for garbage in (
        b'{"id": "x", "state": "runn',
        b"[1, 2]",
        b'{"id": 1, "action": "x", "state": "bogus"}',
        b"\xff\xfe not json",
    ):
        run_json.write_bytes(garbage)
        assert rid in one_line_error(console(cfg, "runs", "list"))
        assert rid in one_line_error(console(cfg, "runs", "attach", rid))
    drill = state_dir(cfg) / "drills" / "20260101T000000Z-drill-abcd"
    drill.mkdir(parents=True)
    (drill / "report.md").mkdir()  # not a regular file
    assert "not a regular file" in one_line_error(console(cfg, "drills", "show", "20260101T000000Z-drill-abcd"))
    blocked = backup_variant(lab_config, tmp_path, "exit 0", "file")
    state_dir(blocked).parent.mkdir(parents=True, exist_ok=True)
    state_dir(blocked).write_text("a file where the state_dir should be\n")
    for args in (("runs", "list"), ("run", "base-backup", "--yes")):
        assert "not a directory" in one_line_error(console(blocked, *args)).lower()


def test_14_state_modes_and_symlinks_not_followed(lab_config, tmp_path):
    """Finding 14: state_dir followed symlinks (a symlinked lock truncated its target), used
    predictable temp names and wrote 0755/0644. Now directories are 0700, files 0600, nothing is
    opened through a symlink, and temporary files are mkstemp's."""
    cfg = backup_variant(lab_config, tmp_path, "echo ok; exit 0")
    r = console(cfg, "run", "base-backup", "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    rid = run_id(r.stdout)
    state = state_dir(cfg)
    run_dir = state / "runs" / rid
    for d in (state, state / "runs", run_dir):
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o700, d
    for f in (run_dir / "run.json", run_dir / "plan.json", run_dir / "log", state / "audit.jsonl"):
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o600, f
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]
    lock = locks.lock_path(locks.lock_dir(load_config(cfg)), "base-backup", "annex")
    assert stat.S_IMODE(os.lstat(lock).st_mode) == 0o600 and not lock.is_symlink()
    # a symlinked run.json is refused, its target neither read nor written
    target = tmp_path / "precious.json"
    target.write_text(json.dumps({"id": rid, "action": "base-backup", "state": "running", "pid": 1}))
    before = target.read_bytes()
    (run_dir / "run.json").unlink()
    (run_dir / "run.json").symlink_to(target)
    assert "symbolic link" in one_line_error(console(cfg, "runs", "attach", rid))
    assert target.read_bytes() == before
    # a symlinked lock in a lock directory (here a private one) is refused, its target kept
    lock_dir = tmp_path / "locks"
    lock_dir.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("do not truncate\n")
    locks.lock_path(lock_dir, "base-backup", "annex").symlink_to(victim)
    with pytest.raises(locks.LockError, match="symbolic link"):
        locks.acquire(lock_dir, "base-backup", "annex")
    with pytest.raises(locks.LockError, match="symbolic link"):
        locks.holder(lock_dir, "base-backup", "annex")
    assert victim.read_text() == "do not truncate\n"


def test_18_audit_records_the_real_uid_not_the_environment(lab_config, tmp_path):
    """Finding 18: the audit's user and SSH client came from SUDO_USER and SSH_CONNECTION,
    which anyone can set. Now the user is the real uid, and an SSH address not backed by utmp is
    recorded only as ``ssh_client_claimed``."""
    import pwd

    cfg = backup_variant(lab_config, tmp_path, "exit 0")
    env = {
        **os.environ,
        "SUDO_USER": "mallory",
        "USER": "mallory",
        "LOGNAME": "mallory",
        "SSH_CONNECTION": "203.0.113.66 4444 10.0.0.1 22",
        "SSH_CLIENT": "203.0.113.66 4444 22",
    }
    r = console(cfg, "run", "base-backup", "--yes", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    records = audit(cfg)
    assert {r["event"] for r in records} >= {"started", "step started", "finished"}
    me = pwd.getpwuid(os.getuid()).pw_name
    for rec in records:
        assert rec["user"] == me and rec["uid"] == os.getuid()
        if rec["ssh_client"] is None:  # no terminal with a utmp entry: the variable is only a claim
            assert rec["ssh_client_claimed"] == "203.0.113.66"
        else:  # run from an SSH terminal: utmp's address, never the forged one
            assert rec["ssh_client"] != "203.0.113.66"
        assert "mallory" not in json.dumps(rec)


def test_2_notify_with_a_token_in_its_path_never_leaks_nor_rewrites_the_outcome(lab_config, tmp_path):
    """Finding 2: a failing notify escaped _notify, put the URL's secret in run.json and on
    screen, and rewrote a succeeded run as failed while the audit said succeeded. Now notify
    never raises: one warning line in the log without the path or query, outcome unchanged."""
    url = f"http://127.0.0.1:9/hooks/{TOKEN}?token={QTOKEN}"  # port 9: nothing listens
    cfg = backup_variant(lab_config, tmp_path, "echo backed up; exit 0", notify=url)
    r = console(cfg, "run", "base-backup", "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    rid = run_id(r.stdout)
    run_dir = state_dir(cfg) / "runs" / rid
    rec = record(cfg, rid)
    assert rec["state"] == "succeeded" and rec["error"] is None
    finished = [a for a in audit(cfg) if a.get("run_id") == rid and a["event"] == "finished"]
    assert [a["outcome"] for a in finished] == ["succeeded"]
    log = (run_dir / "log").read_text()
    assert "warning: notify http://127.0.0.1:9/*REDACTED* failed" in log
    shown = console(cfg, "runs", "attach", rid)
    for text in (log, json.dumps(rec), r.stdout + r.stderr, shown.stdout, (state_dir(cfg) / "audit.jsonl").read_text()):
        assert TOKEN not in text and QTOKEN not in text


def test_23_detach_exits_2_when_the_supervisor_dies_at_once(lab_config, tmp_path):
    """Finding 23: `run --detach` exited 0 for a run whose supervisor had already failed. Now it
    waits for the supervisor to run or end, and a supervisor that dies at once is exit 2 with
    its reason. (A sitecustomize in PYTHONPATH kills only the console's children.)"""
    cfg = backup_variant(lab_config, tmp_path, "exit 0")
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import os, sys\n"
        "if os.getppid() != int(os.environ['C1_TEST_PID']):\n"
        "    sys.exit('supervisor sabotaged by the test')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(hook), "C1_TEST_PID": str(os.getpid())}
    r = console(cfg, "run", "base-backup", "--yes", "--detach", env=env)
    line = one_line_error(r)
    assert "failed" in line and "supervisor sabotaged by the test" in line
    rid = line.split("run ", 1)[1].split()[0]
    assert record(cfg, rid)["state"] == "failed"
    assert sys.executable  # the supervisor is started with this interpreter
