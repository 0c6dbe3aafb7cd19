"""HostPool: one cached transport and Docker endpoint per configured host."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from montagu_console.config import HostConfig
from montagu_console.errors import TransportError
from montagu_console.transports import DockerEndpoint, HostPool, LocalTransport, SSHTransport


@pytest.fixture
async def pool(sshd):
    hosts = {
        "annex": HostConfig(name="annex", transport="local", docker="unix:///nonexistent/docker.sock"),
        "science": sshd.config(),
    }
    p = HostPool(hosts, command_timeout=5)
    yield p
    await p.close()


async def test_transports_are_created_once_per_host(pool, sshd):
    annex, science = pool.transport("annex"), pool.transport("science")
    assert isinstance(annex, LocalTransport) and isinstance(science, SSHTransport)
    assert pool.transport("annex") is annex and pool.transport("science") is science
    assert (await science.run(["id", "-un"], timeout=5)).stdout == f"{sshd.user}\n"
    assert (await annex.run(["echo", "local"], timeout=5)).stdout == "local\n"


async def test_docker_endpoints(pool):
    annex = pool.docker("annex")
    assert isinstance(annex, DockerEndpoint) and pool.docker("annex") is annex
    assert (annex.host_name, annex.url, annex.timeout) == ("annex", "unix:///nonexistent/docker.sock", 5)
    with pytest.raises(TransportError) as e:
        pool.docker("science")
    assert str(e.value) == "science: docker: no docker endpoint configured (hosts.science.docker)"


async def test_unknown_host_and_transport(pool):
    with pytest.raises(TransportError, match=r"^starport: config: no such host \(hosts.starport is not configured\)$"):
        pool.transport("starport")
    odd = HostPool({"x": HostConfig(name="x", transport="telnet")}, command_timeout=5)
    with pytest.raises(TransportError, match="unknown transport 'telnet'"):
        odd.transport("x")


async def test_close_releases_everything_and_later_use_starts_afresh(pool):
    science = pool.transport("science")
    before = (await science.run(["sh", "-c", "echo $SSH_CONNECTION"], timeout=5)).stdout
    await pool.close()
    after = pool.transport("science")
    assert after is not science
    assert (await after.run(["sh", "-c", "echo $SSH_CONNECTION"], timeout=5)).stdout != before


def test_paramiko_and_docker_are_imported_lazily():
    code = "import sys, montagu_console.transports; print(sorted({'paramiko', 'docker'} & set(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    ).stdout
    assert out.strip() == "[]"
