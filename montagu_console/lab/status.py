"""``lab_status``: is each part of a lab running? Quick (well under a second) and never raises."""

from __future__ import annotations

from pathlib import Path

from . import docker_daemon, postgres, sshd, tunnel, writer
from .handle import Lab
from .layout import AWS_BARMAN_CONTAINER, BARMAN_CONTAINER, DEFAULT_LAB_DIR, SCIENCE_CONTAINER, SshdSite
from .proc import LabError


def lab_status(lab_dir: Path = DEFAULT_LAB_DIR) -> list[dict]:
    """One ``{"name": ..., "running": bool, "detail": str}`` per component, in this order: dockerd,
    postgres-primary, receive-wal, barman-montagu, montagu-db, sshd, then the off-site barman's
    tunnel, receive-wal-aws, barman-aws and sshd-aws, and writer once started."""
    lab = Lab.at(Path(lab_dir))
    rows: list[dict] = []

    def probe(name: str, check, *args) -> bool:
        try:
            running, detail = check(lab, *args)
        except LabError as exc:
            running, detail = False, str(exc)
        rows.append({"name": name, "running": running, "detail": detail})
        return running

    docker_up = probe("dockerd", _dockerd)
    primary_up = probe("postgres-primary", _primary)
    probe("receive-wal", _receive_wal, primary_up, lab.slot_name)
    names = (BARMAN_CONTAINER, SCIENCE_CONTAINER, AWS_BARMAN_CONTAINER)
    states = docker_daemon.container_state(lab, *names) if docker_up else None
    probe(BARMAN_CONTAINER, _container, BARMAN_CONTAINER, states)
    probe(SCIENCE_CONTAINER, _container, SCIENCE_CONTAINER, states)
    probe("sshd", _sshd, lab.starport_sshd)
    probe("tunnel", _tunnel)
    probe("receive-wal-aws", _receive_wal, primary_up, lab.aws_slot_name)
    probe(AWS_BARMAN_CONTAINER, _container, AWS_BARMAN_CONTAINER, states)
    probe("sshd-aws", _sshd, lab.aws_sshd)
    if lab.writer_pidfile.exists():  # the writer is optional: listed once started
        probe("writer", _writer)
    return rows


def _dockerd(lab: Lab) -> tuple[bool, str]:
    pid = docker_daemon.daemon_pid(lab)
    if not pid:
        return False, f"not running ({lab.docker_host})"
    return True, f"pid {pid}, engine {docker_daemon.engine_version(lab)}, {lab.docker_host}"


def _primary(lab: Lab) -> tuple[bool, str]:
    pid = postgres.primary_pid(lab)
    where = f"127.0.0.1:{lab.pg_port}, data {lab.pg_data}"
    if not pid:
        return False, f"not running ({where})"
    if not postgres.is_ready(lab.pg_run, lab.pg_port):
        return False, f"pid {pid} not accepting connections ({where})"
    return True, f"pid {pid}, {where}"


def _receive_wal(lab: Lab, primary_up: bool, slot: str) -> tuple[bool, str]:
    if not primary_up:
        return False, "unknown: the primary is down"
    active = postgres.slot_active(lab, slot)
    return active, f"replication slot '{slot}' {'active' if active else 'inactive'}"


def _container(lab: Lab, name: str, states: dict[str, dict] | None) -> tuple[bool, str]:
    if states is None:
        return False, "unknown: dockerd is down"
    state = states.get(name)
    if state is None:
        return False, "no container"
    if not state.get("Running"):
        return False, f"{state.get('Status')} (exit code {state.get('ExitCode')})"
    detail = f"running since {state.get('StartedAt', '')[:19]}"
    paused = {BARMAN_CONTAINER: lab.cron_paused, AWS_BARMAN_CONTAINER: lab.aws_cron_paused}.get(name)
    if paused and paused.exists():
        detail += ", cron paused"
    if name == SCIENCE_CONTAINER:
        ready = postgres.is_ready("127.0.0.1", lab.science_port)
        detail += f", {'accepting' if ready else 'NOT accepting'} on 127.0.0.1:{lab.science_port}"
    return True, detail


def _sshd(lab: Lab, site: SshdSite) -> tuple[bool, str]:
    pid = sshd.sshd_pid(lab, site)
    if not pid:
        return False, f"not running (127.0.0.1:{site.port})"
    up = sshd.listening(site.port)
    return up, f"pid {pid}, {'listening' if up else 'NOT listening'} on 127.0.0.1:{site.port}"


def _tunnel(lab: Lab) -> tuple[bool, str]:
    where = f"127.0.0.1:{lab.tunnel_port} -> 127.0.0.1:{lab.pg_port} via ssh {lab.tunnel_user}@127.0.0.1:{lab.ssh_port}"
    pid = tunnel.tunnel_pid(lab)
    if not pid:
        return False, f"not running ({where})"
    up = sshd.listening(lab.tunnel_port)
    return up, f"pid {pid}, {where}{'' if up else ', NOT listening'}"


def _writer(lab: Lab) -> tuple[bool, str]:
    pid = writer.writer_pid(lab)
    return (True, f"pid {pid}, inserting into api_access_log") if pid else (False, "exited")
