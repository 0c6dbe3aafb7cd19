"""Real fixtures for the transport tests: a private sshd on loopback, an isolated HOME."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from montagu_console.config import HostConfig

SSH_USER = "montagu-test-ssh"
SSH_HOME = Path("/var/lib/montagu-test-ssh")
SFTP_SERVER = "/usr/lib/openssh/sftp-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path: Path, comment: str) -> str:
    """Make an ed25519 key pair; return the public key line."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip()


def children(pid: int) -> list[int]:
    """All descendants of ``pid`` (from /proc), deepest first."""
    try:
        direct = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []
    return [d for c in direct for d in children(c)] + direct


def ensure_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SSH_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--create-home", "--home-dir", str(SSH_HOME), "--shell", "/bin/sh", SSH_USER],
            check=True,
        )
        subprocess.run(["usermod", "-p", "*", SSH_USER], check=True)  # sshd with UsePAM no refuses '!'
        return pwd.getpwnam(SSH_USER)


@dataclasses.dataclass
class Sshd:
    """A private sshd on 127.0.0.1:port, plus the files a client needs."""

    dir: Path
    port: int
    user: str
    home: Path
    client_key: Path
    other_key: Path  # a key sshd does not accept
    known_hosts: Path  # correct entry
    wrong_known_hosts: Path  # a different key for the same host
    empty_known_hosts: Path
    proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["/usr/sbin/sshd", "-D", "-f", str(self.dir / "sshd_config"), "-E", str(self.dir / "sshd.log")]
        )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                assert self.proc.poll() is None, (self.dir / "sshd.log").read_text()
                time.sleep(0.02)
        raise RuntimeError("test sshd did not start listening")

    def stop(self) -> None:
        """Stop the listener and every session process it forked (so clients see the drop)."""
        if self.proc is None:
            return
        for pid in [*children(self.proc.pid), self.proc.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 15)
        self.proc.wait(5)
        self.proc = None

    def config(self, **changes) -> HostConfig:
        base = HostConfig(
            name="science",
            transport="ssh",
            host="127.0.0.1",
            port=self.port,
            user=self.user,
            key_file=str(self.client_key),
            known_hosts=str(self.known_hosts),
            connect_timeout=3.0,
        )
        return dataclasses.replace(base, **changes)


@pytest.fixture(scope="module")
def sshd(tmp_path_factory) -> Sshd:
    if os.geteuid() != 0:
        pytest.skip("the test sshd needs root (it logs in as a dedicated system user)")
    user = ensure_user()
    d = tmp_path_factory.mktemp("sshd")
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    port = free_port()
    # sshd reads authorized_keys as the user, who cannot enter pytest's private tmp dirs
    auth = Path(tempfile.mkdtemp(prefix="montagu-test-sshd-"))
    auth.chmod(0o755)
    pub = keygen(d / "client_key", "montagu-test-client")
    keygen(d / "other_key", "montagu-test-other")
    (auth / SSH_USER).write_text(pub + "\n")
    (auth / SSH_USER).chmod(0o644)
    host_key_line = " ".join(keygen(d / "host_key", "test-host").split()[:2])
    wrong_line = " ".join(keygen(d / "wrong_host_key", "wrong-host").split()[:2])
    (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key_line}\n")
    (d / "wrong_known_hosts").write_text(f"[127.0.0.1]:{port} {wrong_line}\n")
    (d / "empty_known_hosts").write_text("")
    (d / "sshd_config").write_text(f"""\
Port {port}
ListenAddress 127.0.0.1
HostKey {d}/host_key
PidFile {d}/sshd.pid
AuthorizedKeysFile {auth}/%u
AllowUsers {SSH_USER}
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin no
Subsystem sftp {SFTP_SERVER}
""")
    subprocess.run(["/usr/sbin/sshd", "-t", "-f", str(d / "sshd_config")], check=True)
    server = Sshd(
        dir=d,
        port=port,
        user=SSH_USER,
        home=Path(user.pw_dir),
        client_key=d / "client_key",
        other_key=d / "other_key",
        known_hosts=d / "known_hosts",
        wrong_known_hosts=d / "wrong_known_hosts",
        empty_known_hosts=d / "empty_known_hosts",
    )
    server.start()
    yield server
    server.stop()
    shutil.rmtree(auth)


@pytest.fixture
def remote_dir(sshd):
    """A fresh directory in the SSH user's home, as (absolute path, "~/" path)."""
    name = f"montagu-test-{os.getpid()}-{time.monotonic_ns()}"
    path = sshd.home / name
    path.mkdir()
    shutil.chown(path, sshd.user)
    yield path, f"~/{name}"
    shutil.rmtree(path)


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on."""
    return free_port()


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch) -> Path:
    """HOME is a fresh directory: the operator's ~/.ssh and agent cannot leak into the tests."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return home
