"""The lab tunnel's start: when a started ssh counts as exited, and which log lines name why."""

from __future__ import annotations

import subprocess
from pathlib import Path

from montagu_console.lab import tunnel
from montagu_console.lab.layout import Layout
from montagu_console.lab.proc import wait_for


def _layout(tmp_path: Path) -> Layout:
    lab = Layout(tmp_path)
    lab.tunnel_dir.mkdir(parents=True)
    return lab


def test_a_pidfile_created_but_not_yet_written_is_not_an_exit(tmp_path):
    lab = _layout(tmp_path)
    assert not tunnel.exited(lab)  # not recorded yet
    lab.tunnel_pidfile.write_text("")  # the shell has opened it, not written its pid
    assert not tunnel.exited(lab)


def test_a_recorded_pid_that_is_gone_is_an_exit(tmp_path):
    lab = _layout(tmp_path)
    done = subprocess.run(["/bin/sh", "-c", "echo $$"], capture_output=True, text=True, check=True)
    lab.tunnel_pidfile.write_text(done.stdout)
    assert tunnel.exited(lab)


def test_a_recorded_pid_that_lives_is_not_an_exit_even_mid_exec(tmp_path):
    lab = _layout(tmp_path)
    # right after the spawn its command line can still read empty (the exec under way):
    # alive all the same, as the tunnel's shell is while it becomes ssh
    live = subprocess.Popen(["/bin/sh", "-c", "sleep 30; :", "sh", str(lab.tunnel_key)])
    try:
        lab.tunnel_pidfile.write_text(f"{live.pid}\n")
        assert not tunnel.exited(lab)
        wait_for("the shell's command line", lambda: tunnel.tunnel_pid(lab), timeout=10)
        assert not tunnel.exited(lab)
    finally:
        live.kill()
        live.wait()
    assert tunnel.exited(lab) and not tunnel.tunnel_pid(lab)


def test_the_exit_reason_reads_only_what_ssh_wrote_since_the_latest_start(tmp_path):
    lab = _layout(tmp_path)
    lab.tunnel_log.write_text(
        "== tunnel started 2026-12-07T17:00:00+00:00\n"
        "channel 1: open failed: connect failed: Connection refused\n"
        "== tunnel started 2026-12-07T18:00:00+00:00\n"
        "bind [127.0.0.1]:55435: Address already in use\n"
    )
    assert tunnel._log_tail(lab) == "bind [127.0.0.1]:55435: Address already in use"
    lab.tunnel_log.write_text("old line\n== tunnel started 2026-12-07T18:00:00+00:00\n")
    assert tunnel._log_tail(lab) == "no output"
