"""The probe agent: one long-lived Python process where barman runs, answering the console's probes.

The console starts it once per host (``python3 -c <this file's text>`` through barman's exec
prefix, e.g. ``docker exec -i barman-montagu``) and keeps the channel open, so a refresh costs
the watched host a few system calls instead of a ``docker exec`` or an SSH session per fact.
Requests and answers are JSON lines; data (argv, paths) only ever travels inside them, never in
a shell string. Standard library only, Python 3.7 or later: it runs in barman's own environment.

Operations:
  run     argv, timeout, cap -> rc, out, err (base64), cut: a program, no shell, output capped
  barman  args, timeout, cap -> as run: barman's CLI inside this process (its imports stay warm),
          or a barman subprocess where barman cannot be imported here
  stat    paths -> [size, mtime, is_dir] or null for each
  tail    path, bytes -> the file's last bytes (base64) and its size, mtime
  list    dir, child -> entry names with the mtime of each (or of each entry's ``child`` file)
  procs   needles -> the pids of processes whose argv holds every needle (never the argv)
The agent exits when its input ends (the console went away).
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

MAX_CAP = 16 * 1024 * 1024
MAX_PROCS = 64
MAX_ENTRIES = 1000


def _b64(data):
    return base64.b64encode(data).decode("ascii")


def _read_capped(stream, cap, box):
    data = stream.read(cap + 1)
    box.append(data)
    # drain the rest so the child never blocks on a full pipe
    while stream.read(65536):
        pass


def op_run(req):
    argv = [str(a) for a in req["argv"]]
    cap = min(int(req.get("cap", MAX_CAP)), MAX_CAP)
    timeout = float(req.get("timeout", 30))
    try:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
        )
    except OSError as e:
        return {"rc": 127, "out": "", "err": _b64((f"cannot start {argv[0]}: {e.strerror}").encode()), "cut": False}
    out: list[bytes] = []
    err: list[bytes] = []
    readers = [
        threading.Thread(target=_read_capped, args=(proc.stdout, cap, out), daemon=True),
        threading.Thread(target=_read_capped, args=(proc.stderr, cap, err), daemon=True),
    ]
    for t in readers:
        t.start()
    try:
        rc = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return {"rc": None, "out": "", "err": "", "cut": False, "timeout": True}
    for t in readers:
        t.join(5)
    return _answer(rc, out[0] if out else b"", err[0] if err else b"", cap)


def _answer(rc: int, out: bytes, err: bytes, cap: int) -> dict:
    return {"rc": rc, "out": _b64(out[:cap]), "err": _b64(err[:cap]), "cut": len(out) > cap or len(err) > cap}


_BARMAN: dict[str, Any] = {}


def op_barman(req):
    """barman's CLI in this process when it imports here (saves an interpreter and its imports per
    call), else a subprocess of ``barman``."""
    if "cli" not in _BARMAN:
        try:
            import barman.cli  # type: ignore[import-untyped]
            import barman.output  # type: ignore[import-untyped]

            _BARMAN["cli"] = (barman.cli, barman.output)
        except Exception:
            _BARMAN["cli"] = None
    if _BARMAN["cli"] is None:
        return op_run(dict(req, argv=["barman"] + list(req["args"])))
    cli, output = _BARMAN["cli"]
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    out, err = io.StringIO(), io.StringIO()
    saved_argv = sys.argv
    sys.argv = ["barman"] + [str(a) for a in req["args"]]
    rc = 0
    # a fresh writer: set_output_writer closes the one there, and a closed JSON writer prints "{}"
    output._writer = output.AVAILABLE_WRITERS[output.DEFAULT_WRITER]()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                cli.main()
            except SystemExit as e:
                rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except Exception as e:  # barman's own bug: report it like a failed command
        rc, err = 1, io.StringIO(f"barman failed inside the probe agent: {type(e).__name__}: {e}")
    finally:
        sys.argv = saved_argv
        output.error_occurred = False
        for h in root.handlers[:]:
            if h not in handlers:
                root.removeHandler(h)
                with contextlib.suppress(Exception):
                    h.close()
        root.setLevel(level)
    cap = min(int(req.get("cap", MAX_CAP)), MAX_CAP)
    return _answer(rc, out.getvalue().encode("utf-8", "replace"), err.getvalue().encode("utf-8", "replace"), cap)


def op_stat(req):
    found: list[list | None] = []
    for path in req["paths"]:
        try:
            st = os.stat(str(path))
            found.append([st.st_size, st.st_mtime, os.path.isdir(str(path))])
        except OSError:
            found.append(None)
    return {"stat": found}


def op_tail(req):
    path, want = str(req["path"]), min(int(req.get("bytes", 4096)), 1024 * 1024)
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            f.seek(max(0, st.st_size - want))
            return {"data": _b64(f.read(want)), "size": st.st_size, "mtime": st.st_mtime}
    except OSError as e:
        return {"error": e.strerror or str(e)}


def op_procs(req):
    """The pids of processes whose argv holds every one of ``needles`` (command lines can carry
    conninfo: they never leave this process)."""
    needles = [str(n).encode() for n in req["needles"]]
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read(65536).split(b"\0")
        except OSError:
            continue
        if all(any(n in a for a in args) for n in needles):
            pids.append(int(pid))
            if len(pids) >= MAX_PROCS:
                break
    return {"pids": pids}


def op_list(req):
    """A directory's entry names (sorted, capped) with the mtime of each (of ``<entry>/<child>``
    when ``child`` is given)."""
    path, child = str(req["dir"]), req.get("child")
    try:
        names = sorted(os.listdir(path))[-MAX_ENTRIES:]
    except OSError as e:
        return {"error": e.strerror or str(e)}
    entries = []
    for name in names:
        mtime = None
        with contextlib.suppress(OSError):
            mtime = os.stat(os.path.join(path, name, str(child)) if child else os.path.join(path, name)).st_mtime
        entries.append([name, mtime])
    return {"entries": entries}


OPS = {"run": op_run, "barman": op_barman, "stat": op_stat, "tail": op_tail, "procs": op_procs, "list": op_list}


def serve(stdin, stdout):
    """Answer one JSON request per line until the input ends."""
    for line in stdin:
        started = time.time()
        req = {}
        try:
            req = json.loads(line)
            answer = OPS[req["op"]](req)
        except Exception as e:
            answer = {"error": f"{type(e).__name__}: {e}"}
        answer["id"] = req.get("id") if isinstance(req, dict) else None
        answer["seconds"] = round(time.time() - started, 4)
        stdout.write(json.dumps(answer) + "\n")
        stdout.flush()


if __name__ == "__main__":
    serve(sys.stdin, sys.stdout)
