"""``Lab``: a running lab's paths, ports and names, plus the state changes tests drive."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from . import barman_setup, nightly, pg_container, postgres, privateer_lab, sshd, starport, tunnel, writer
from .docker_daemon import docker, volume_path
from .layout import BARMAN_SERVER, DB_NAME, SCIENCE_CONTAINER, Layout
from .proc import LabError, run


@dataclass
class Lab(Layout):
    """One lab, as recorded in ``lab.json``. Every method is synchronous and has a timeout."""

    pids: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @classmethod
    def load(cls, lab_dir: Path | str) -> Lab:
        """The lab recorded in ``lab_dir/lab.json`` (written by ``lab_up``)."""
        inputs = Layout.load_inputs(Path(lab_dir))
        if not inputs:
            raise LabError(f"no lab in {lab_dir} (no lab.json): run `montagu-console lab up`")
        data = Layout.recorded(Path(lab_dir))
        return cls(**inputs, pids=data.get("pids", {}), timings=data.get("timings", {}))

    @classmethod
    def at(cls, lab_dir: Path | str) -> Lab:
        """The lab recorded in ``lab_dir``, or the default layout there if none was recorded
        (enough to stop or inspect a half-built lab)."""
        return cls.load(lab_dir) if Layout.load_inputs(Path(lab_dir)) else cls(Path(lab_dir))

    def save(self) -> None:
        """Write ``lab.json``: inputs, every path/port/name, pids and phase timings."""
        data = self.describe() | {"pids": self.pids, "timings": self.timings}
        tmp = self.lab_json.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, self.lab_json)

    # --- commands ------------------------------------------------------------
    def docker(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """``docker -H LAB ARGS`` (does not raise on a non-zero exit)."""
        return docker(self, "docker", *args, timeout=timeout, check=False)

    def barman(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """``barman ARGS`` inside barman-montagu (does not raise on a non-zero exit)."""
        return barman_setup.barman(self, *args, timeout=timeout, check=False)

    def aws_barman(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """``barman ARGS`` inside the off-site barman-aws (does not raise on a non-zero exit)."""
        return barman_setup.barman(self, *args, timeout=timeout, check=False, site=self.aws_barman_site)

    def psql(self, sql: str, port: int | None = None) -> str:
        """Run ``sql`` in database montagu as vimc on the primary (default) or on montagu-db
        (``port=lab.science_port``); return unaligned, tuples-only output."""
        if port in (None, self.pg_port):
            return postgres.psql(self, sql)
        if port == self.science_port:
            return docker(
                self,
                "psql on montagu-db",
                "exec",
                "-i",
                SCIENCE_CONTAINER,
                "psql",
                "-d",
                DB_NAME,
                "-XAtq",
                "-v",
                "ON_ERROR_STOP=1",
                input=sql,
                timeout=30,
            ).stdout.strip()
        raise LabError(f"psql: no database of the lab listens on port {port}")

    def ssh(self, command: str, timeout: float = 30) -> subprocess.CompletedProcess:
        """Run ``command`` on the lab sshd as the SSH user (does not raise on a non-zero exit)."""
        return sshd.ssh(self, command, timeout=timeout, check=False)

    def bb8(self, side: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        """The stand-in ``bb8 ARGS`` on ``side`` ("annex" or "science"); does not raise on failure."""
        exe = self.bb8_annex if side == "annex" else self.bb8_science
        return run(f"bb8 {' '.join(args)}", [exe, *args], timeout=timeout, check=False)

    def privateer(self, *args: str, side: str = "science", timeout: float = 600) -> subprocess.CompletedProcess:
        """The real ``privateer ARGS`` on science (or the annex), through the lab's wrapper; does
        not raise on failure."""
        return privateer_lab.privateer(self, side, *args, timeout=timeout)

    def stop_privateer_server(self) -> None:
        """``privateer server stop`` on the annex (its container goes)."""
        privateer_lab.stop_server(self)

    def start_privateer_server(self) -> None:
        """``privateer server start`` on the annex; waits until its sshd listens."""
        privateer_lab.start_server(self)

    def volume_path(self, volume: str) -> Path:
        """Host path of one of the lab's docker volumes."""
        return Path(volume_path(self, volume))

    # --- state changes -------------------------------------------------------
    def stop_primary(self) -> None:
        """Fast-stop the PostgreSQL primary."""
        postgres.stop_primary(self)

    def start_primary(self) -> None:
        """Start the PostgreSQL primary and wait until it accepts connections."""
        postgres.start_primary(self)

    def pause_cron(self) -> None:
        """Stop barman-montagu's cron loop from running ``barman cron`` (waits for a run under way)."""
        barman_setup.pause_cron(self)

    def resume_cron(self) -> None:
        """Let barman-montagu's cron loop run ``barman cron`` again."""
        barman_setup.resume_cron(self)

    def stop_receive_wal(self) -> None:
        """Pause cron and stop WAL streaming; waits until the slot is inactive."""
        self.pause_cron()
        barman_setup.barman(self, "receive-wal", "--stop", BARMAN_SERVER, timeout=60)
        postgres.wait_slot(self, active=False)

    def start_receive_wal(self) -> None:
        """Resume cron, run ``barman cron`` and wait until the slot is active."""
        self.resume_cron()
        barman_setup.start_streaming(self)

    def stop_sshd(self) -> None:
        """Stop the lab sshd."""
        sshd.stop(self)

    def start_sshd(self) -> None:
        """Start the lab sshd (same keys and config) and wait until it listens."""
        sshd.start(self)

    # --- the off-site barman, its tunnel and its host -------------------------
    def kill_tunnel(self) -> None:
        """Kill the off-site barman's SSH tunnel to the primary (as a reboot of the AWS host
        would); waits until slot barman_aws is inactive. Nothing restarts it but :meth:`start_tunnel`."""
        tunnel.stop(self)
        postgres.wait_slot(self, active=False, timeout=30, slot=self.aws_slot_name)

    def start_tunnel(self) -> None:
        """Start the tunnel again and wait until the primary answers through it (barman-aws's cron
        then restarts its receive-wal within BARMAN_CRON_INTERVAL seconds)."""
        tunnel.start(self)

    def pause_aws_cron(self) -> None:
        """Stop barman-aws's cron loop from running ``barman cron`` (waits for a run under way)."""
        barman_setup.pause_cron(self, self.aws_barman_site)

    def resume_aws_cron(self) -> None:
        """Let barman-aws's cron loop run ``barman cron`` again."""
        barman_setup.resume_cron(self, self.aws_barman_site)

    def stop_aws_receive_wal(self) -> None:
        """``barman receive-wal --stop montagu`` in barman-aws; waits until slot barman_aws is
        inactive. Its cron restarts it within BARMAN_CRON_INTERVAL unless :meth:`pause_aws_cron`."""
        site = self.aws_barman_site
        barman_setup.barman(self, "receive-wal", "--stop", BARMAN_SERVER, timeout=60, site=site)
        postgres.wait_slot(self, active=False, timeout=30, slot=site.slot)

    def start_aws_receive_wal(self) -> None:
        """Resume barman-aws's cron, run ``barman cron`` and wait until slot barman_aws is active."""
        self.resume_aws_cron()
        barman_setup.start_streaming(self, self.aws_barman_site)

    def stop_aws_sshd(self) -> None:
        """Stop the off-site host's sshd (the starport's sshd and the tunnel are untouched)."""
        sshd.stop(self, self.aws_sshd)

    def start_aws_sshd(self) -> None:
        """Start the off-site host's sshd (same keys and config) and wait until it listens."""
        sshd.start(self, self.aws_sshd)

    def create_slot(self, name: str) -> None:
        """Create a physical replication slot on the primary that reserves WAL at once (nothing
        consumes it: a forgotten standby's slot)."""
        postgres.create_slot(self, name)

    def drop_slot(self, name: str) -> None:
        """Drop replication slot ``name`` on the primary if it exists."""
        postgres.drop_slot(self, name)

    def slot_retained_bytes(self, name: str) -> int | None:
        """WAL bytes the primary keeps for slot ``name`` (None if there is no such slot)."""
        return postgres.slot_retained_bytes(self, name)

    def slot_active(self, name: str) -> bool:
        """True if slot ``name`` exists on the primary and a receiver streams from it."""
        return postgres.slot_active(self, name)

    def stop_science(self) -> None:
        """Stop the montagu-db container (postgres fast shutdown)."""
        pg_container.stop(self, SCIENCE_CONTAINER)

    def start_science(self) -> None:
        """Start the montagu-db container and wait until the database is open."""
        docker(self, "start montagu-db", "start", SCIENCE_CONTAINER)
        pg_container.wait_open(self, SCIENCE_CONTAINER)

    def write_starport_metadata(self, target: str, last_backup: datetime | None, raw: str | None = None) -> Path:
        """Write a target's ``meta/metadata.json`` in bb8's format (``raw``: these exact contents,
        e.g. corrupt JSON); with neither, delete it (bb8's "Never backed up")."""
        return starport.write_metadata(self, target, last_backup, raw)

    def set_nightly_timestamp(self, moment: datetime) -> str:
        """Rewrite ``.barman-last-restore`` in the nightly volume (naive datetimes are UTC)."""
        return nightly.write_timestamp(self, moment)

    def start_writer(self, every_seconds: float = 1.0) -> None:
        """Start a background process inserting one api_access_log row every ``every_seconds``."""
        writer.start(self, every_seconds)
