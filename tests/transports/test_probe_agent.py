"""The probe agent over a real pipe: the remote program (montagu_console.remote_agent) started by
the local transport exactly as it is started beside barman, and the console's end of it."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from montagu_console.errors import TransportError
from montagu_console.text import MAX_OUTPUT_BYTES
from montagu_console.transports.agent import Agent, agent_argv
from montagu_console.transports.local import LocalTransport


def agent() -> Agent:
    return Agent(LocalTransport("here"), agent_argv([], python=sys.executable), "probe agent (local)")


def run(coro):
    return asyncio.run(coro)


def test_docker_exec_prefixes_get_an_open_input():
    argv = agent_argv(["docker", "-H", "unix:///x.sock", "exec", "barman-montagu"])
    assert argv[:6] == ["docker", "-H", "unix:///x.sock", "exec", "-i", "barman-montagu"]
    assert argv[6:8] == ["python3", "-c"] and "def serve(" in argv[8]
    assert agent_argv(["/usr/bin/docker", "exec", "-i", "b"])[:4] == ["/usr/bin/docker", "exec", "-i", "b"]
    assert agent_argv(["sudo", "-u", "barman"])[:3] == ["sudo", "-u", "barman"]


def test_programs_run_without_a_shell_and_their_output_is_cleaned():
    async def go():
        a = agent()
        try:
            r = await a.run("run", ["printf", "%s\\n", "$(id) \x1b]0;title\x07 ; rm -rf /"], timeout=10)
            missing = await a.run("run", ["/no/such/program"], timeout=10)
            return r, missing
        finally:
            await a.close()

    r, missing = run(go())
    assert r.returncode == 0 and r.stdout.startswith("$(id) ") and "; rm -rf /" in r.stdout
    assert "\x1b" not in r.stdout and "\x07" not in r.stdout
    assert missing.returncode == 127 and "cannot start /no/such/program" in missing.stderr


def test_output_is_capped_and_a_hung_program_times_out_and_the_agent_goes_on():
    async def go():
        a = agent()
        try:
            big = await a.run("run", ["head", "-c", str(MAX_OUTPUT_BYTES * 2), "/dev/zero"], timeout=30)
            with pytest.raises(TransportError, match="timed out after 1 s"):
                await a.run("run", ["sleep", "30"], timeout=1)
            after = await a.run("run", ["echo", "still here"], timeout=10)
            return big, after
        finally:
            await a.close()

    big, after = run(go())
    assert big.truncated and len(big.stdout) <= MAX_OUTPUT_BYTES + 100
    assert after.stdout == "still here\n"


def test_processes_are_found_by_their_argv_which_never_leaves_the_agent():
    async def go():
        sleeper = await asyncio.create_subprocess_exec("sh", "-c", "sleep 30", "password=s3cret-marker")
        a = agent()
        try:
            found = await a.request("procs", wait=10, needles=["sleep", "s3cret-marker"])
            none = await a.request("procs", wait=10, needles=["sleep", "no-such-marker-anywhere"])
            return sleeper.pid, found, none
        finally:
            sleeper.kill()
            await sleeper.wait()
            await a.close()

    pid, found, none = run(go())
    assert pid in found["pids"] and none["pids"] == []
    assert "s3cret" not in repr(found)


def test_files_are_stat_listed_and_tailed(tmp_path):
    (tmp_path / "base" / "20261202T133551").mkdir(parents=True)
    (tmp_path / "base" / "20261202T133551" / "backup.info").write_text("status=DONE\n")
    log = tmp_path / "xlog.db"
    log.write_bytes(b"x" * 10000 + b"\nlast line\n")

    async def go():
        a = agent()
        try:
            st = await a.request("stat", wait=10, paths=[str(log), str(tmp_path / "nope")])
            ls = await a.request("list", wait=10, dir=str(tmp_path / "base"), child="backup.info")
            tail = await a.request("tail", wait=10, path=str(log), bytes=20)
            with pytest.raises(TransportError, match="No such file or directory"):
                await a.request("tail", wait=10, path=str(tmp_path / "nope"))
            return st, ls, tail
        finally:
            await a.close()

    st, ls, tail = run(go())
    assert st["stat"][0][0] == 10011 and st["stat"][1] is None
    assert ls["entries"][0][0] == "20261202T133551" and isinstance(ls["entries"][0][1], float)
    assert tail["size"] == 10011 and tail["data"]


def test_barman_runs_inside_the_agent_and_keeps_each_call_apart():
    """barman's CLI in the agent's process (the project's barman): one call's output never leaks
    into the next (a closed JSON writer used to print "{}" ahead of the next call)."""

    async def go():
        a = agent()
        try:
            first = await a.run("barman", ["--version"], timeout=30)
            second = await a.run("barman", ["-f", "json", "--version"], timeout=30)
            return first, second
        finally:
            await a.close()

    first, second = run(go())
    assert first.returncode == 0 and "Barman" in first.stdout
    assert second.returncode == 0 and not second.stdout.startswith("{}")


def test_a_dead_agent_is_replaced_within_the_request_and_one_that_cannot_start_is_one_line():
    """The channel ending under the console (the agent killed, a docker exec stream closed) is not
    an UNKNOWN panel: the request is sent once more on a new agent. An agent that cannot start
    at all is one line naming the host and the request."""

    async def pids(a):
        found = await a.request("procs", wait=10, needles=["def serve(", "-c"])
        return [p for p in found["pids"] if p != os.getpid()]

    async def go():
        a = agent()
        try:
            await a.request("stat", wait=10, paths=["/"])
            before = await pids(a)
            for p in before:
                os.kill(p, 9)
            await asyncio.sleep(0.2)
            again = await a.request("stat", wait=10, paths=["/"])
            after = await pids(a)
        finally:
            await a.close()
        broken = Agent(LocalTransport("here"), ["/nonexistent/python3", "-c", "pass"], "probe agent (local)")
        with pytest.raises(TransportError) as e:
            await broken.request("stat", wait=10, paths=["/"])
        await broken.close()
        return before, again, after, str(e.value)

    before, again, after, message = run(go())
    assert again["stat"][0][2] is True and before and after and not set(before) & set(after)
    assert message.startswith("here: probe agent (local): stat: ") and "\n" not in message


def test_an_unknown_request_is_answered_with_an_error():
    async def go():
        a = agent()
        try:
            with pytest.raises(TransportError, match="KeyError"):
                await a.request("format-disk", wait=10)
            return await a.request("stat", wait=10, paths=["/"])
        finally:
            await a.close()

    assert run(go())["stat"][0] is not None
