"""The lab's stand-in bb8, the real privateer, and the console's own actions end to end, on a real lab.

They run on the session's lab: each test that stops sshd or overwrites a volume puts it back.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from montagu_console.lab import Lab, lab_status
from tests.conftest import CONSOLE

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root"),
]

MACHINE_ID = Path("/etc/machine-id").read_text().strip()
BB8_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}    (DEBUG|INFO|WARNING|ERROR)    ")


@pytest.fixture(scope="module")
def act_lab(lab) -> Lab:
    """The session's lab: these tests leave every part of it running and fresh when they end."""
    return lab


# --- helpers ---------------------------------------------------------------------------------------


def run(argv, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, **kw
    )


def bb8(lab: Lab, side: str, *args: str) -> subprocess.CompletedProcess:
    return lab.bb8(side, *args)


def privateer(lab: Lab, *args: str) -> subprocess.CompletedProcess:
    return lab.privateer(*args)


def console(config: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return run([CONSOLE, *args, "--config", config], timeout=timeout)


def check(config: Path) -> dict:
    r = console(config, "check", "--json", timeout=120)
    assert r.stdout.strip(), r.stderr
    return json.loads(r.stdout)


def metadata_path(lab: Lab) -> Path:
    return lab.starport_dir / "barman_to_starport" / "meta" / "metadata.json"


def parse_stamp(text: str) -> datetime:
    """``.barman-last-restore`` (``date --rfc-3339=ns``) to a datetime (nanoseconds dropped)."""
    text = text.strip()
    return datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", text))


def in_volume(lab: Lab, volume: str, name: str) -> Path:
    return lab.volume_path(volume) / name


def newest_run_log(lab: Lab, action: str) -> Path:
    """The log of the newest console run of ``action`` in the lab's state dir."""
    runs = [p for p in (lab.state_dir / "runs").glob("*/run.json") if json.loads(p.read_text()).get("action") == action]
    return max(runs, key=lambda p: p.stat().st_mtime).parent / "log"


def wait_container(lab: Lab, name: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lab.docker("inspect", "-f", "{{.State.Running}}", name).stdout.strip() == "true":
            return
        time.sleep(0.02)
    pytest.fail(f"container {name} never ran")


# --- bb8 -------------------------------------------------------------------------------------------


def test_bb8_backup_writes_metadata_and_carries_the_nightly_timestamp(act_lab: Lab) -> None:
    stamp = act_lab.set_nightly_timestamp(datetime.now(UTC))
    before = datetime.fromisoformat(json.loads(metadata_path(act_lab).read_text())["last_backup"])
    logs_before = set((act_lab.annex_dir / "bb8" / "logs").iterdir())

    r = bb8(act_lab, "annex", "backup")

    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stderr.splitlines()
    assert lines[:3] == [
        "INFO    Backing up targets to Starport. Output will be logged to /bb8/logs/",
        "INFO    Backing up to 127.0.0.1: ",
        "INFO    - Named volume: barman_to_starport",
    ]
    assert (
        f"INFO    Backing up to {act_lab.sci_user}@127.0.0.1:~/starport/barman_to_starport/data/ from montagu_db_volume"
    ) in lines
    assert "montagu_db_volume/.barman-last-restore\n" in r.stderr  # rsync -v names the changed file
    meta = json.loads(metadata_path(act_lab).read_text())
    assert set(meta) == {"last_backup", "instance_guid"} and meta["instance_guid"] == MACHINE_ID
    last = datetime.fromisoformat(meta["last_backup"])
    assert last.tzinfo is not None and last > before
    carried = act_lab.starport_dir / "barman_to_starport" / "data" / "montagu_db_volume" / ".barman-last-restore"
    assert carried.read_text().strip() == stamp
    # its log file: bb8's name and format, newest first in `bb8 log list`, shown by `bb8 log show`
    [new_log] = set((act_lab.annex_dir / "bb8" / "logs").iterdir()) - logs_before
    assert re.fullmatch(r"bb8_\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\.log", new_log.name)
    text = new_log.read_text().splitlines()
    assert text[0].endswith("    INFO    " + "*" * 60) and all(BB8_LOG_LINE.match(line) for line in text[:5])
    assert any(
        "DEBUG    Running rsync in docker with: rsync -r -v -e ssh -o Compression=no" in line
        and "--perms --delete --info=progress2 --times montagu_db_volume" in line
        and line.endswith(" --relative")
        for line in text
    )
    listed = bb8(act_lab, "annex", "log", "list", "--limit=1")
    assert listed.returncode == 0 and listed.stdout.splitlines()[0] == new_log.name
    shown = bb8(act_lab, "annex", "log", "show")
    assert shown.returncode == 0 and shown.stdout == new_log.read_text()
    assert bb8(act_lab, "annex", "log", "show", new_log.name).stdout == new_log.read_text()


def test_second_bb8_fails_on_the_container_name_and_the_console_refuses(act_lab: Lab) -> None:
    first = subprocess.Popen([act_lab.bb8_annex, "backup"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_container(act_lab, "bb8")
        assert act_lab.docker("pause", "bb8").returncode == 0  # hold it mid-run
        try:
            for side, command in (("annex", "backup"), ("science", "restore")):
                second = bb8(act_lab, side, command)
                assert second.returncode == 125, second.stdout + second.stderr  # docker's, as with the real wrapper
                assert 'The container name "/bb8" is already in use' in second.stderr
            for config, action in ((act_lab.config_path, "nightly-recover"), (act_lab.config_path, "restore")):
                refused = console(config, "run", action, "--yes")
                assert refused.returncode != 0
                assert "container bb8 is running" in refused.stderr, refused.stderr
            # status and log get their own container names, so they still work
            assert bb8(act_lab, "annex", "status", "--json").returncode == 0
        finally:
            act_lab.docker("unpause", "bb8")
        out, _ = first.communicate(timeout=120)
        assert first.returncode == 0, out
    finally:
        if first.poll() is None:
            first.kill()


def test_bb8_backup_without_sshd_fails_255_and_keeps_metadata(act_lab: Lab) -> None:
    meta = metadata_path(act_lab).read_bytes()
    act_lab.stop_sshd()
    try:
        r = bb8(act_lab, "annex", "backup")
    finally:
        act_lab.start_sshd()
    # like bb8, the first remote command (mkdir -p on the starport) fails: no rsync is tried
    assert r.returncode == 255, r.stdout + r.stderr
    assert "ERROR    An error occurred:" in r.stderr and "Connection refused" in r.stderr
    assert "trying again" not in r.stdout
    assert metadata_path(act_lab).read_bytes() == meta


def test_bb8_rsync_failure_is_retried_5_times_then_exits_255(act_lab: Lab) -> None:
    meta = metadata_path(act_lab).read_bytes()
    target = act_lab.starport_dir / "barman_to_starport" / "data" / "montagu_db_volume"
    owner = target.stat()
    act_lab.set_nightly_timestamp(datetime.now(UTC))  # something for rsync to write
    os.chown(target, 0, 0)  # the starport refuses the write (not the SSH user's): rsync exits 23
    target.chmod(0o755)
    try:
        r = bb8(act_lab, "annex", "backup")
    finally:
        os.chown(target, owner.st_uid, owner.st_gid)
        target.chmod(owner.st_mode & 0o7777)
    assert r.returncode == 255, r.stdout + r.stderr
    assert r.stdout.splitlines() == [
        "Rsync failed with code 23",
        "trying again... 2/5",
        "Rsync failed with code 23",
        "trying again... 3/5",
        "Rsync failed with code 23",
        "trying again... 4/5",
        "Rsync failed with code 23",
        "trying again... 5/5",
        "Rsync failed with code 23",
    ]
    assert "ERROR    An error occurred:" in r.stderr and "Exception: rsync failed too many times" in r.stderr
    assert metadata_path(act_lab).read_bytes() == meta  # written only after a good rsync
    assert bb8(act_lab, "annex", "backup").returncode == 0


def test_bb8_refuses_a_target_backed_up_by_another_instance(act_lab: Lab) -> None:
    original = metadata_path(act_lab).read_text()
    foreign = json.loads(original) | {"instance_guid": "0" * 32}
    act_lab.write_starport_metadata("barman_to_starport", None, raw=json.dumps(foreign))
    try:
        r = bb8(act_lab, "annex", "backup")
        assert r.returncode == 255
        assert "Target barman_to_starport has been backed up by a different instance of bb8." in r.stderr
        assert json.loads(metadata_path(act_lab).read_text()) == foreign
    finally:
        act_lab.write_starport_metadata("barman_to_starport", None, raw=original)


def test_bb8_status_json_and_text(act_lab: Lab) -> None:
    r = bb8(act_lab, "annex", "status", "--json")
    assert r.returncode == 0, r.stderr
    [status] = json.loads(r.stdout)
    assert set(status) == {"target", "last_backup", "last_modified_local", "last_modified_remote"}
    assert status["target"] == "barman_to_starport"
    meta = datetime.fromisoformat(json.loads(metadata_path(act_lab).read_text())["last_backup"])
    for key in ("last_backup", "last_modified_local", "last_modified_remote"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d\d:\d\d", status[key]), status
    assert datetime.fromisoformat(status["last_backup"]) == meta.replace(microsecond=0)
    science = bb8(act_lab, "science", "status", "--json", "main_db_restore")
    assert [s["target"] for s in json.loads(science.stdout)] == ["main_db_restore"]
    text = bb8(act_lab, "annex", "status")
    assert "\nbarman_to_starport\n------------" in text.stdout and "Last backup:               20" in text.stdout
    unknown = bb8(act_lab, "annex", "status", "nope")
    assert unknown.returncode == 255 and unknown.stdout.strip() == "Unknown targets specified: nope"
    assert bb8(act_lab, "annex", "frobnicate").returncode == 1


def test_bb8_restore_into_science_then_montagu_db_answers(act_lab: Lab, tmp_path: Path) -> None:
    act_lab.stop_science()
    wipe = act_lab.docker(
        "run", "--rm", "-v", "science_db_volume:/v", "montagu-lab/postgres:host", "sh", "-c", "rm -rf /v/* /v/.[!.]*"
    )
    assert wipe.returncode == 0, wipe.stderr
    r = bb8(act_lab, "science", "restore")
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stderr.splitlines()
    assert lines[:4] == [
        "INFO    Restoring targets from Starport. Output will be logged to /bb8/logs/",
        "INFO    Restoring from 127.0.0.1: ",
        "INFO    Remote directory: ~/starport/",
        "INFO    - Named volume: main_db_restore",
    ]
    assert (
        f"INFO    Restoring from {act_lab.sci_user}@127.0.0.1:~/starport/main_db_restore/data/"
        "montagu_db_volume/ to science_db_volume"
    ) in lines
    data = act_lab.volume_path("science_db_volume")
    assert (data / "PG_VERSION").stat().st_uid == 0  # written by root, as by the real bb8
    nightly = in_volume(act_lab, "montagu_db_volume", ".barman-last-restore").read_text()
    assert (data / ".barman-last-restore").read_text() == nightly
    act_lab.start_science()  # montagu-db hands /pgdata to labpg and starts
    assert int(act_lab.psql("select count(*) from api_access_log", port=act_lab.science_port)) >= 4
    assert (data / "PG_VERSION").stat().st_uid != 0

    # a missing volume is created first (a copy of the wrapper with a config naming another volume)
    config = json.loads((act_lab.science_dir / "bb8" / "config.json").read_text())
    config["targets"][0]["volume"] = "bb8_test_volume"
    (tmp_path / "config.json").write_text(json.dumps(config))
    wrapper = act_lab.bb8_science.read_text().replace(
        f"{act_lab.science_dir / 'bb8' / 'config.json'}:", f"{tmp_path / 'config.json'}:"
    )
    (tmp_path / "bb8").write_text(wrapper)
    try:
        r = run(["sh", tmp_path / "bb8", "restore"])
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout.splitlines()[0] == "Creating docker volume with name 'bb8_test_volume'"
        assert (act_lab.volume_path("bb8_test_volume") / "PG_VERSION").exists()
    finally:
        act_lab.docker("volume", "rm", "bb8_test_volume")


# --- privateer -------------------------------------------------------------------------------------


def test_privateer_restore_dry_run_success_and_failure(act_lab: Lab) -> None:
    """The real privateer 2.1.1 on science, against the annex's privateer server."""
    version = privateer(act_lab, "--version")
    assert version.returncode == 0 and version.stdout.strip() == "privateer, version 2.1.1"
    dry = privateer(
        act_lab, "restore", "barman_recover", "--server=annex", "--to-volume", "privateer_test", "--dry-run"
    )
    assert dry.returncode == 0 and "Command to manually run restore:" in dry.stdout
    assert (
        "docker run --rm -v privateer_keys:/privateer/keys:ro -v privateer_test:/privateer/volumes/privateer_test "
        "mrcide/privateer-client:latest rsync -av --delete annex:/privateer/local/barman_recover/ "
        "/privateer/volumes/privateer_test/"
    ) in dry.stdout
    assert act_lab.docker("volume", "inspect", "privateer_test").returncode != 0  # nothing done
    # privateer's own command line: options after the subcommand, usage errors exit 2
    usage = privateer(act_lab, "--path=.", "restore", "barman_recover")
    assert usage.returncode == 2 and "No such option '--path'" in usage.stderr
    try:
        r = privateer(act_lab, "restore", "barman_recover", "--server=annex", "--to-volume", "privateer_test")
        assert r.returncode == 0, r.stdout + r.stderr
        out = r.stdout.splitlines()
        assert out[:3] == [
            "Restoring 'barman_recover' from 'annex' to 'privateer_test'",
            "Data originally from '(source)'",
            "Restore command started. To stream progress, run:",
        ]
        assert out[3].startswith("  docker logs -f ")
        assert out[4] == "Restore completed successfully! Container logs:"
        assert out[5].startswith("(ommitting ") and len(out[6:]) == 10 and "total size is" in out[-1]
        restored = act_lab.volume_path("privateer_test")
        assert (restored / "PG_VERSION").read_text().strip() == "15"
        source = in_volume(act_lab, "barman_recover", ".barman-last-restore").read_text()
        assert (restored / ".barman-last-restore").read_text() == source

        act_lab.stop_privateer_server()
        try:
            failed = privateer(act_lab, "restore", "barman_recover", "--server=annex", "--to-volume", "privateer_test")
        finally:
            act_lab.start_privateer_server()
        assert failed.returncode == 1
        assert "An error occured! Container logs:" in failed.stdout
        assert f"port {act_lab.privateer_port}: Connection refused" in failed.stdout
        assert "Exception: Restore failed; see" in failed.stderr
        name = failed.stdout.split("docker logs -f ", 1)[1].split()[0]
        assert act_lab.docker("rm", name).returncode == 0  # kept for its logs, like privateer
        wrong = privateer(act_lab, "restore", "nope", "--server=annex", "--to-volume", "privateer_test")
        assert wrong.returncode == 1 and "Invalid volume 'nope': valid options: 'barman_recover'" in wrong.stderr
    finally:
        act_lab.docker("volume", "rm", "privateer_test")


# --- the console's actions on the lab ----------------------------------------------------------------


def test_lab_writes_and_archives_wal_while_it_runs(act_lab: Lab) -> None:
    assert next(c for c in lab_status(act_lab.lab_dir) if c["name"] == "writer")["running"]
    assert act_lab.psql("show archive_timeout") == "1min"
    rows = int(act_lab.psql("select count(*) from api_access_log where who = 'lab-writer'"))
    time.sleep(4.5)
    assert int(act_lab.psql("select count(*) from api_access_log where who = 'lab-writer'")) > rows
    wal = check(act_lab.config_path)["panels"]["wal"]
    assert wal["status"] == "OK" and wal["facts"]["last_archived_age_seconds"] < 600


def test_console_nightly_recover_ships_a_fresh_copy(act_lab: Lab) -> None:
    before = datetime.now(UTC)
    r = console(act_lab.config_path, "run", "nightly-recover", "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "barman-replay-wal: `sh -c" in r.stdout and "succeeded" in r.stdout
    starport = check(act_lab.config_path)["panels"]["starport"]
    facts = starport["facts"]
    assert starport["status"] == "OK", starport
    restored = datetime.fromisoformat(facts["nightly_restored_at"])
    assert before < restored and facts["nightly_age_seconds"] < 120
    [target] = facts["targets"]
    assert datetime.fromisoformat(target["last_backup"]) > restored
    assert target["carried_restore_at"] == facts["nightly_restored_at"]
    nightly = act_lab.volume_path("montagu_db_volume")
    assert (nightly / "backup_label.old").exists() and not (nightly / "postmaster.pid").exists()


def test_console_restore_brings_science_up_on_the_nightly_copy(act_lab: Lab) -> None:
    r = console(act_lab.config_path, "run", "restore", "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "montagu-db accepts connections and is out of recovery" in r.stdout
    doc = check(act_lab.config_path)
    restore, starport = doc["panels"]["restore"], doc["panels"]["starport"]
    assert restore["status"] == "OK" and restore["facts"]["phase"] == "ready", restore
    assert restore["facts"]["db_accepting"] is True and restore["facts"]["in_recovery"] is False
    assert restore["facts"]["data_restored_from"] == starport["facts"]["nightly_restored_at"]


def test_console_base_backup_adds_a_backup(act_lab: Lab) -> None:
    before = check(act_lab.config_path)["panels"]["barman"]["facts"]
    r = console(act_lab.config_path, "run", "base-backup", "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    after = check(act_lab.config_path)["panels"]["barman"]["facts"]
    assert after["last_backup_id"] != before["last_backup_id"]
    # with REDUNDANCY 3, barman cron soon removes the oldest beyond three
    n = before["backups_available"]
    assert after["backups_available"] == n + 1 or (n >= 3 and after["backups_available"] >= 3)


def test_console_privateer_profile_end_to_end(act_lab: Lab) -> None:
    config = act_lab.privateer_config_path
    r = console(config, "run", "nightly-recover", "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    stamp = parse_stamp(in_volume(act_lab, "barman_recover", ".barman-last-restore").read_text())
    assert (datetime.now(UTC) - stamp).total_seconds() < 120
    # privateer copies with ``rsync -av --delete``, whose quick check compares sizes and whole-second
    # mtimes: science's pg_control, rewritten when the restore stops montagu-db, must not share the
    # second in which the replay last wrote the copy's, or rsync keeps science's own and the
    # restored cluster cannot start. Minutes apart on annex; here it needs a second's wait.
    time.sleep(1.1)
    r = console(config, "run", "restore", "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Restoring 'barman_recover' from 'annex' to 'science_db_volume'" in r.stdout
    restore = check(config)["panels"]["restore"]
    assert restore["facts"]["phase"] == "ready" and restore["facts"]["db_accepting"] is True
    assert datetime.fromisoformat(restore["facts"]["data_restored_from"]) == stamp
    # the real privateer ran it: its second line, in the run's log too, from the annex's server container
    assert "Data originally from '(source)'" in r.stdout
    assert "Data originally from '(source)'" in newest_run_log(act_lab, "restore").read_text()
    server = act_lab.docker("inspect", "-f", "{{.State.Running}} {{.Config.Image}}", "privateer_montagu_server")
    assert server.stdout.split() == ["true", "mrcide/privateer-server:latest"]


def test_console_privateer_restore_fails_when_its_server_is_stopped(act_lab: Lab) -> None:
    config = act_lab.privateer_config_path
    act_lab.stop_privateer_server()
    try:
        r = console(config, "run", "restore", "--yes")
    finally:
        act_lab.start_privateer_server()
    try:
        assert r.returncode != 0, r.stdout + r.stderr
        out = r.stdout + r.stderr
        assert "An error occured! Container logs:" in out
        assert f"port {act_lab.privateer_port}: Connection refused" in out
        assert "Exception: Restore failed; see" in out
        record = json.loads((newest_run_log(act_lab, "restore").parent / "run.json").read_text())
        assert record["state"] == "failed", record
        failed = [s["name"] for s in record["steps"] if s["state"] == "failed"]
        assert failed == [f"{act_lab.privateer_science} restore"], record  # the step is named
    finally:
        # science back on the annex's copy, as the other tests expect it
        time.sleep(1.1)  # see test_console_privateer_profile_end_to_end
        again = console(config, "run", "restore", "--yes")
        assert again.returncode == 0, again.stdout + again.stderr


def test_lab_config_gives_the_replay_its_mounts_and_environment(act_lab: Lab) -> None:
    from montagu_console.actions import plans
    from montagu_console.config import load_config, parse_config
    from montagu_console.errors import ConfigError

    config = load_config(act_lab.config_path)
    assert config.barman.home == str(act_lab.barman_home) and config.nightly.mount == "/nightly"
    assert config.science.rpo_sql == 'SELECT max("timestamp") FROM api_access_log' and config.science.verify
    [replay] = [s for s in plans.plan(config, "nightly-recover")["steps"] if s["kind"] == "replay"]
    assert "/usr:/usr:ro" in replay["mounts"] and "PGPORT" in replay["env_names"]
    assert f"PGPORT={act_lab.replay_port}" in config.nightly.replay.env and "env" not in replay  # names only
    assert replay["user"] == "0" and replay["image"] == "montagu-lab/postgres:host"
    text = act_lab.config_path.read_text().replace("    mounts: [", '    mounts: ["no-colon", ')
    with pytest.raises(ConfigError, match=r"nightly\.replay\.mounts\[0\]: expected a bind mount \"SRC:DST\""):
        parse_config(text, act_lab.config_path)
