"""LocalTransport with real subprocesses and files."""

from __future__ import annotations

import subprocess
import sys
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
    argv = ("sh", "-c", 'echo out; echo "$1" >&2; exit 4', "sh", "a b")
    assert (r.returncode, r.stdout, r.stderr, r.argv) == (4, "out\n", "a b\n", argv)
    assert r.command_line == "sh -c 'echo out; echo \"$1\" >&2; exit 4' sh 'a b'"


async def test_run_passes_input():
    assert (await local.run(["cat"], input="piped\n", timeout=5)).stdout == "piped\n"


async def test_timeout_kills_the_whole_process_group(tmp_path):
    pids = tmp_path / "pids"
    started = time.monotonic()
    with pytest.raises(TransportError) as e:
        await local.run(["sh", "-c", f"sleep 30 & echo $! $$ > {pids}; sleep 30"], timeout=1)
    assert time.monotonic() - started < 15  # bounded: well before the commands' own 30 s
    assert str(e.value) == f"annex: sh -c 'sleep 30 & echo $! $$ > {pids}; sleep 30': timed out after 1 s"
    background, shell = map(int, pids.read_text().split())
    deadline = time.monotonic() + 2
    while (alive(background) or alive(shell)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not alive(background) and not alive(shell)


async def test_timeout_when_a_child_keeps_the_pipe_open(tmp_path):
    # the shell exits at once, but its background child holds stdout
    with pytest.raises(TransportError, match=r"timed out after 0\.5 s"):
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


async def test_output_past_the_cap_is_cut_and_the_group_killed(monkeypatch):
    """Finding 19: reading stops at the cap (here lowered to 1 MB) and the command is killed."""
    import montagu_console.transports.local as local_module

    monkeypatch.setattr(local_module, "MAX_OUTPUT_BYTES", 1_000_000)
    monkeypatch.setattr("montagu_console.transports.base.MAX_OUTPUT_BYTES", 1_000_000)
    r = await local.run(["sh", "-c", "echo start >&2; yes; echo never >&2"], timeout=30)
    assert r.truncated and r.returncode < 0
    assert r.stdout.startswith("y\ny\n") and r.stdout.endswith("[... truncated]") and len(r.stdout) < 1_100_000
    assert r.stderr == "start\n"


async def test_output_is_clean_text():
    r = await local.run(["printf", "a\\033]0;pwned\\007b\\377\\033[2J\\r\\n"], timeout=5)
    assert r.stdout == "a\ufffdb\ufffd\ufffd\n" and not r.truncated


async def test_read_refuses_fifo_device_and_big_files(tmp_path):
    """Findings 3 and 19: non-regular files are refused unopened; a file past the limit is refused."""
    import os

    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "zero").symlink_to("/dev/zero")
    (tmp_path / "big").write_bytes(b"x" * 5000)
    for name in ("fifo", "zero"):
        with pytest.raises(TransportError) as e:
            await local.read_file(str(tmp_path / name), timeout=10)
        assert str(e.value) == f"annex: read {tmp_path / name}: not a regular file"
    with pytest.raises(TransportError) as e:
        await local.read_file(str(tmp_path / "big"), timeout=10, limit=1000)
    assert str(e.value) == f"annex: read {tmp_path / 'big'}: file is larger than 1000 bytes (not read)"
    assert await local.read_file(str(tmp_path / "big"), timeout=10, limit=5000) == "x" * 5000


async def test_read_paths_are_arguments_not_shell_text(tmp_path):
    odd = tmp_path / "a b; $(touch pwned) `x` \"'"
    odd.write_text("fine\n")
    assert await local.read_file(str(odd), timeout=5) == "fine\n"
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


# A program whose reader stopped early (output cut, a pipe closed with output unread) must not
# leave its pipe's transport open: it would outlive the event loop and say "Event loop is closed"
# on stderr at exit, as `check` once did after a barman that printed 200 MB.
_LEFT_OPEN = """
import asyncio, gc, sys
from montagu_console.transports import LocalTransport

def open_transports():
    gc.collect()
    return [t for t in gc.get_objects() if isinstance(t, asyncio.SubprocessTransport) and not t.is_closing()]

async def main():
    local = LocalTransport("annex")
    flood = "head -c 200000000 /dev/zero"
    pipe = await local.open_pipe(["sh", "-c", flood + "; sleep 60"], timeout=5)
    await asyncio.sleep(0.5)  # its output fills the pipe's buffer and asyncio pauses the pipe
    await pipe.close()
    for _ in range(10):
        assert (await local.run(["sh", "-c", flood + " | tr '\\\\0' x"], timeout=30)).truncated
    await asyncio.sleep(0.2)
    print(len(open_transports()))

asyncio.run(main())
gc.collect()
"""


def test_no_pipe_is_left_open_after_a_cut_or_a_close():
    r = subprocess.run([sys.executable, "-c", _LEFT_OPEN], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "0", r.stdout
    assert "Event loop is closed" not in r.stderr and "Exception ignored" not in r.stderr, r.stderr
