"""LocalTransport with real subprocesses and files."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from montagu_console.errors import TransportError
from montagu_console.transports import FileMissing, LocalTransport

local = LocalTransport("annex")


def alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def test_run_returns_output_and_exit_status():
    r = await local.run(["sh", "-c", 'echo out; echo "$1" >&2; exit 4', "sh", "a b"], timeout=5)
    assert (r.returncode, r.stdout, r.stderr, r.argv) == (4, "out\n", "a b\n", ("sh", "-c", 'echo out; echo "$1" >&2; exit 4', "sh", "a b"))
    assert r.command_line == "sh -c 'echo out; echo \"$1\" >&2; exit 4' sh 'a b'"


async def test_run_passes_input():
    assert (await local.run(["cat"], input="piped\n", timeout=5)).stdout == "piped\n"


async def test_timeout_kills_the_whole_process_group(tmp_path):
    pids = tmp_path / "pids"
    started = time.monotonic()
    with pytest.raises(TransportError) as e:
        await local.run(["sh", "-c", f"sleep 30 & echo $! $$ > {pids}; sleep 30"], timeout=1)
    assert time.monotonic() - started < 1.5
    assert str(e.value) == f"annex: sh -c 'sleep 30 & echo $! $$ > {pids}; sleep 30': timed out after 1 s"
    background, shell = map(int, pids.read_text().split())
    deadline = time.monotonic() + 2
    while (alive(background) or alive(shell)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not alive(background) and not alive(shell)


async def test_timeout_when_a_child_keeps_the_pipe_open(tmp_path):
    # the shell exits at once, but its background child holds stdout
    with pytest.raises(TransportError, match="timed out after 0.5 s"):
        await local.run(["sh", "-c", "sleep 30 & exit 0"], timeout=0.5)


async def test_missing_command_is_reported():
    with pytest.raises(TransportError) as e:
        await local.run(["montagu-no-such-command", "--x"], timeout=5)
    assert str(e.value) == "annex: montagu-no-such-command --x: command not found"


async def test_read_file_expands_home_and_gives_clean_text(isolated_home):
    (isolated_home / "probe.txt").write_bytes(b"\x00\xffdata\x1b[2J")
    assert await local.read_file("~/probe.txt", timeout=5) == "\ufffd\ufffddata\ufffd"
    assert await local.read_file(str(isolated_home / "probe.txt"), timeout=5) == "\ufffd\ufffddata\ufffd"


async def test_read_missing_file_raises_file_missing():
    with pytest.raises(FileMissing) as e:
        await local.read_file("~/nope.txt", timeout=5)
    assert str(e.value) == "annex: ~/nope.txt: no such file"


async def test_read_directory_is_a_transport_error(tmp_path):
    with pytest.raises(TransportError) as e:
        await local.read_file(str(tmp_path), timeout=5)
    assert str(e.value) == f"annex: read {tmp_path}: is a directory"


async def test_close_is_harmless():
    await local.close()
    assert (await local.run(["true"], timeout=5)).returncode == 0
