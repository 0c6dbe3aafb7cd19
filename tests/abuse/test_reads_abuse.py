"""Reads that never end or never stop: huge output, FIFOs, /dev/zero (findings 3 and 19).

On the real lab: barman wrapped to print 200 MB, the nightly copy's timestamp file and the
starport's metadata (over the real sshd) replaced by a FIFO nobody writes to or a symlink to
``/dev/zero``. ``check`` ends in bounded time with UNKNOWN (exit 3), names the file in one line,
prints no traceback, and its memory stays bounded.
"""

from __future__ import annotations

import os
import pwd
import resource
import signal
import stat
import subprocess
import sys

import pytest

from tests.conftest import annex_barman, config_variant, run_check

pytestmark = pytest.mark.lab

BOUND = 60  # seconds: far beyond a check's own timeouts, far below "forever"


def test_barman_printing_200_mb_is_cut_and_memory_stays_bounded(lab_config, tmp_path):
    """Finding 19: 200 MB on barman's stdout: reading stops at the cap, UNKNOWN, RSS bounded."""
    script = tmp_path / "chatty-barman"
    script.write_text(
        '#!/bin/sh\ncase "$1" in --version) echo "3.19.1 Barman by EnterpriseDB";;\n'
        "*) head -c 200000000 /dev/zero | tr '\\0' '{';; esac\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    cfg = config_variant(lab_config, tmp_path, lambda c: annex_barman(c).update(command=[str(script)], container=None))
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    rc, doc, err = run_check(cfg, "--json", timeout=BOUND)
    max_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # Linux: KiB
    assert rc == 3 and err == "", (rc, err)
    for name in ("barman", "wal"):
        p = doc["panels"][name]
        assert p["status"] == "UNKNOWN" and "output larger than" in p["summary"], p
        assert "\n" not in p["summary"]
    # the largest child so far (this check, or an earlier smaller one) stayed far below 200 MB x 5 calls
    assert max_rss_mb < 300, f"max RSS of a child {max_rss_mb:.0f} MB (before: {before / 1024:.0f} MB)"


def _nightly_variant(lab_config, tmp_path, make):
    nightly = tmp_path / "nightly"
    nightly.mkdir()
    make(nightly / ".barman-last-restore")

    def edit(c):
        c["nightly"].pop("volume", None)
        c["nightly"]["path"] = str(nightly)

    return config_variant(lab_config, tmp_path, edit), nightly / ".barman-last-restore"


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_nightly_stamp_that_is_a_fifo_or_dev_zero(lab_config, tmp_path, kind):
    """Findings 3 and 19: a FIFO nobody writes to / a /dev/zero symlink as the nightly stamp."""
    make = os.mkfifo if kind == "fifo" else (lambda p: os.symlink("/dev/zero", p))
    cfg, stamp = _nightly_variant(lab_config, tmp_path, make)
    for args in (("--json",), ("--nagios",), ()):
        rc, out, err = run_check(cfg, *args, timeout=BOUND)  # raises TimeoutExpired if it hangs
        assert rc == 3 and "Traceback" not in err and "Traceback" not in str(out), (rc, out, err)
    rc, doc, _ = run_check(cfg, "--json", timeout=BOUND)
    starport = doc["panels"]["starport"]
    assert starport["status"] == "UNKNOWN"
    assert starport["summary"] == f"annex: read {stamp}: not a regular file"


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_starport_metadata_that_is_a_fifo_or_dev_zero_over_ssh(lab, lab_config, tmp_path, starport_copy, kind):
    """Findings 3 and 19: the same on the starport host, read over the real sshd (SFTP)."""
    meta = starport_copy / "barman_to_starport" / "meta" / "metadata.json"
    meta.unlink()
    os.mkfifo(meta) if kind == "fifo" else os.symlink("/dev/zero", meta)
    user = pwd.getpwnam(lab.sci_user)
    for dirpath, dirnames, filenames in os.walk(starport_copy):
        for name in [".", *dirnames, *filenames]:
            os.chown(os.path.join(dirpath, name), user.pw_uid, user.pw_gid, follow_symlinks=False)
    cfg = config_variant(lab_config, tmp_path, lambda c: c["starport"].update(path=str(starport_copy)))
    rc, doc, err = run_check(cfg, "--json", timeout=BOUND)
    starport = doc["panels"]["starport"]
    assert rc == 3 and "Traceback" not in err, (rc, err)
    assert starport["status"] == "UNKNOWN"
    assert starport["summary"] == f"starport: sftp {meta}: not a regular file"


CHILD = """
import asyncio, sys
from montagu_console.errors import TransportError
from montagu_console.transports.local import LocalTransport

async def main():
    t = LocalTransport("annex")
    calls = (t.read_file(sys.argv[1], timeout=2), t.run(["head", "-c", "10", sys.argv[1]], timeout=2))
    for call in calls:
        try:
            await call
        except TransportError as e:
            print(e)

asyncio.run(main())
"""


def test_a_read_that_never_returns_ends_at_the_timeout(tmp_path):
    """Finding 3: a FIFO whose writer opened it and then stopped: a reader waits forever, as on a
    hung NFS/sshfs mount. The regular-file check refuses it without opening it; a command that
    does read it is killed with its process group at the timeout; and the interpreter then exits
    at once (no thread is left blocked for ``asyncio.run`` to wait on at exit)."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    writer = subprocess.Popen(["sh", "-c", 'exec 3>"$1"; kill -STOP $$', "sh", str(fifo)])
    try:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(fifo)], capture_output=True, text=True, timeout=BOUND
        )  # raises TimeoutExpired if the read or the exit hangs
        assert done.returncode == 0 and done.stderr == "", done.stderr
        assert done.stdout.splitlines() == [
            f"annex: read {fifo}: not a regular file",
            f"annex: head -c 10 {fifo}: timed out after 2 s",
        ]
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=10)
