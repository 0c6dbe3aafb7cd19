"""The lab as the estate is (issue 11, item 6): the off-site barman on its own host.

barman-aws streams from the primary only through an SSH tunnel (as the AWS barman's autossh),
with slot barman_aws and its own first base backup; the console reaches its host over a second
sshd; both barmans keep RECOVERY WINDOW OF 3 MONTHS. Each fault a test drives (tunnel killed,
receive-wal stopped, the host's sshd stopped, an extra slot) is real, and is repaired by the test.
Lab-level facts only; the console's view of them is in test_estate_on_lab.py.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess

import pytest
import yaml

from montagu_console.lab import lab_status
from montagu_console.lab.sshd import listening, ssh_argv
from tests.conftest import wait_for

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root"),
]

RETENTION = "RECOVERY WINDOW OF 3 MONTHS"


def slots(lab) -> dict[str, bool]:
    """``{slot name: active}`` of every replication slot on the primary."""
    out = lab.psql("select slot_name, active from pg_replication_slots order by 1")
    return {name: active == "t" for name, active in (line.split("|") for line in out.splitlines())}


def status(lab, name: str) -> dict:
    return next(row for row in lab_status(lab.lab_dir) if row["name"] == name)


def aws_login(lab, command: str) -> subprocess.CompletedProcess:
    """``command`` on the off-site host over its sshd, with the key and known_hosts of the config."""
    return subprocess.run(
        [
            *ssh_argv(lab, port=lab.aws_ssh_port, known_hosts=lab.aws_known_hosts),
            f"{lab.aws_user}@127.0.0.1",
            command,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )


def test_both_slots_exist_and_are_active(lab) -> None:
    assert {"barman": True, "barman_aws": True}.items() <= slots(lab).items()
    for row in ("receive-wal", "receive-wal-aws", "tunnel", "barman-aws", "sshd-aws"):
        assert status(lab, row)["running"] is True, status(lab, row)


def test_offsite_barman_check_passes_and_has_its_own_backup(lab) -> None:
    check = lab.aws_barman("check", "montagu")
    assert check.returncode == 0, check.stdout + check.stderr
    backups = json.loads(lab.aws_barman("-f", "json", "list-backups", "montagu").stdout)["montagu"]
    assert [b["status"] for b in backups][-1:] == ["DONE"]  # the oldest: its own first base backup
    assert "FAILED" not in {b["status"] for b in backups}
    first = backups[-1]["backup_id"]
    assert (lab.aws_barman_home / "montagu" / "base" / first).is_dir()
    assert not (lab.barman_home / "montagu" / "base" / first).exists()  # not annex's backup


def test_offsite_barman_reaches_the_primary_only_through_the_tunnel(lab) -> None:
    conf = lab.aws_barman_conf.read_text()
    assert f"conninfo = host=127.0.0.1 port={lab.tunnel_port} user=barman" in conf
    assert f"streaming_conninfo = host=127.0.0.1 port={lab.tunnel_port} user=streaming_barman" in conf
    assert f"port={lab.pg_port}" not in conf
    assert "slot_name = barman_aws" in conf and "create_slot = auto" in conf
    pgpass = lab.aws_pgpass.read_text().splitlines()
    assert pgpass and all(line.startswith(f"127.0.0.1:{lab.tunnel_port}:") for line in pgpass)
    assert lab.aws_pgpass.stat().st_mode & 0o777 == 0o600


def test_both_barmans_keep_three_months(lab) -> None:
    for run in (lab.barman, lab.aws_barman):
        out = run("status", "montagu").stdout
        line = next(x for x in out.splitlines() if "Retention policies" in x)
        assert f"retention: {RETENTION}," in line, line


def test_tunnel_user_may_only_forward_to_the_primary(lab) -> None:
    base = [
        "ssh",
        "-F",
        "/dev/null",
        "-p",
        str(lab.ssh_port),
        "-i",
        str(lab.tunnel_key),
        "-o",
        f"UserKnownHostsFile={lab.known_hosts}",
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
    ]
    shell = subprocess.run([*base, f"{lab.tunnel_user}@127.0.0.1", "id"], capture_output=True, text=True, timeout=30)
    assert shell.returncode != 0 and "uid=" not in shell.stdout
    # a forward to the starport's own sshd (not the primary) is refused by the server
    with socket.socket() as probe:  # a port nothing listens on (another lab may hold nearby ones)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    other = subprocess.Popen(
        [*base, "-N", "-L", f"127.0.0.1:{port}:127.0.0.1:{lab.ssh_port}", f"{lab.tunnel_user}@127.0.0.1"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: listening(port), timeout=20, interval=0.2, what="the test forward listening")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.settimeout(10)
            assert sock.recv(64) == b""  # no SSH banner: the channel was refused
    finally:
        other.terminate()
        try:
            _, err = other.communicate(timeout=20)
        except subprocess.TimeoutExpired:  # what it wrote stands; it only has to go
            other.kill()
            _, err = other.communicate(timeout=20)
    assert "administratively prohibited" in err, err


def test_console_config_lists_both_barmans_and_the_primary(lab) -> None:
    for path in (lab.config_path, lab.privateer_config_path):
        config = yaml.safe_load(path.read_text())
        sock = lab.docker_host
        assert config["hosts"]["aws"] == {
            "transport": "ssh",
            "host": "127.0.0.1",
            "port": lab.aws_ssh_port,
            "user": lab.aws_user,
            "key_file": str(lab.client_key),
            "known_hosts": str(lab.aws_known_hosts),
        }
        assert [(b["name"], b["host"], b["slot"]) for b in config["barman"]] == [
            ("annex", "annex", "barman"),
            ("aws", "aws", "barman_aws"),
        ]
        annex, aws = config["barman"]
        assert annex["command"] == ["docker", "-H", sock, "exec", "barman-montagu", "barman"]
        assert annex["container"] == "barman-montagu" and annex["home"] == str(lab.barman_home)
        assert aws["command"] == ["docker", "-H", sock, "exec", "barman-aws", "barman"]
        assert "container" not in aws and aws["home"] == str(lab.aws_barman_home)
        assert config["primary"]["host"] == "annex"
    command = config["primary"]["command"]
    assert command == ["docker", "-H", sock, "exec", "barman-montagu", "psql", "-h", "127.0.0.1", "-p",
                       str(lab.pg_port), "-U", "barman", "-d", "montagu"]  # fmt: skip
    result = subprocess.run([*command, "-X", "-A", "-t", "-c", "select 1"], capture_output=True, text=True, timeout=30)
    assert (result.returncode, result.stdout) == (0, "1\n"), result.stderr


def test_console_user_on_the_offsite_host_runs_its_barman(lab) -> None:
    config = yaml.safe_load(lab.config_path.read_text())
    aws = config["barman"][1]
    result = aws_login(lab, " ".join([*aws["command"], "-f", "json", "list-backups", "montagu"]))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["montagu"][-1]["status"] == "DONE"
    assert aws_login(lab, "id -un").stdout.strip() == lab.aws_user


def test_killed_tunnel_leaves_the_offsite_slot_inactive_until_restarted(lab) -> None:
    lab.kill_tunnel()
    try:
        assert slots(lab)["barman_aws"] is False  # kill_tunnel waited for it
        assert slots(lab)["barman"] is True
        assert status(lab, "tunnel")["running"] is False
        assert not listening(lab.tunnel_port)
        lab.psql("select pg_switch_wal()")
        wait_for(
            lambda: (lab.slot_retained_bytes("barman_aws") or 0) > 0,
            timeout=30,
            what="WAL retained for barman_aws",
        )
        # its cron keeps trying, and cannot reach the primary
        check = lab.aws_barman("check", "montagu", timeout=60)
        assert check.returncode != 0 and "PostgreSQL: FAILED" in check.stdout, check.stdout
    finally:
        lab.start_tunnel()
    assert status(lab, "tunnel")["running"] is True
    wait_for(lambda: slots(lab)["barman_aws"], timeout=90, what="barman_aws active again after its cron")
    wait_for(lambda: lab.aws_barman("check", "montagu").returncode == 0, timeout=60, what="barman-aws check OK")


def test_stopped_offsite_receive_wal_comes_back_with_its_cron(lab) -> None:
    lab.pause_aws_cron()
    try:
        lab.stop_aws_receive_wal()
        now = slots(lab)
        assert (now["barman"], now["barman_aws"]) == (True, False)
        assert "cron paused" in status(lab, "barman-aws")["detail"]
        assert status(lab, "receive-wal-aws")["running"] is False
    finally:
        lab.resume_aws_cron()
    wait_for(lambda: slots(lab)["barman_aws"], timeout=90, what="barman_aws active again after its cron")
    assert status(lab, "receive-wal-aws")["running"] is True


def test_stopped_offsite_sshd_refuses_while_the_starport_sshd_answers(lab) -> None:
    lab.stop_aws_sshd()
    try:
        assert not listening(lab.aws_ssh_port)
        refused = aws_login(lab, "true")
        assert refused.returncode == 255 and "Connection refused" in refused.stderr
        assert status(lab, "sshd-aws")["running"] is False
        assert lab.ssh("true").returncode == 0
        assert status(lab, "sshd")["running"] is True and status(lab, "tunnel")["running"] is True
        assert slots(lab)["barman_aws"] is True  # the tunnel does not go through this sshd
    finally:
        lab.start_aws_sshd()
    assert aws_login(lab, "true").returncode == 0
    assert status(lab, "sshd-aws")["running"] is True


def test_an_extra_slot_retains_wal_until_dropped(lab) -> None:
    name = "offsite_lab_test_slot"
    lab.create_slot(name)
    try:
        assert slots(lab)[name] is False
        lab.psql("select pg_switch_wal()")
        lab.psql("select pg_logical_emit_message(false, 'test', 'after the switch')")
        assert (lab.slot_retained_bytes(name) or 0) > 0
    finally:
        lab.drop_slot(name)
    assert name not in slots(lab) and lab.slot_retained_bytes(name) is None
