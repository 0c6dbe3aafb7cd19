"""A grown lab for the benchmarks: more base backups and thousands of archived WAL files.

The estate's barman holds several base backups and months of WAL; barman's commands cost more
as those grow, so the probe benchmarks run on a lab grown to that shape. The bench lab is a
second lab (its own directory and ports, so the shared lab of the tests is untouched) whose
primary is initialised with 1 MB WAL segments: 5,000 segments of 16 MB would push 160 GB through
the disk for the two barmans, 1 MB ones 10 GB at most, and barman's ``compression = gzip``
keeps what stays small.

Growing is idempotent and resumable: it counts what is there first (DONE backups from
``barman list-backup``, WAL files in barman's ``wals/`` folders) and adds only what is missing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import barman_setup, postgres
from .builder import lab_up, print_to_stderr
from .handle import Lab
from .layout import BARMAN_SERVER, BarmanSite, LabPorts
from .proc import LabError, wait_for

BENCH_LAB_DIR = Path(os.environ.get("MONTAGU_BENCH_LAB_DIR", "/srv/montagu-lab-bench"))
# apart from the shared lab (55432.., 2222) and the smoke test's lab (56432.., 2322): both may run beside it
BENCH_PORTS = LabPorts(primary=55532, science=55533, replay=55534, ssh=2522, tunnel=55535, aws_ssh=2523)
BENCH_WAL_SEGSIZE_MB = 1
WAL_NAME = re.compile(r"^[0-9A-F]{24}$")
SWITCH_BATCH = 250  # segments switched per psql call
MAX_BACKLOG = 500  # completed segments waiting in streaming/ before the next batch
SPARE_BYTES = 2 * 1024**3  # free space left on the disk after growing, at the worst estimate

Log = Callable[[str], None]


@dataclass(frozen=True)
class Size:
    """What one barman holds: DONE base backups and archived WAL files."""

    backups: int
    wals: int


def bench_lab_up(log: Log = print_to_stderr) -> Lab:
    """Bring up (or reuse) the bench lab: BENCH_LAB_DIR, BENCH_PORTS, 1 MB WAL segments."""
    lab_up(BENCH_LAB_DIR, log=log, ports=BENCH_PORTS, wal_segsize_mb=BENCH_WAL_SEGSIZE_MB)
    return Lab.load(BENCH_LAB_DIR)


def count_wals(site: BarmanSite) -> int:
    """Archived WAL files in the site's ``wals/`` folders (history and backup labels left out)."""
    wals = site.home / BARMAN_SERVER / "wals"
    if not wals.is_dir():
        return 0
    return sum(1 for folder in wals.iterdir() if folder.is_dir() for f in folder.iterdir() if WAL_NAME.match(f.name))


def streaming_backlog(site: BarmanSite) -> int:
    """Completed segments received by receive-wal that barman's cron has not archived yet."""
    streaming = site.home / BARMAN_SERVER / "streaming"
    return sum(1 for f in streaming.iterdir() if WAL_NAME.match(f.name)) if streaming.is_dir() else 0


def count_backups(lab: Lab, site: BarmanSite | None = None) -> int:
    """DONE base backups of the site's barman, as ``barman list-backup`` says."""
    site = site or lab.annex_barman_site
    out = barman_setup.barman(lab, "-f", "json", "list-backup", BARMAN_SERVER, timeout=120, site=site).stdout
    return sum(1 for b in json.loads(out).get(BARMAN_SERVER, []) if b.get("status") == "DONE")


def size(lab: Lab, site: BarmanSite | None = None) -> Size:
    site = site or lab.annex_barman_site
    return Size(count_backups(lab, site), count_wals(site))


def _check_disk(lab: Lab, now: Size, backups: int, wals: int) -> None:
    """Refuse to grow past the disk: every missing segment uncompressed in both barmans, and
    every missing backup as large as the primary's data directory, plus SPARE_BYTES."""
    segment = lab.wal_segsize_mb * 1024**2
    data = sum(f.stat().st_size for f in lab.pg_data.rglob("*") if f.is_file())
    need = 2 * max(0, wals - now.wals) * segment + max(0, backups - now.backups) * data
    free = shutil.disk_usage(lab.lab_dir).free
    if need + SPARE_BYTES > free:
        raise LabError(
            f"growing to {backups} backups and {wals} WAL files may need {need / 1024**3:.1f} GiB; "
            f"{free / 1024**3:.1f} GiB free in {lab.lab_dir} (WAL segments of {lab.wal_segsize_mb} MB: "
            "grow the bench lab, whose segments are 1 MB)"
        )


def _switch_wal(lab: Lab, count: int) -> None:
    """Complete ``count`` WAL segments on the primary (a tiny record, then a switch, each)."""
    sql = (
        f"DO $$ BEGIN FOR i IN 1..{int(count)} LOOP "
        "PERFORM pg_logical_emit_message(false, 'grow', i::text); PERFORM pg_switch_wal(); "
        "END LOOP; END $$"
    )
    postgres.psql(lab, sql, db="postgres", step=f"switch {count} WAL segments", timeout=600)


def _wait_received(lab: Lab, site: BarmanSite) -> None:
    """Wait until the site's receive-wal has every switched segment (its slot holds at most two)."""

    def received() -> bool:
        held = postgres.slot_retained_bytes(lab, site.slot)
        return held is not None and held <= 2 * lab.wal_segsize_mb * 1024**2

    wait_for(f"wait for {site.container} to receive the switched WAL", received, timeout=300, interval=0.5)


def grow(lab: Lab, backups: int, wals: int, log: Log = print_to_stderr) -> dict[str, float]:
    """Grow the annex's barman to at least ``backups`` DONE base backups and ``wals`` archived WAL
    files (barman-aws streams the same WAL). Returns the seconds each part took (0 when nothing
    was missing). barman's own cron loop archives, so it must not be paused."""
    for site in lab.barman_sites:
        if site.cron_paused.exists():
            raise LabError(f"{site.container}'s cron is paused ({site.cron_paused}): it archives the WAL")
    site = lab.annex_barman_site
    now = size(lab, site)
    log(f"grow: {site.container} has {now.backups} backups and {now.wals} WAL files")
    _check_disk(lab, now, backups, wals)
    timings = {"backups": 0.0, "wals": 0.0}
    started = time.monotonic()
    have = now.backups
    while have < backups:
        # a backup's id is its start time to the second: two in one second would be one
        time.sleep(1.1)
        barman_setup.first_backup(lab, site)
        have = count_backups(lab, site)
        log(f"grow: {have} of {backups} backups done ({time.monotonic() - started:.0f} s)")
    timings["backups"] = round(time.monotonic() - started, 1)
    started = time.monotonic()
    have = count_wals(site)
    while have < wals:
        wait_for(
            "wait for barman cron to archive the streamed WAL",
            lambda: all(streaming_backlog(s) < MAX_BACKLOG for s in lab.barman_sites),
            timeout=600,
            interval=1,
        )
        # segments switched but not archived yet count as coming (backlog read first: a file
        # archived in between is then counted twice, never missed)
        backlog = streaming_backlog(site)
        batch = min(SWITCH_BATCH, wals - count_wals(site) - backlog)
        if batch > 0:
            _switch_wal(lab, batch)
            _wait_received(lab, site)
        else:
            time.sleep(1)
        have = count_wals(site)
        log(f"grow: {have} of {wals} WAL files archived ({time.monotonic() - started:.0f} s)")
    # both barmans caught up: nothing left waiting in streaming/
    wait_for(
        "wait for both barmans to archive every streamed segment",
        lambda: all(streaming_backlog(s) <= 1 for s in lab.barman_sites),
        timeout=600,
        interval=1,
    )
    timings["wals"] = round(time.monotonic() - started, 1) if now.wals < wals else 0.0
    end = size(lab, site)
    log(f"grow: {site.container} now has {end.backups} backups and {end.wals} WAL files")
    return timings
