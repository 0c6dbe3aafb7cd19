"""SSHTransport against a real sshd on loopback (see conftest.py)."""

from __future__ import annotations

import asyncio
import os
import socket
import time

import pytest

from montagu_console.errors import TransportError
from montagu_console.transports import FileMissing, LocalTransport, SSHTransport


@pytest.fixture
async def ssh(sshd):
    t = SSHTransport(sshd.config())
    yield t
    await t.close()


@pytest.fixture
def blackhole():
    """A port that accepts TCP connections but never says anything (a hung host)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield s.getsockname()[1]


async def test_run_returns_output_and_exit_status(ssh, sshd):
    r = await ssh.run(["sh", "-c", 'id -un; echo "$1" >&2; exit 3', "sh", "it's quoted; $HOME"], timeout=5)
    assert (r.returncode, r.stdout, r.stderr) == (3, f"{sshd.user}\n", "it's quoted; $HOME\n")
    assert r.argv[0] == "sh" and r.seconds > 0


async def test_run_passes_input_and_reads_both_large_streams(ssh):
    r = await ssh.run(
        ["sh", "-c", "cat; head -c 300000 /dev/zero | tr '\\0' e >&2; head -c 300000 /dev/zero"],
        input="from stdin\n",
        timeout=10,
    )
    assert r.returncode == 0
    assert r.stdout.startswith("from stdin\n") and len(r.stdout) == 11 + 300000
    assert r.stderr == "e" * 300000


async def test_read_file_relative_to_home_and_absolute(ssh, remote_dir):
    path, tilde = remote_dir
    (path / "probe.txt").write_bytes(b"hello\x00bytes\n")
    assert await ssh.read_file(f"{tilde}/probe.txt", timeout=5) == "hello\ufffdbytes\n"
    assert await ssh.read_file(str(path / "probe.txt"), timeout=5) == "hello\ufffdbytes\n"


async def test_read_missing_file_raises_file_missing(ssh, remote_dir):
    _, tilde = remote_dir
    with pytest.raises(FileMissing) as e:
        await ssh.read_file(f"{tilde}/nope.txt", timeout=5)
    assert str(e.value) == f"science: {tilde}/nope.txt: no such file"


async def test_one_connection_is_reused_for_many_calls(ssh, remote_dir):
    _, tilde = remote_dir
    first = (await ssh.run(["sh", "-c", "echo $SSH_CONNECTION"], timeout=5)).stdout
    together = await asyncio.gather(*(ssh.run(["sh", "-c", "echo $SSH_CONNECTION"], timeout=10) for _ in range(20)))
    with pytest.raises(FileMissing):
        await ssh.read_file(f"{tilde}/x", timeout=5)
    last = (await ssh.run(["sh", "-c", "echo $SSH_CONNECTION"], timeout=5)).stdout
    assert first.strip() and {r.stdout for r in together} == {first} and last == first


async def test_command_timeout_is_enforced_and_connection_survives(ssh):
    await ssh.run(["true"], timeout=5)  # connected
    started = time.monotonic()
    with pytest.raises(TransportError) as e:
        await ssh.run(["sleep", "30"], timeout=1)
    assert time.monotonic() - started < 15  # bounded: well before the command's own 30 s
    assert str(e.value) == "science: sleep 30: timed out after 1 s"
    assert (await ssh.run(["echo", "still here"], timeout=5)).stdout == "still here\n"


async def test_unknown_host_key_is_rejected_and_not_added(sshd):
    t = SSHTransport(sshd.config(known_hosts=str(sshd.empty_known_hosts)))
    with pytest.raises(TransportError) as e:
        await t.run(["true"], timeout=5)
    assert str(e.value) == (
        f"science: ssh {sshd.user}@127.0.0.1:{sshd.port}: host key not in "
        f"{sshd.empty_known_hosts} (refusing unknown host)"
    )
    assert sshd.empty_known_hosts.read_text() == ""
    await t.close()


async def test_changed_host_key_is_rejected(sshd):
    t = SSHTransport(sshd.config(known_hosts=str(sshd.wrong_known_hosts)))
    with pytest.raises(TransportError) as e:
        await t.run(["true"], timeout=5)
    msg = str(e.value)
    assert msg.startswith(
        f"science: ssh {sshd.user}@127.0.0.1:{sshd.port}: host key mismatch: server sent ssh-ed25519 SHA256:"
    )
    assert "possible man-in-the-middle" in msg
    await t.close()


async def test_wrong_client_key_fails_authentication(sshd):
    t = SSHTransport(sshd.config(key_file=str(sshd.other_key)))
    with pytest.raises(TransportError) as e:
        await t.run(["true"], timeout=5)
    assert str(e.value) == (
        f"science: ssh {sshd.user}@127.0.0.1:{sshd.port}: authentication failed (tried {sshd.other_key})"
    )
    assert "PRIVATE KEY" not in str(e.value)
    await t.close()


async def test_connection_refused_is_quick(sshd, closed_port):
    port = closed_port
    t = SSHTransport(sshd.config(port=port))
    started = time.monotonic()
    with pytest.raises(TransportError) as e:
        await t.run(["true"], timeout=5)
    assert time.monotonic() - started < 5  # refused, not waited out to the timeout
    assert str(e.value) == f"science: ssh {sshd.user}@127.0.0.1:{port}: connection refused"
    await t.close()


async def test_hung_host_times_out_without_blocking_other_calls(sshd, ssh, blackhole):
    hung = SSHTransport(sshd.config(name="starport", port=blackhole, connect_timeout=1.5))
    local = LocalTransport("annex")
    await ssh.run(["true"], timeout=5)  # the healthy host is connected already
    gaps = []

    async def ticker():
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.02)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    async def timed(coro):
        started = time.monotonic()
        try:
            return await coro, time.monotonic() - started
        except TransportError as e:
            return e, time.monotonic() - started

    tick = asyncio.create_task(ticker())
    results = await asyncio.gather(
        timed(hung.run(["true"], timeout=10)),
        timed(hung.read_file("~/x", timeout=10)),  # shares the one connect attempt
        *(timed(ssh.run(["echo", "ok"], timeout=5)) for _ in range(5)),
        timed(local.run(["echo", "ok"], timeout=5)),
    )
    tick.cancel()
    (e1, t1), (e2, t2), *healthy = results
    for err, took in ((e1, t1), (e2, t2)):
        assert isinstance(err, TransportError)
        assert str(err) == f"starport: ssh {sshd.user}@127.0.0.1:{blackhole}: timed out after 1.5 s (no SSH handshake)"
        assert took < 9  # the connect timeout, not the call's 10 s
    for result, _ in healthy:
        assert result.stdout == "ok\n"
    # the healthy calls did not wait for the hung connect, and the event loop was never blocked by it
    assert max(took for _, took in healthy) < min(t1, t2)
    assert max(gaps) < min(t1, t2)  # no tick waited as long as the hung connect did
    await hung.close()


async def test_call_timeout_bounds_a_slower_connect(sshd, blackhole):
    hung = SSHTransport(sshd.config(port=blackhole, connect_timeout=10))
    started = time.monotonic()
    with pytest.raises(TransportError, match="timed out after 1 s"):
        await hung.run(["true"], timeout=1)
    assert time.monotonic() - started < 9  # the call's timeout, not the 10 s connect timeout
    await hung.close()


async def test_reconnects_after_sshd_restart(ssh, sshd):
    before = (await ssh.run(["sh", "-c", "echo $SSH_CONNECTION"], timeout=5)).stdout
    sshd.stop()
    sshd.start()
    after = (await ssh.run(["sh", "-c", "echo $SSH_CONNECTION"], timeout=5)).stdout
    assert after.strip() and after != before


async def test_ssh_config_supplies_hostname_port_user_and_identity(sshd, isolated_home, closed_port):
    (isolated_home / ".ssh").mkdir()
    (isolated_home / ".ssh" / "config").write_text(
        f"Host science-alias\n  HostName 127.0.0.1\n  Port {sshd.port}\n  User {sshd.user}\n"
        f"  IdentityFile {sshd.client_key}\n"
    )
    (isolated_home / ".ssh" / "known_hosts").write_text(sshd.known_hosts.read_text())
    t = SSHTransport(sshd.config(host="science-alias", port=None, user=None, key_file=None, known_hosts=None))
    assert t.target == f"ssh {sshd.user}@127.0.0.1:{sshd.port}"
    assert (await t.run(["id", "-un"], timeout=5)).stdout == f"{sshd.user}\n"
    await t.close()
    explicit = SSHTransport(sshd.config(host="science-alias", port=closed_port, known_hosts=None))
    with pytest.raises(TransportError, match="connection refused"):  # the explicit port wins
        await explicit.run(["true"], timeout=5)
    await explicit.close()


async def test_missing_key_file_is_named(sshd):
    t = SSHTransport(sshd.config(key_file="/nonexistent/key"))
    with pytest.raises(TransportError) as e:
        await t.run(["true"], timeout=5)
    assert str(e.value).endswith(": key file /nonexistent/key does not exist")
    await t.close()


async def test_output_past_the_cap_is_cut(ssh, monkeypatch):
    """Finding 19: over SSH too, reading stops at the cap (lowered to 1 MB here) and the channel closes."""
    import montagu_console.transports.ssh as ssh_module

    monkeypatch.setattr(ssh_module, "MAX_OUTPUT_BYTES", 1_000_000)
    monkeypatch.setattr("montagu_console.transports.base.MAX_OUTPUT_BYTES", 1_000_000)
    r = await ssh.run(["yes"], timeout=30)
    assert r.truncated and r.returncode == -1 and len(r.stdout) < 1_100_000
    assert r.stdout.endswith("[... truncated]")
    assert (await ssh.run(["echo", "still here"], timeout=5)).stdout == "still here\n"


async def test_read_refuses_fifo_device_and_big_files_over_sftp(ssh, remote_dir):
    """Findings 3 and 19: SFTP reads stat first: FIFOs and devices are never opened."""
    path, tilde = remote_dir
    os.mkfifo(path / "fifo")
    (path / "zero").symlink_to("/dev/zero")
    (path / "big").write_bytes(b"\x1b[2Jx" * 1000)
    for name in ("fifo", "zero"):
        with pytest.raises(TransportError) as e:
            await ssh.read_file(f"{tilde}/{name}", timeout=10)
        assert str(e.value) == f"science: sftp {tilde}/{name}: not a regular file"
    with pytest.raises(TransportError, match="is a directory"):
        await ssh.read_file(tilde, timeout=10)
    with pytest.raises(TransportError, match="file is larger than 1000 bytes"):
        await ssh.read_file(f"{tilde}/big", timeout=10, limit=1000)
    assert await ssh.read_file(f"{tilde}/big", timeout=10) == "\ufffdx" * 1000
