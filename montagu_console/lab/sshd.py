"""The lab's two sshds on loopback ports: the main one (the starport host the console reaches over
SSH, and the far end of the off-site barman's tunnel) and the off-site barman's host ("aws").
Each function takes the :class:`SshdSite` (default: the main sshd)."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

from .layout import PG_BIN, Layout, SshdSite
from .proc import LabError, pid_running, program, read_pid, run, stop_pid, wait_for
from .users import ids

SSHD_CONFIG = """\
Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {pidfile}
AuthorizedKeysFile {keys_dir}/%u
AllowUsers {users}
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin no
SetEnv PATH={venv}/bin:{pg_bin}:/usr/local/bin:/usr/bin:/bin DOCKER_HOST={docker_host}
Subsystem sftp /usr/lib/openssh/sftp-server
{match}"""

# The tunnel's user on the main sshd: local forwarding to the primary only, no terminal, no shell.
TUNNEL_MATCH = """\
Match User {user}
    AllowTcpForwarding local
    PermitOpen 127.0.0.1:{primary}
    PermitTTY no
    X11Forwarding no
    AllowAgentForwarding no
    ForceCommand /bin/false
"""


def ssh_argv(
    lab: Layout, *, port: int | None = None, key: Path | None = None, known_hosts: Path | None = None
) -> list[str]:
    """The ssh client command (without the destination) that logs in to a lab sshd: the starport's
    by default, or the one on ``port`` with ``key`` and ``known_hosts``; host keys checked."""
    return [
        "ssh",
        "-F",
        "/dev/null",
        "-p",
        str(port or lab.ssh_port),
        "-i",
        str(key or lab.client_key),
        "-o",
        f"UserKnownHostsFile={known_hosts or lab.known_hosts}",
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


def _authorize(site: SshdSite, user: str, public_key: Path, options: str = "") -> None:
    """Let ``user`` log in to ``site`` with ``public_key`` (``options``: authorized_keys options)."""
    site.authorized_keys_dir.mkdir(parents=True, exist_ok=True)
    keys = site.authorized_keys_dir / user
    keys.write_text(f"{options} {public_key.read_text()}".lstrip())
    uid, gid = ids(user)
    os.chown(keys, uid, gid)


def _write_config(lab: Layout, site: SshdSite, match: str = "") -> None:
    site.config.write_text(
        SSHD_CONFIG.format(
            port=site.port,
            host_key=site.host_key,
            pidfile=site.pidfile,
            keys_dir=site.authorized_keys_dir,
            users=" ".join(site.users),
            venv=lab.venv,
            pg_bin=PG_BIN,
            docker_host=lab.docker_host,
            match=match,
        )
    )
    # without it: "Missing privilege separation directory: /run/sshd"
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    run(f"check {site.config}", [program("sshd"), "-t", "-f", site.config])


def setup(lab: Layout) -> None:
    """The main sshd: host key, the client key and its authorization for the SSH user, the
    tunnel user's forwarding-only authorization (see tunnel.py), and sshd_config; check the config."""
    site = lab.starport_sshd
    site.dir.mkdir(parents=True, exist_ok=True)
    _keygen(site.host_key, "montagu-lab-host")
    _keygen(lab.client_key, "montagu-lab-client")
    _authorize(site, lab.sci_user, lab.client_key.with_name("client_key.pub"))
    lab.tunnel_dir.mkdir(parents=True, exist_ok=True)
    _keygen(lab.tunnel_key, "montagu-lab-tunnel")
    _authorize(
        site,
        lab.tunnel_user,
        lab.tunnel_key.with_name("tunnel_key.pub"),
        f'restrict,port-forwarding,permitopen="127.0.0.1:{lab.pg_port}"',
    )
    _write_config(lab, site, TUNNEL_MATCH.format(user=lab.tunnel_user, primary=lab.pg_port))


def setup_aws(lab: Layout) -> None:
    """The off-site host's sshd: its own host key, the lab's client key for the aws user, sshd_config."""
    site = lab.aws_sshd
    site.dir.mkdir(parents=True, exist_ok=True)
    _keygen(site.host_key, "montagu-lab-aws-host")
    _authorize(site, lab.aws_user, lab.client_key.with_name("client_key.pub"))
    _write_config(lab, site)


def listening(port: int) -> bool:
    """True if something accepts TCP connections on 127.0.0.1:``port``."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def sshd_pid(lab: Layout, site: SshdSite | None = None) -> int | None:
    """The sshd's pid if it is running."""
    site = site or lab.starport_sshd
    pid = read_pid(site.pidfile)
    return pid if pid_running(pid, str(site.config)) else None


def start(lab: Layout, site: SshdSite | None = None) -> None:
    """Start the sshd (it daemonizes) unless it runs, and wait until it listens."""
    site = site or lab.starport_sshd
    if sshd_pid(lab, site):
        return
    run(f"start {site.name}", [program("sshd"), "-f", site.config, "-E", site.log])
    wait_for(f"wait for {site.name}", lambda: sshd_pid(lab, site) and listening(site.port), timeout=10, interval=0.02)


def stop(lab: Layout, site: SshdSite | None = None) -> None:
    """Stop the sshd if it runs (its listener only; open sessions end with their clients)."""
    site = site or lab.starport_sshd
    pid = sshd_pid(lab, site)
    if pid:
        stop_pid(f"stop {site.name}", pid, str(site.config), timeout=10)


def _keyscan(site: SshdSite) -> None:
    scan = run("ssh-keyscan", ["ssh-keyscan", "-t", "ed25519", "-p", str(site.port), "127.0.0.1"], timeout=15)
    if "ssh-ed25519" not in scan.stdout:
        raise LabError(f"ssh-keyscan of 127.0.0.1:{site.port} returned no ed25519 key")
    site.known_hosts.write_text(scan.stdout)


def trust_and_test(lab: Layout) -> None:
    """Write known_hosts with ssh-keyscan and a wrong one for rejection tests; check a login works."""
    _keyscan(lab.starport_sshd)
    wrong_key = lab.ssh_dir / "wrong_host_key"
    _keygen(wrong_key, "montagu-lab-wrong-host")
    wrong_pub = wrong_key.with_name("wrong_host_key.pub").read_text().split()
    lab.known_hosts_wrong.write_text(f"[127.0.0.1]:{lab.ssh_port} {wrong_pub[0]} {wrong_pub[1]}\n")
    ssh(lab, "true", step="test ssh login")


def aws_ssh_argv(lab: Layout) -> list[str]:
    """The ssh client command (without the destination) that logs in to the off-site host."""
    argv = ssh_argv(lab)
    argv[argv.index("-p") + 1] = str(lab.aws_ssh_port)
    argv[argv.index(f"UserKnownHostsFile={lab.known_hosts}")] = f"UserKnownHostsFile={lab.aws_known_hosts}"
    return argv


def trust_and_test_aws(lab: Layout) -> None:
    """Write the off-site host's known_hosts; check its user logs in and reaches the lab's docker."""
    _keyscan(lab.aws_sshd)
    command = "docker version --format '{{.Server.Version}}'"  # DOCKER_HOST from sshd's SetEnv
    run("test ssh login to the aws host", [*aws_ssh_argv(lab), f"{lab.aws_user}@127.0.0.1", command], timeout=30)
