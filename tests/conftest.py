"""Shared fixtures: the real embedded lab, brought up once per test session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONSOLE = str(Path(sys.executable).with_name("montagu-console"))


@pytest.fixture(scope="session")
def lab():
    """The lab (reused when already running); stopped at the end unless MONTAGU_KEEP_LAB=1."""
    if os.geteuid() != 0:
        pytest.fail("the lab tests need root: the lab creates users and runs postgres, sshd and dockerd")
    from montagu_console.lab import DEFAULT_LAB_DIR, Lab, lab_down, lab_up

    lab_up(DEFAULT_LAB_DIR)
    handle = Lab.load(DEFAULT_LAB_DIR)
    os.environ.setdefault("MONTAGU_TEST_DOCKER_URL", f"unix://{handle.docker_socket}")
    yield handle
    if os.environ.get("MONTAGU_KEEP_LAB") != "1":
        lab_down(DEFAULT_LAB_DIR)


@pytest.fixture(scope="session")
def lab_config(lab) -> Path:
    return Path(lab.config_path)


def run_check(config: Path, *args: str, timeout: float = 120) -> tuple[int, dict | str, str]:
    """Run `montagu-console check` as an operator would; JSON is decoded when asked for."""
    r = subprocess.run(
        [CONSOLE, "check", "--config", str(config), *args], capture_output=True, text=True, timeout=timeout
    )
    out: dict | str = r.stdout
    if "--json" in args and r.stdout.strip():
        out = json.loads(r.stdout)
    return r.returncode, out, r.stderr


def console(
    config: Path | str, *args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run ``montagu-console ARGS --config CONFIG`` as an operator would, with no terminal input."""
    return subprocess.run(
        [CONSOLE, *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
        env=env,
    )


def all_strings(value):
    """Every string in a decoded JSON document, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from all_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from all_strings(v)


def config_variant(config: Path, tmp_path: Path, edit) -> Path:
    """A copy of ``config`` with one edit applied to its YAML, the way an operator would edit it."""
    import yaml

    data = yaml.safe_load(config.read_text())
    edit(data)
    out = tmp_path / "config.yml"
    out.write_text(yaml.safe_dump(data))
    return out


def annex_barman(data: dict) -> dict:
    """The first (annex's) barman entry of a config's YAML data, whether ``barman`` is one mapping
    or a list of instances."""
    entry = data["barman"]
    return entry[0] if isinstance(entry, list) else entry


def wait_for(predicate, *, timeout: float = 60, interval: float = 1.0, what: str = "condition"):
    """Poll ``predicate`` until it returns a truthy value; fail with the last value seen."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:g} s waiting for {what}; last value: {last!r}")
