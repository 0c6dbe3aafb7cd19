"""Room on the filesystem under the nightly copy, and the ``df``/``du`` output it is read from.

A nightly recover writes a whole new copy into the dump directory beside the old copy, so the
filesystem must hold two copies for a moment: a volume that cannot is a recover that fails at
03:00. One command reads it on the host or in the container where the copy is (a constant
script, the paths as arguments); the starport panel judges it (health.nightly_space_findings)
and the nightly recover's preflight refuses on the same rule.
"""

from __future__ import annotations

from ..config import NIGHTLY_DUMP_DIR
from ..errors import ProbeError
from ..snapshot import NightlySpace
from ..text import one_line
from . import ProbeContext

# $1 the copy's directory, $2 the dump directory's name: the filesystem's df line, the size
# of everything under $1, the size of the dump (0 when there is none).
SPACE_SCRIPT = (
    'cd -- "$1" || exit 2; df -Pk . | tail -n 1; du -sk .; if [ -d "$2" ]; then du -sk -- "$2"; else echo "0 none"; fi'
)


def df_free_bytes(output: str) -> int | None:
    """Free bytes from the last line of ``df -Pk`` output, None when it cannot be read."""
    try:
        return int(output.strip().splitlines()[-1].split()[3]) * 1024
    except (IndexError, ValueError):
        return None


def du_bytes(output: str) -> int | None:
    """Bytes from the first field of ``du -sk`` output, None when it cannot be read."""
    try:
        return int(output.strip().splitlines()[-1].split()[0]) * 1024
    except (IndexError, ValueError):
        return None


def parse_space(where: str, output: str) -> NightlySpace:
    """The three lines of :data:`SPACE_SCRIPT`; ValueError when they are not what it prints."""
    lines = output.strip().splitlines()
    if len(lines) != 3:
        raise ValueError(f"expected 3 lines (df, du, du of the dump), got {len(lines)}")
    free, total, dump = df_free_bytes(lines[0]), du_bytes(lines[1]), du_bytes(lines[2])
    if free is None or total is None or dump is None:
        raise ValueError("a size is not a number")
    return NightlySpace(where, free, max(total - dump, 0), dump)


async def probe_nightly_space(ctx: ProbeContext) -> NightlySpace:
    """The free space under the nightly copy, the copy's size and a leftover dump's, read in
    the container that mounts the volume (or on nightly.host for nightly.path)."""
    cfg = ctx.config.nightly
    if cfg.path:
        where, directory = cfg.path, cfg.path
        result = await ctx.pool.transport(cfg.host).run(
            ["sh", "-c", SPACE_SCRIPT, "sh", directory, NIGHTLY_DUMP_DIR], timeout=ctx.timeout
        )
        shown = f"{cfg.host}: df and du of {directory}"
    else:
        if not cfg.volume:
            raise ProbeError(f"{cfg.host}: neither nightly.path nor nightly.volume is set")
        where = f"volume {cfg.volume}"
        docker = ctx.pool.docker(cfg.host)
        mounts = await docker.containers_with_volume(cfg.volume)
        running = [m for m in mounts if m.running]
        if not running:
            raise ProbeError(
                f"{cfg.host}: no running container mounts volume {cfg.volume}, so its free space cannot be read"
            )
        mount = running[0]
        directory = mount.destination
        result = await docker.exec(
            mount.container, ["sh", "-c", SPACE_SCRIPT, "sh", directory, NIGHTLY_DUMP_DIR], timeout=ctx.timeout
        )
        shown = f"{cfg.host}: df and du of {directory} in {mount.container}"
    if result.returncode != 0:
        why = one_line(result.stderr or result.stdout, limit=120)
        raise ProbeError(f"{shown} failed (exit {result.returncode}): {why}")
    try:
        return parse_space(where, result.stdout)
    except ValueError as e:
        raise ProbeError(f"{shown}: unexpected output ({e}): {one_line(result.stdout, limit=120)}") from None
