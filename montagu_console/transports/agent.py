"""The console's end of the probe agent (:mod:`montagu_console.remote_agent`): one long-lived
channel per barman instance, instead of a ``docker exec`` or an SSH session per fact.

The agent is started through the host's transport as ``<exec prefix> python3 -c <agent source>``
(``docker exec`` gets ``-i`` so the channel has an input). Requests go one at a time; an answer
that does not come in time, or a channel that ends, closes the agent, and the next request starts
a new one. Everything it returns goes through the same boundary as a transport's output:
:func:`decode_output` (capped, cleaned) for program output, :func:`clean` for file text.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import inspect
import itertools
import json
from collections.abc import Sequence
from typing import Any

from .. import remote_agent
from ..errors import TransportError
from ..text import MAX_OUTPUT_BYTES, one_line
from .base import CommandResult, Pipe, Transport, decode_output

# one answer line at most: the biggest output, base64-encoded, plus the JSON around it
MAX_ANSWER_BYTES = 2 * (4 * MAX_OUTPUT_BYTES // 3 + 4096)


def agent_argv(prefix: Sequence[str], python: str = "python3") -> list[str]:
    """``prefix`` + python running the agent; a ``docker exec`` prefix gets ``-i`` (an open input)."""
    argv = list(prefix)
    if "exec" in argv and "docker" in (p.rsplit("/", 1)[-1] for p in argv[: argv.index("exec")]):
        at = argv.index("exec") + 1
        if "-i" not in argv[at:] and "--interactive" not in argv[at:]:
            argv.insert(at, "-i")
    return [*argv, python, "-c", inspect.getsource(remote_agent)]


class Agent:
    """One agent on one host, started on first use and restarted after a failure."""

    def __init__(self, host: Transport, argv: Sequence[str], what: str):
        self.host = host
        self.argv = list(argv)
        self.what = what  # how the operator knows it: "agent in barman-montagu on annex"
        self._pipe: Pipe | None = None
        self._lock = asyncio.Lock()
        self._ids = itertools.count(1)
        self.requests = 0  # answered requests (the bench reads it)

    async def request(self, op: str, *, wait: float, **fields: Any) -> dict:
        """Send one request and wait at most ``wait`` seconds for its answer; TransportError naming
        the host otherwise."""
        async with self._lock:
            raw = await self._exchange(op, wait, fields)
            rid = next(self._ids) - 1
            try:
                answer = json.loads(raw)
                if not isinstance(answer, dict) or answer.get("id") != rid:
                    raise ValueError("answer out of step")
            except ValueError as e:
                await self._reset()
                raise TransportError(self.host.name, f"{self.what}: {op}", f"unreadable answer ({e})") from None
            if "error" in answer:
                raise TransportError(self.host.name, f"{self.what}: {op}", one_line(str(answer["error"]), limit=300))
            self.requests += 1
            return answer

    async def _exchange(self, op: str, wait: float, fields: dict) -> bytes:
        """One request line out, its answer line back. A channel opened earlier that has ended
        since (the exec stream or SSH channel closed under it) is opened again and the request,
        a read, sent once more, so a dropped channel is not an UNKNOWN panel; a timeout is never
        retried (the host is slow or hung: saying so at once is the answer)."""
        for retry in (True, False):
            reused = self._pipe is not None
            try:
                if self._pipe is None:
                    self._pipe = await self.host.open_pipe(self.argv, timeout=wait)
                line = json.dumps({"op": op, "id": next(self._ids), **fields}).encode() + b"\n"
                await self._pipe.write_line(line, wait)
                return await self._pipe.read_line(MAX_ANSWER_BYTES, wait)
            except (TimeoutError, TransportError, OSError, ConnectionError) as e:
                await self._reset()
                timed_out = isinstance(e, TimeoutError) or "timed out" in getattr(e, "reason", "")
                if retry and reused and not timed_out:
                    continue
                reason = e.reason if isinstance(e, TransportError) else one_line(str(e) or type(e).__name__)
                raise TransportError(self.host.name, f"{self.what}: {op}", reason) from None
            except BaseException:
                await self._reset()  # cancelled mid-answer: the channel is out of step
                raise
        raise AssertionError("unreachable")

    async def run(self, op: str, argv: Sequence[str], *, timeout: float) -> CommandResult:
        """A program (``op="run"``) or barman (``op="barman"``, argv = barman's arguments) as a
        CommandResult, output capped and cleaned like a transport's."""
        key = "argv" if op == "run" else "args"
        fields = {key: list(argv), "timeout": timeout, "cap": MAX_OUTPUT_BYTES}
        answer = await self.request(op, wait=timeout + 5, **fields)
        shown = tuple(argv) if op == "run" else ("barman", *argv)
        if answer.get("timeout"):
            raise TransportError(self.host.name, " ".join(shown), f"timed out after {timeout:g} s")
        cut = bool(answer.get("cut"))
        rc = answer.get("rc")
        return CommandResult(
            shown,
            rc if isinstance(rc, int) else -1,
            decode_output(unb64(answer.get("out")), cut),
            decode_output(unb64(answer.get("err")), cut),
            float(answer.get("seconds") or 0),
            cut,
        )

    async def close(self) -> None:
        async with self._lock:
            await self._reset()

    async def _reset(self) -> None:
        pipe, self._pipe = self._pipe, None
        if pipe is not None:
            await pipe.close()


def unb64(value: Any, limit: int = MAX_OUTPUT_BYTES) -> bytes:
    """An answer's base64 field as at most ``limit`` bytes (nothing when it is not base64)."""
    if not isinstance(value, str):
        return b""
    try:
        return base64.b64decode(value, validate=True)[:limit]
    except (binascii.Error, ValueError):
        return b""
