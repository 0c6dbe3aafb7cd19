"""Probe for the starport panel: the nightly copy's timestamp and bb8's metadata per target.

Files are read through the transports (bounded, killable, regular files only) and arrive as
clean text; bb8's JSON is decoded with :func:`montagu_console.text.clean_json`, so the strings
inside it are clean too.
"""

from __future__ import annotations

import asyncio
import posixpath

from ..clock import parse_iso
from ..errors import ConsoleError, ProbeError
from ..snapshot import StarportFacts, StarportTarget
from ..text import clean_json, one_line
from ..transports.base import FileMissing
from . import ProbeContext
from .proofs import with_proofs
from .runs_state import last_run
from .space import probe_nightly_space

SHOWN = 60  # characters of an unreadable file quoted in a panel's reason


async def read_nightly_timestamp(ctx: ProbeContext) -> str:
    """The text of the nightly copy's timestamp file, from its volume or its directory."""
    cfg = ctx.config.nightly
    if cfg.path:
        path = posixpath.join(cfg.path, cfg.timestamp_file)
        return await ctx.pool.transport(cfg.host).read_file(path, timeout=ctx.timeout)
    if not cfg.volume:
        raise ProbeError(f"{cfg.host}: neither nightly.path nor nightly.volume is set")
    docker = ctx.pool.docker(cfg.host)
    mounts = await docker.containers_with_volume(cfg.volume)
    if not mounts:
        raise ProbeError(
            f"{cfg.host}: no container mounts volume {cfg.volume}, so its "
            f"{cfg.timestamp_file} cannot be read (or set nightly.path)"
        )
    mount = sorted(mounts, key=lambda m: not m.running)[0]
    return await docker.read_file_in_container(mount.container, posixpath.join(mount.destination, cfg.timestamp_file))


async def probe_nightly(ctx: ProbeContext):
    """(restored_at, error): the nightly copy's ``.barman-last-restore``, or why it is unusable."""
    cfg = ctx.config.nightly
    where = f"volume {cfg.volume}" if cfg.volume else cfg.path
    try:
        text = await read_nightly_timestamp(ctx)
    except FileMissing:
        return None, f"{cfg.timestamp_file} missing in {where} (the copy is not usable)"
    try:
        return parse_iso(text), None
    except ValueError:
        return None, f"unreadable {cfg.timestamp_file} in {where}: {one_line(text, limit=SHOWN)!r}"


async def probe_target(ctx: ProbeContext, name: str) -> StarportTarget:
    """One bb8 target: ``<path>/<name>/meta/metadata.json`` and the timestamp carried in its data."""
    cfg = ctx.config.starport
    transport = ctx.pool.transport(cfg.host)
    meta_path = posixpath.join(cfg.path, name, "meta", "metadata.json")
    carried_path = posixpath.join(cfg.path, name, "data", cfg.volume, ctx.config.nightly.timestamp_file)
    try:
        text = await transport.read_file(meta_path, timeout=ctx.timeout)
    except FileMissing:
        return StarportTarget(name, None, f"{meta_path} missing (never backed up, or metadata lost)")
    try:
        meta = clean_json(text)
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
        last = meta.get("last_backup")
        if last is not None and not isinstance(last, str):
            raise ValueError("last_backup is not a string")
        last_backup = parse_iso(last) if last else None
    except ValueError:
        return StarportTarget(name, None, f"{meta_path} is corrupt: {one_line(text, limit=SHOWN)!r}")
    try:
        carried = parse_iso(await transport.read_file(carried_path, timeout=ctx.timeout))
    except (FileMissing, ValueError):
        carried = None
    return StarportTarget(name, last_backup, None, carried)


async def probe_starport(ctx: ProbeContext) -> StarportFacts:
    """The nightly copy and every configured starport target, read concurrently.

    In the tiered mode (the TUI) they are read again only when a nightly recover starts or ends,
    or every FULL_EVERY_SECONDS (probes.cadence): the copy changes once a night. Its proofs
    (state_dir/proofs.jsonl, local) are read every time."""
    nightly_run = last_run(ctx.config.state_dir, ("nightly-recover",))
    signature = nightly_run and (nightly_run.get("id"), nightly_run.get("state"))
    facts = await ctx.in_tiers("starport", signature, lambda: _read(ctx))
    return with_proofs(facts, ctx.config.state_dir)


async def _read(ctx: ProbeContext) -> StarportFacts:
    (restored_at, error), (space, space_error), *targets = await asyncio.gather(
        probe_nightly(ctx), _space(ctx), *(probe_target(ctx, t) for t in ctx.config.starport.targets)
    )
    return StarportFacts(restored_at, error, tuple(targets), space=space, space_error=space_error)


async def _space(ctx: ProbeContext):
    """(space, error): the room under the nightly copy, or why it could not be read (the copy's
    own facts still stand, so this is one finding, not an UNKNOWN panel)."""
    try:
        return await probe_nightly_space(ctx), None
    except ConsoleError as e:
        return None, str(e)
