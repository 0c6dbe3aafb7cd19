"""DockerEndpoint against a real daemon (MONTAGU_TEST_DOCKER_URL) and against dead endpoints."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import socket
import subprocess
import tarfile
import time
import uuid
from datetime import UTC, datetime, timedelta

import docker
import pytest

from montagu_console.errors import TransportError
from montagu_console.transports import ContainerState, DockerEndpoint, FileMissing, LocalTransport, VolumeMount


def busybox_rootfs() -> bytes:
    """A tar of a minimal root file system: static busybox and its applet links."""
    applets = subprocess.run(["busybox", "--list"], capture_output=True, text=True, check=True).stdout.split()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d, mode in (("bin", 0o755), ("etc", 0o755), ("tmp", 0o1777)):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
        tar.add("/usr/bin/busybox", arcname="bin/busybox")
        for applet in applets:
            if applet != "busybox":
                link = tarfile.TarInfo(f"bin/{applet}")
                link.type, link.linkname = tarfile.SYMTYPE, "busybox"
                tar.addfile(link)
    return buf.getvalue()


class DockerLab:
    """Unique image, volume and containers created for this module."""

    def __init__(self, api: docker.APIClient):
        self.api = api
        tag = uuid.uuid4().hex[:10]
        self.image = f"montagu-test/bb:{tag}"
        self.volume = f"montagu-test-vol-{tag}"
        self.running = f"montagu-test-running-{tag}"
        self.exited = f"montagu-test-exited-{tag}"
        self.created = f"montagu-test-created-{tag}"

    def up(self) -> None:
        self.api.import_image_from_data(
            busybox_rootfs(),
            repository=self.image.split(":")[0],
            tag=self.image.split(":")[1],
            changes=['CMD ["/bin/sh"]'],
        )
        self.api.create_volume(self.volume)
        self._container(
            self.running,
            "/data",
            "echo hello > /tmp/probe.txt; ln -s probe.txt /tmp/link; head -c 5000 /dev/zero > /tmp/big;"
            " echo started; echo warn >&2; exec sleep 600",
            start=True,
        )
        self._container(self.exited, "/backup", "echo bye > /tmp/last.txt; echo one; echo two; exit 3", start=True)
        self._container(self.created, None, "true", start=False)
        self.api.wait(self.exited, timeout=20)
        deadline = time.monotonic() + 20
        while b"warn" not in self.api.logs(self.running):
            assert time.monotonic() < deadline, "test container did not start"
            time.sleep(0.05)

    def _container(self, name: str, mount: str | None, script: str, *, start: bool) -> None:
        binds = {self.volume: {"bind": mount, "mode": "rw"}} if mount else None
        self.api.create_container(
            self.image,
            ["sh", "-c", script],
            name=name,
            host_config=self.api.create_host_config(binds=binds, network_mode="none"),
        )
        if start:
            self.api.start(name)

    def down(self) -> None:
        for name in (self.running, self.exited, self.created):
            with contextlib.suppress(docker.errors.NotFound):
                self.api.remove_container(name, force=True)
        for remove in (
            lambda: self.api.remove_volume(self.volume, force=True),
            lambda: self.api.remove_image(self.image, force=True),
        ):
            with contextlib.suppress(docker.errors.NotFound):
                remove()


@pytest.fixture(scope="module")
def docker_url() -> str:
    """The daemon under test; read when first needed, so a session fixture may set it."""
    url = os.environ.get("MONTAGU_TEST_DOCKER_URL")
    if not url:
        pytest.skip("set MONTAGU_TEST_DOCKER_URL to a Docker daemon URL")
    return url


@pytest.fixture(scope="module")
def dlab(docker_url):
    """The module's image, volume and containers on the daemon under test."""
    api = docker.APIClient(base_url=docker_url, timeout=30)
    created = DockerLab(api)
    try:
        created.up()
        yield created
    finally:
        created.down()
        api.close()


@pytest.fixture
async def dock(docker_url):
    d = DockerEndpoint("annex", docker_url, timeout=5)
    yield d
    await d.close()


async def test_ping_and_volume_exists(dlab, dock):
    await dock.ping()
    assert await dock.volume_exists(dlab.volume) is True
    assert await dock.volume_exists(dlab.volume + "-nope") is False


async def test_state_of_running_exited_created_and_missing_containers(dlab, dock):
    now = datetime.now(UTC)
    running = await dock.container_state(dlab.running)
    assert isinstance(running, ContainerState)
    assert (running.name, running.status, running.running, running.exit_code, running.finished_at, running.image) == (
        dlab.running,
        "running",
        True,
        None,
        None,
        dlab.image,
    )
    assert now - timedelta(minutes=5) < running.started_at <= now + timedelta(seconds=5)

    exited = await dock.container_state(dlab.exited)
    assert (exited.status, exited.running, exited.exit_code) == ("exited", False, 3)
    # both set; Docker may stamp StartedAt a little after FinishedAt for a process that exits at once
    assert abs(exited.finished_at - exited.started_at) < timedelta(seconds=10)

    created = await dock.container_state(dlab.created)
    assert (created.status, created.running, created.exit_code, created.started_at, created.finished_at) == (
        "created",
        False,
        None,
        None,
        None,
    )

    assert await dock.container_state(dlab.running + "-nope") is None


async def test_logs_include_both_streams_and_honour_tail(dlab, dock):
    logs = await dock.container_logs(dlab.running)
    assert "started\n" in logs and "warn\n" in logs
    assert await dock.container_logs(dlab.exited, tail=1) == "two\n"
    with pytest.raises(TransportError, match="no such container"):
        await dock.container_logs(dlab.running + "-nope")


async def test_read_file_in_running_and_stopped_containers(dlab, dock):
    assert await dock.read_file_in_container(dlab.running, "/tmp/probe.txt") == "hello\n"
    assert await dock.read_file_in_container(dlab.running, "/tmp/link") == "hello\n"
    assert await dock.read_file_in_container(dlab.exited, "/tmp/last.txt") == "bye\n"


async def test_read_file_in_container_errors(dlab, dock):
    with pytest.raises(FileMissing) as e:
        await dock.read_file_in_container(dlab.exited, "/tmp/nope.txt")
    assert str(e.value) == f"annex: {dlab.exited}:/tmp/nope.txt: no such file"
    with pytest.raises(TransportError) as e:
        await dock.read_file_in_container(dlab.running, "/tmp")
    assert str(e.value) == f"annex: docker cp {dlab.running}:/tmp: is a directory"
    with pytest.raises(TransportError, match="file is 5000 bytes, more than 1000"):
        await dock.read_file_in_container(dlab.running, "/tmp/big", max_bytes=1000)
    with pytest.raises(TransportError, match="no such container"):
        await dock.read_file_in_container(dlab.running + "-nope", "/tmp/probe.txt")


async def test_containers_with_volume(dlab, dock):
    assert await dock.containers_with_volume(dlab.volume) == sorted(
        [
            VolumeMount(dlab.running, "/data", True),
            VolumeMount(dlab.exited, "/backup", False),
        ],
        key=lambda m: m.container,
    )
    assert await dock.containers_with_volume(dlab.volume + "-nope") == []


async def test_exec_output_exit_code_and_user(dlab, dock):
    r = await dock.exec(dlab.running, ["sh", "-c", 'echo o; echo "$0" >&2; exit 4', "two words"], timeout=10)
    assert (r.returncode, r.stdout, r.stderr) == (4, "o\n", "two words\n")
    assert (await dock.exec(dlab.running, ["id", "-u"], user="65534", timeout=10)).stdout == "65534\n"
    big = await dock.exec(dlab.running, ["sh", "-c", "head -c 200000 /dev/zero | tr '\\0' x"], timeout=10)
    assert big.stdout == "x" * 200000 and big.returncode == 0


async def test_exec_errors_and_timeout(dlab, dock):
    with pytest.raises(TransportError, match="is not running"):
        await dock.exec(dlab.exited, ["true"], timeout=5)
    with pytest.raises(TransportError, match="no such container"):
        await dock.exec(dlab.running + "-nope", ["true"], timeout=5)
    started = time.monotonic()
    with pytest.raises(TransportError) as e:
        await dock.exec(dlab.running, ["sleep", "30"], timeout=1)
    assert time.monotonic() - started < 15  # bounded: well before the command's own 30 s
    assert str(e.value) == f"annex: docker exec {dlab.running} sleep 30: timed out after 1 s"
    assert (await dock.exec(dlab.running, ["echo", "ok"], timeout=5)).stdout == "ok\n"


async def test_missing_socket_fails_fast():
    d = DockerEndpoint("annex", "unix:///nonexistent/docker.sock", timeout=5)
    started = time.monotonic()
    with pytest.raises(TransportError) as e:
        await d.container_state("x")
    assert time.monotonic() - started < 5  # at once, not at the 5 s timeout
    assert str(e.value) == "annex: docker unix:///nonexistent/docker.sock: daemon not reachable (no such socket)"
    await d.close()


async def test_stale_socket_is_connection_refused(tmp_path):
    path = tmp_path / "docker.sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))  # the file stays, nobody listens
    d = DockerEndpoint("annex", f"unix://{path}", timeout=5)
    with pytest.raises(TransportError) as e:
        await d.ping()
    assert str(e.value) == f"annex: docker unix://{path}: daemon not reachable (connection refused)"
    await d.close()


async def test_hung_daemon_times_out_without_blocking_others(tmp_path):
    path = tmp_path / "hung.sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))
        s.listen(16)  # accepts connections, never answers
        d = DockerEndpoint("annex", f"unix://{path}", timeout=1)
        local = LocalTransport("science")

        async def timed(coro):
            started = time.monotonic()
            try:
                return await coro, time.monotonic() - started
            except TransportError as e:
                return e, time.monotonic() - started

        (err, took), (ok, ok_took) = await asyncio.gather(timed(d.ping()), timed(local.run(["true"], timeout=5)))
        assert str(err) == f"annex: docker unix://{path}: daemon not reachable (no answer within 1 s)"
        assert took < 9  # bounded by the endpoint's 1 s timeout
        assert ok.returncode == 0 and ok_took < took  # the local call did not wait for the hung daemon
        await d.close()


# docker-py's own ssh:// support (paramiko), checked against the test sshd: no daemon needed.


def docker_ssh_url(sshd) -> str:
    return f"ssh://{sshd.user}@127.0.0.1:{sshd.port}"


async def test_docker_ssh_refuses_unknown_host_key(sshd, isolated_home):
    d = DockerEndpoint("annex", docker_ssh_url(sshd), timeout=5)
    with pytest.raises(TransportError) as e:
        await d.ping()
    assert str(e.value) == (
        f"annex: docker {docker_ssh_url(sshd)}: ssh host key not in ~/.ssh/known_hosts (refusing unknown host)"
    )
    assert not (isolated_home / ".ssh" / "known_hosts").exists()  # nothing was added
    await d.close()


async def test_docker_ssh_refuses_changed_host_key(sshd, isolated_home):
    (isolated_home / ".ssh").mkdir()
    (isolated_home / ".ssh" / "known_hosts").write_text(sshd.wrong_known_hosts.read_text())
    d = DockerEndpoint("annex", docker_ssh_url(sshd), timeout=5)
    with pytest.raises(TransportError, match="ssh host key mismatch"):
        await d.ping()
    await d.close()


async def test_docker_ssh_accepts_known_host_key(sshd, isolated_home):
    (isolated_home / ".ssh").mkdir()
    (isolated_home / ".ssh" / "known_hosts").write_text(sshd.known_hosts.read_text())
    (isolated_home / ".ssh" / "config").write_text(f"Host 127.0.0.1\n  IdentityFile {sshd.client_key}\n")
    log = sshd.dir / "sshd.log"
    accepted_before = log.read_text().count(f"Accepted publickey for {sshd.user}")
    d = DockerEndpoint("annex", docker_ssh_url(sshd), timeout=5)
    try:
        await d.ping()  # succeeds only if the test user may use a daemon on that host
    except TransportError as e:
        assert "host key" not in str(e)
    assert log.read_text().count(f"Accepted publickey for {sshd.user}") > accepted_before
    await d.close()


async def test_exec_output_past_the_cap_is_cut(dlab, dock, monkeypatch):
    """Finding 19: docker exec output stops at the cap (lowered here) instead of filling memory."""
    import montagu_console.transports.docker as docker_module

    monkeypatch.setattr(docker_module, "MAX_OUTPUT_BYTES", 100_000)
    monkeypatch.setattr(docker_module, "_EXEC_RAW_CAP", 2 * 100_000 + 64 * 1024)
    monkeypatch.setattr("montagu_console.transports.base.MAX_OUTPUT_BYTES", 100_000)
    r = await dock.exec(dlab.running, ["yes"], timeout=30)
    assert r.truncated and r.returncode == -1
    assert r.stdout.startswith("y\n") and r.stdout.endswith("[... truncated]") and len(r.stdout) < 110_000


async def test_exec_output_and_files_are_clean_text(dlab, dock):
    r = await dock.exec(dlab.running, ["printf", "a\\033]0;pwned\\007b\\377"], timeout=10)
    assert r.stdout == "a\ufffdb\ufffd"
    await dock.exec(dlab.running, ["sh", "-c", "printf 'x\\033[2J\\000y' > /tmp/hostile; mkfifo /tmp/fifo"], timeout=10)
    assert await dock.read_file_in_container(dlab.running, "/tmp/hostile") == "x\ufffd\ufffdy"
    with pytest.raises(TransportError, match="not a regular file"):
        await dock.read_file_in_container(dlab.running, "/tmp/fifo")
