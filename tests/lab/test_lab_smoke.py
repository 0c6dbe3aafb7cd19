"""Smoke test of the embedded lab: build one next to the default lab, use every part, tear it down.

Runs as root only (the lab creates users and runs postgres as labpg). Ports differ from the
default lab's, so both can run at once.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from montagu_console.lab import Lab, LabError, LabPorts, lab_down, lab_status, lab_up, privateer_vault
from montagu_console.lab.proc import pid_running, pids_with

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root"),
]

# long enough that dockerd's exec-root must move under /run (unix socket paths are short)
LAB_DIR = Path("/srv/montagu-lab-test-smoke-long-path-puts-exec-root-in-run")
PORTS = LabPorts(primary=56432, science=56433, replay=56434, ssh=2322, tunnel=56435, aws_ssh=2323)


@pytest.fixture(scope="module")
def smoke_lab() -> Iterator[Lab]:
    lines: list[str] = []
    config = lab_up(LAB_DIR, ports=PORTS, log=lines.append)
    assert config == LAB_DIR / "config.yml"
    assert lines[-1].startswith("lab: ready in "), lines
    yield Lab.load(LAB_DIR)
    lab_down(LAB_DIR)


def status(name: str) -> dict:
    return next(c for c in lab_status(LAB_DIR) if c["name"] == name)


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_config_points_at_the_lab(smoke_lab: Lab) -> None:
    assert smoke_lab.config_path.stat().st_mode & 0o777 == 0o600
    config = yaml.safe_load(smoke_lab.config_path.read_text())
    sock = f"unix://{LAB_DIR}/docker.sock"
    assert config["hosts"]["annex"] == {"transport": "local", "docker": sock}
    assert config["hosts"]["starport"]["port"] == PORTS.ssh
    assert config["hosts"]["starport"]["user"] == smoke_lab.sci_user == "labsci2322"
    annex, aws = config["barman"]
    assert annex["command"] == ["docker", "-H", sock, "exec", "barman-montagu", "barman"]
    assert aws["command"] == ["docker", "-H", sock, "exec", "barman-aws", "barman"]
    assert config["hosts"]["aws"]["port"] == PORTS.aws_ssh
    assert config["hosts"]["aws"]["user"] == smoke_lab.aws_user == "labaws2323"
    assert f"port={PORTS.tunnel} " in smoke_lab.aws_barman_conf.read_text()
    assert config["starport"]["targets"] == ["barman_to_starport"]
    assert config["science"]["container"] == "montagu-db"
    assert config["lock_dir"] == str(LAB_DIR / "locks")  # never /run/montagu-console, shared by every lab


def reserved_ports() -> set[int]:
    """The kernel's ip_local_reserved_ports, ranges ("55432-55439") expanded."""
    ports: set[int] = set()
    for part in Path("/proc/sys/net/ipv4/ip_local_reserved_ports").read_text().strip().split(","):
        if part:
            lo, _, hi = part.partition("-")
            ports.update(range(int(lo), int(hi or lo) + 1))
    return ports


def test_the_labs_ports_are_kept_from_outgoing_connections(smoke_lab: Lab) -> None:
    assert set(smoke_lab.all_ports) <= reserved_ports()
    assert {PORTS.primary, PORTS.replay, PORTS.tunnel, smoke_lab.pitr_port} <= reserved_ports()


def test_barman_check_is_all_ok_through_docker_exec(smoke_lab: Lab) -> None:
    config = yaml.safe_load(smoke_lab.config_path.read_text())
    for instance in config["barman"]:
        result = subprocess.run(
            [*instance["command"], "-f", "json", "check", "montagu"], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stdout
        checks = json.loads(result.stdout)["montagu"]
        assert {name: c["status"] for name, c in checks.items() if c["status"] != "OK"} == {}
    backups = json.loads(smoke_lab.barman("-f", "json", "list-backups", "montagu").stdout)["montagu"]
    assert [b["status"] for b in backups] == ["DONE"]
    assert (
        smoke_lab.psql("select count(*) from pg_stat_replication where application_name = 'barman_receive_wal'") == "2"
    )
    assert smoke_lab.psql("select string_agg(slot_name, ',' order by 1) from pg_replication_slots where active") == (
        "barman,barman_aws"
    )


def test_nightly_copy_has_its_timestamp(smoke_lab: Lab) -> None:
    nightly = smoke_lab.volume_path("montagu_db_volume")
    stamp = (nightly / ".barman-last-restore").read_text().strip()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{9}\+00:00", stamp), stamp
    assert (nightly / "PG_VERSION").read_text().strip() == "15"
    assert (nightly / "backup_label.old").exists()  # the WAL replay ran on it
    assert not (nightly / "postmaster.pid").exists()  # and shut down cleanly
    replay = smoke_lab.replay_log.read_text()
    assert "redo starts at" in replay and "database system is shut down" in replay


def test_starport_metadata_in_bb8_format(smoke_lab: Lab) -> None:
    target = smoke_lab.starport_dir / "barman_to_starport"
    meta = json.loads((target / "meta" / "metadata.json").read_text())
    assert set(meta) == {"last_backup", "instance_guid"}
    assert datetime.fromisoformat(meta["last_backup"]).tzinfo is not None
    assert meta["instance_guid"] == Path("/etc/machine-id").read_text().strip()
    assert (target / "data" / "montagu_db_volume" / "PG_VERSION").exists()
    assert os.readlink(smoke_lab.starport_dir / "main_db_restore") == "barman_to_starport"
    assert os.readlink(smoke_lab.sci_home / "starport") == str(smoke_lab.starport_dir)


def test_lab_exercised_the_standins(smoke_lab: Lab) -> None:
    assert next(p.name for p in (smoke_lab.annex_dir / "bb8" / "logs").iterdir()).startswith("bb8_")
    assert len(list((smoke_lab.science_dir / "bb8" / "logs").iterdir())) == 1
    for exe in (smoke_lab.bb8_annex, smoke_lab.bb8_science, smoke_lab.privateer_science):
        assert os.access(exe, os.X_OK)
    config = yaml.safe_load(smoke_lab.config_path.read_text())
    assert config["nightly"]["ship_command"] == [str(smoke_lab.bb8_annex), "backup"]
    assert config["science"]["restore_command"] == [str(smoke_lab.bb8_science), "restore"]
    assert config["nightly"]["replay"]["user"] == "0" and "/usr:/usr:ro" in config["nightly"]["replay"]["mounts"]
    privateer = yaml.safe_load(smoke_lab.privateer_config_path.read_text())
    assert privateer["nightly"]["volume"] == "barman_recover" and privateer["science"]["profile"] == "privateer"
    recover = smoke_lab.volume_path("barman_recover")
    assert (recover / "PG_VERSION").exists() and (recover / ".barman-last-restore").exists()


def test_science_database_accepts_queries(smoke_lab: Lab) -> None:
    result = smoke_lab.docker("exec", "montagu-db", "psql", "-Atc", "select pg_is_in_recovery()")
    assert result.stdout.strip() == "f", result.stderr
    assert int(smoke_lab.psql("select count(*) from api_access_log", port=smoke_lab.science_port)) >= 4
    logs = smoke_lab.docker("logs", "montagu-db")
    assert "database system is ready to accept connections" in logs.stderr
    # started as root, postgres runs as labpg on data bb8 restored as root
    assert smoke_lab.docker("exec", "montagu-db", "id", "-u").stdout.strip() == "0"
    data = smoke_lab.volume_path("science_db_volume")
    assert (data / "PG_VERSION").stat().st_uid == pwd.getpwnam("labpg").pw_uid


def test_ssh_login_and_host_key_rejection(smoke_lab: Lab) -> None:
    base = [
        "ssh",
        "-F",
        "/dev/null",
        "-p",
        str(smoke_lab.ssh_port),
        "-i",
        str(smoke_lab.client_key),
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
    ]
    ok = subprocess.run(
        [
            *base,
            "-o",
            f"UserKnownHostsFile={smoke_lab.known_hosts}",
            f"{smoke_lab.sci_user}@127.0.0.1",
            "cat starport/main_db_restore/meta/metadata.json; echo $DOCKER_HOST",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert ok.returncode == 0, ok.stderr
    assert '"instance_guid"' in ok.stdout and smoke_lab.docker_host in ok.stdout
    wrong = subprocess.run(
        [*base, "-o", f"UserKnownHostsFile={smoke_lab.known_hosts_wrong}", f"{smoke_lab.sci_user}@127.0.0.1", "true"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert wrong.returncode == 255
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in wrong.stderr


def test_state_changes_show_in_status(smoke_lab: Lab) -> None:
    smoke_lab.stop_receive_wal()
    assert smoke_lab.barman("check", "montagu").returncode == 1
    assert status("receive-wal")["running"] is False
    assert "cron paused" in status("barman-montagu")["detail"]
    smoke_lab.start_receive_wal()
    assert status("receive-wal")["running"] is True
    smoke_lab.stop_science()
    assert status("montagu-db")["running"] is False
    smoke_lab.start_science()
    smoke_lab.stop_aws_sshd()
    assert status("sshd-aws")["running"] is False and status("sshd")["running"] is True
    smoke_lab.start_aws_sshd()
    assert status("sshd-aws")["running"] is True
    smoke_lab.kill_tunnel()
    assert status("tunnel")["running"] is False and status("receive-wal-aws")["running"] is False
    smoke_lab.start_tunnel()
    smoke_lab.start_aws_receive_wal()  # does not wait for its cron
    assert status("receive-wal-aws")["running"] is True
    smoke_lab.stop_sshd()
    assert not listening(smoke_lab.ssh_port)
    smoke_lab.start_sshd()
    assert smoke_lab.ssh("true").returncode == 0


def test_running_lab_is_reused_quickly(smoke_lab: Lab) -> None:
    components = lab_status(LAB_DIR)
    assert [c["name"] for c in components] == [
        "dockerd",
        "postgres-primary",
        "receive-wal",
        "barman-montagu",
        "montagu-db",
        "sshd",
        "tunnel",
        "receive-wal-aws",
        "barman-aws",
        "sshd-aws",
        "writer",
    ]
    assert all(c["running"] for c in components), components
    lines: list[str] = []
    assert lab_up(LAB_DIR, ports=PORTS, log=lines.append) == smoke_lab.config_path
    assert lines and lines[0].startswith("lab: reusing")


def test_wipe_refuses_a_directory_that_is_not_a_lab() -> None:
    foreign = Path("/srv/montagu-lab-test-foreign")
    foreign.mkdir(exist_ok=True)
    (foreign / "precious.txt").write_text("keep me")
    try:
        with pytest.raises(LabError, match="refusing to wipe"):
            lab_up(foreign, ports=LabPorts(57432, 57433, 57434, 2422, 57435, 2423), log=lambda line: None)
        assert (foreign / "precious.txt").read_text() == "keep me"
    finally:
        (foreign / "precious.txt").unlink()
        foreign.rmdir()


def test_lab_down_leaves_nothing_running(smoke_lab: Lab) -> None:
    smoke_lab.start_writer(every_seconds=0.2)  # lab up started it already (every 2 s)
    assert status("writer")["running"] is True
    rows = int(smoke_lab.psql("select count(*) from api_access_log"))
    time.sleep(2.5)
    assert int(smoke_lab.psql("select count(*) from api_access_log")) > rows
    recorded = dict(smoke_lab.pids)
    recorded["writer"] = int(smoke_lab.writer_pidfile.read_text())
    assert str(smoke_lab.docker_exec_root).startswith("/run/montagu-lab-")
    containerd = pids_with(f"{smoke_lab.docker_exec_root}/containerd/")
    # containerd, and the shims of barman-montagu, barman-aws, montagu-db and privateer's server
    assert len(containerd) == 5
    vault = privateer_vault.vault_pid(smoke_lab)
    assert vault and listening(smoke_lab.vault_port) and listening(smoke_lab.privateer_port)

    lab_down(LAB_DIR)

    markers = {
        "dockerd": str(smoke_lab.docker_socket),
        "postgres_primary": "postgres",
        "sshd": str(smoke_lab.sshd_config),
        "sshd_aws": str(smoke_lab.aws_sshd_config),
        "tunnel": str(smoke_lab.tunnel_key),
        "writer": "montagu_console.lab.writer",
    }
    assert all(recorded[name] for name in markers)
    assert [name for name, marker in markers.items() if pid_running(recorded[name], marker)] == []
    assert pids_with(f"{smoke_lab.docker_exec_root}/containerd/") == []
    mounts = Path("/proc/self/mountinfo").read_text()
    assert f"{LAB_DIR}/" not in mounts and f"{smoke_lab.docker_exec_root}/" not in mounts
    assert [port for port in vars(PORTS).values() if listening(port)] == []
    assert not pid_running(vault, "-dev-listen-address") and not privateer_vault.token_file(smoke_lab).exists()
    assert not listening(smoke_lab.vault_port) and not listening(smoke_lab.privateer_port)
    assert [c["name"] for c in lab_status(LAB_DIR) if c["running"]] == []
    lab_down(LAB_DIR)  # idempotent
    assert smoke_lab.config_path.exists()  # files stay
