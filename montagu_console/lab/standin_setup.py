"""Install the stand-in ``bb8`` (``lab/standins/bb8.py``) the way the estate has it.

- ``LAB/annex/bin/bb8``: target ``barman_to_starport`` (named volume montagu_db_volume, restore
  false); ``LAB/science/bin/bb8``: target ``main_db_restore`` (named volume science_db_volume,
  ``remote_volume`` montagu_db_volume, backup false). Like /usr/local/bin/bb8, each wrapper runs
  the program in a throw-away container named ``bb8`` (``bb8_<hex>`` for log and status) with
  the machine id, its config, its ssh key and its logs dir (``LAB/<side>/bb8/logs``) mounted.

privateer is the real one (privateer_lab.py), not a stand-in.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path

from .images import host_mounts
from .layout import (
    NIGHTLY_VOLUME,
    POSTGRES_IMAGE,
    RESTORE_TARGET,
    SCIENCE_VOLUME,
    STARPORT_TARGET,
    Layout,
)
from .proc import LabError, program, run

STANDINS = Path(__file__).resolve().parent / "standins"
BB8_LOGS_IN_CONTAINER = "/bb8/logs/"


def _mount_paths() -> list[str]:
    """The ``SRC:DST:ro`` mounts of host_mounts(), without the ``-v``."""
    args = host_mounts()
    return [args[i + 1] for i in range(0, len(args), 2)]


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def _bb8_config(lab: Layout, side: Path, target: dict) -> dict:
    ssh = side / "bb8" / "ssh"
    return {
        "starport": {
            "addr": "127.0.0.1",
            "user": lab.sci_user,
            "backup_location": "~/starport/",
            # the lab's additions (the real bb8 reads ~/.ssh of its bb8_ssh volume)
            "port": lab.ssh_port,
            "key_file": str(ssh / "id_ed25519"),
            "known_hosts": str(ssh / "known_hosts"),
        },
        "targets": [target],
        "docker_host": lab.docker_host,
        "logs_dir": BB8_LOGS_IN_CONTAINER,
        "rsync_image": POSTGRES_IMAGE,
        "rsync_mounts": _mount_paths(),
    }


BB8_WRAPPER = """\
#!/bin/sh
# Stand-in for /usr/local/bin/bb8 ({side} of the montagu-console lab), written by `lab up`.
# Like the real wrapper it runs bb8 in a throw-away container named `bb8` (`bb8_<random>` for
# log and status), so a second backup or restore while one runs fails on the container name.
# Program: {program}; config: {config}; logs: {logs}
name=bb8
case "${{1:-}}" in log|status) name="bb8_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \\n')";; esac
exec {docker} -H {docker_host} run --rm --init --name "$name" --network host {mounts} \\
    -e PYTHONUNBUFFERED=1 -e PYTHONDONTWRITEBYTECODE=1 {image} {python} {program} "$@"
"""


def _install_bb8(lab: Layout, side: Path, target: dict) -> None:
    bb8_dir = side / "bb8"
    ssh = bb8_dir / "ssh"
    ssh.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(lab.client_key, ssh / "id_ed25519")
    (ssh / "id_ed25519").chmod(0o600)
    shutil.copyfile(lab.known_hosts, ssh / "known_hosts")
    (bb8_dir / "logs").mkdir(exist_ok=True)
    config = _bb8_config(lab, side, target)
    _write(bb8_dir / "config.json", json.dumps(config, indent=2) + "\n")
    sock = str(lab.docker_socket)
    mounts = [
        *_mount_paths(),
        f"{lab.venv}:{lab.venv}:ro",
        f"{STANDINS}:{STANDINS}:ro",
        f"{sock}:{sock}",
        "/etc/machine-id:/bb8/etc/machine-id:ro",
        f"{bb8_dir / 'config.json'}:/bb8/etc/config.json:ro",
        f"{ssh}:{ssh}:ro",
        f"{bb8_dir / 'logs'}:{BB8_LOGS_IN_CONTAINER.rstrip('/')}",
    ]
    mounts += [f"{p}:{p}:ro" for p in ("/etc/localtime", "/etc/timezone") if os.path.exists(p)]
    _write(
        side / "bin" / "bb8",
        BB8_WRAPPER.format(
            side=side.name,
            program=STANDINS / "bb8.py",
            config=bb8_dir / "config.json",
            logs=bb8_dir / "logs",
            docker=program("docker"),
            docker_host=lab.docker_host,
            image=POSTGRES_IMAGE,
            python=lab.python,
            mounts=" ".join(f"-v {shlex.quote(m)}" for m in mounts),
        ),
        0o755,
    )


def install(lab: Layout) -> None:
    """Write both bb8 wrappers and configs."""
    for side in (lab.annex_dir, lab.science_dir):
        (side / "bin").mkdir(parents=True, exist_ok=True)
        side.chmod(0o755)
    _install_bb8(
        lab,
        lab.annex_dir,
        {"name": STARPORT_TARGET, "type": "named_volume", "volume": NIGHTLY_VOLUME, "restore": False},
    )
    _install_bb8(
        lab,
        lab.science_dir,
        {
            "name": RESTORE_TARGET,
            "type": "named_volume",
            "volume": SCIENCE_VOLUME,
            "remote_volume": NIGHTLY_VOLUME,
            "backup": False,
        },
    )


def bb8(lab: Layout, side: str, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    """Run the annex's or science's ``bb8 ARGS``; LabError (with its last lines) if it fails."""
    exe = lab.bb8_annex if side == "annex" else lab.bb8_science
    result = run(f"bb8 {' '.join(args)} ({side})", [exe, *args], timeout=timeout, check=False)
    if result.returncode != 0:
        lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
        raise LabError(f"`{exe} {' '.join(args)}` failed (exit {result.returncode}): " + " | ".join(lines[-4:]))
    return result
