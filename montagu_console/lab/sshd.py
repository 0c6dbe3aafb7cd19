"""The lab's sshd on a loopback port: the starport host the console reaches over SSH."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

from .layout import PG_BIN, Layout
from .proc import LabError, pid_running, program, read_pid, run, stop_pid, wait_for
from .users import ids

SSHD_CONFIG = """\
Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {pidfile}
AuthorizedKeysFile {keys_dir}/%u
AllowUsers {user}
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin no
SetEnv PATH={venv}/bin:{pg_bin}:/usr/local/bin:/usr/bin:/bin DOCKER_HOST={docker_host}
Subsystem sftp /usr/lib/openssh/sftp-server
"""


def ssh_argv(lab: Layout) -> list[str]:
    """The ssh client command (without the destination) that logs in to the lab sshd."""
    return [
        "ssh",
        "-F",
        "/dev/null",
        "-p",
        str(lab.ssh_port),
        "-i",
        str(lab.client_key),
        "-o",
        f"UserKnownHostsFile={lab.known_hosts}",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "ConnectTimeout=5",
    ]


def ssh(
    lab: Layout, command: str, *, step: str = "ssh", input: str | None = None, timeout: float = 30, check: bool = True
) -> subprocess.CompletedProcess:
    """Run ``command`` on the lab sshd as the SSH user."""
    return run(step, [*ssh_argv(lab), f"{lab.sci_user}@127.0.0.1", command], input=input, timeout=timeout, check=check)


def _keygen(path: Path, comment: str) -> None:
    for stale in (path, path.with_name(path.name + ".pub")):
        stale.unlink(missing_ok=True)
    run("ssh-keygen", ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path])


def setup(lab: Layout) -> None:
    """Write the host key, the client key and its authorization, and sshd_config; check the config."""
    lab.authorized_keys_dir.mkdir(parents=True, exist_ok=True)
    _keygen(lab.host_key, "montagu-lab-host")
    _keygen(lab.client_key, "montagu-lab-client")
    keys = lab.authorized_keys_dir / lab.sci_user
    keys.write_text(lab.client_key.with_name("client_key.pub").read_text())
    uid, gid = ids(lab.sci_user)
    os.chown(keys, uid, gid)
    lab.sshd_config.write_text(
        SSHD_CONFIG.format(
            port=lab.ssh_port,
            host_key=lab.host_key,
            pidfile=lab.sshd_pidfile,
            keys_dir=lab.authorized_keys_dir,
            user=lab.sci_user,
            venv=lab.venv,
            pg_bin=PG_BIN,
            docker_host=lab.docker_host,
        )
    )
    # without it: "Missing privilege separation directory: /run/sshd"
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    run("check sshd_config", [program("sshd"), "-t", "-f", lab.sshd_config])


def listening(port: int) -> bool:
    """True if something accepts TCP connections on 127.0.0.1:``port``."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def sshd_pid(lab: Layout) -> int | None:
    """The lab sshd's pid if it is running."""
    pid = read_pid(lab.sshd_pidfile)
    return pid if pid_running(pid, str(lab.sshd_config)) else None


def start(lab: Layout) -> None:
    """Start sshd (it daemonizes) unless it runs, and wait until it listens."""
    if sshd_pid(lab):
        return
    run("start sshd", [program("sshd"), "-f", lab.sshd_config, "-E", lab.sshd_log])
    wait_for("wait for sshd", lambda: sshd_pid(lab) and listening(lab.ssh_port), timeout=10, interval=0.02)


def stop(lab: Layout) -> None:
    """Stop the lab sshd if it runs (its listener only; open sessions end with their clients)."""
    pid = sshd_pid(lab)
    if pid:
        stop_pid("stop sshd", pid, str(lab.sshd_config), timeout=10)


def trust_and_test(lab: Layout) -> None:
    """Write known_hosts with ssh-keyscan and a wrong one for rejection tests; check a login works."""
    scan = run("ssh-keyscan", ["ssh-keyscan", "-t", "ed25519", "-p", str(lab.ssh_port), "127.0.0.1"], timeout=15)
    if "ssh-ed25519" not in scan.stdout:
        raise LabError(f"ssh-keyscan of 127.0.0.1:{lab.ssh_port} returned no ed25519 key")
    lab.known_hosts.write_text(scan.stdout)
    wrong_key = lab.ssh_dir / "wrong_host_key"
    _keygen(wrong_key, "montagu-lab-wrong-host")
    wrong_pub = wrong_key.with_name("wrong_host_key.pub").read_text().split()
    lab.known_hosts_wrong.write_text(f"[127.0.0.1]:{lab.ssh_port} {wrong_pub[0]} {wrong_pub[1]}\n")
    ssh(lab, "true", step="test ssh login")
