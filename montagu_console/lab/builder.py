"""``lab_up`` and ``lab_down``: build (or reuse) and stop a whole lab."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from . import (
    barman_setup,
    console_config,
    docker_daemon,
    images,
    nightly,
    postgres,
    privateer_lab,
    privateer_vault,
    science,
    sshd,
    standin_setup,
    starport,
    tunnel,
    users,
    writer,
)
from .handle import Lab
from .layout import (
    DEFAULT_LAB_DIR,
    DEFAULT_WAL_SEGSIZE_MB,
    LAB_VERSION,
    MARKER,
    MAX_SOCKET_PATH,
    RECOVER_VOLUME,
    LabPorts,
    Layout,
    venv_identity,
)
from .proc import PACKAGES, LabError, program, run
from .status import lab_status

Log = Callable[[str], None]
WRITER_SECONDS = 2.0  # the writer's api_access_log insert interval


def print_to_stderr(line: str) -> None:
    """The default progress log of ``lab_up``."""
    print(line, file=sys.stderr, flush=True)


class _Phases:
    """Times each phase and reports it as ``lab: <phase> (1.2 s)``."""

    def __init__(self, log: Log):
        self.log = log
        self.timings: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.monotonic()
        yield
        seconds = time.monotonic() - start
        self.timings[name] = round(seconds, 2)
        self.log(f"lab: {name} ({seconds:.1f} s)")


def lab_up(
    lab_dir: Path = DEFAULT_LAB_DIR,
    *,
    log: Log = print_to_stderr,
    ports: LabPorts | None = None,
    wal_segsize_mb: int = DEFAULT_WAL_SEGSIZE_MB,
) -> Path:
    """Build the lab in ``lab_dir`` (or reuse a healthy running one) and return its config.yml path.

    The lab ends with the writer inserting into api_access_log every WRITER_SECONDS (restarted
    on reuse if it had stopped).

    A rebuild first stops whatever the lab had left running there and wipes ``lab_dir`` except
    ``cache/``. Two labs can run at once with different ``lab_dir`` and ``ports``.
    ``wal_segsize_mb`` is the primary's WAL segment size (a lab of another size is rebuilt). If a step
    fails, what was started so far keeps running for inspection; ``lab_down`` stops it.
    """
    require_root()
    started = time.monotonic()
    lab = Lab(Path(lab_dir), ports or LabPorts(), wal_segsize_mb=wal_segsize_mb)
    if _reusable(lab):
        writer.start(lab, WRITER_SECONDS)
        log(f"lab: reusing the running lab in {lab.lab_dir} ({time.monotonic() - started:.1f} s)")
        return lab.config_path
    log(f"lab: building in {lab.lab_dir}")
    phase = _Phases(log)
    with phase("preflight"):
        _preflight(lab)
    with phase("stop and wipe the old lab"):
        lab_down(lab.lab_dir)
        _reserve_ports(lab, log)
        _check_ports_free(lab)
        _wipe(lab)
        lab.save()
    with phase("users"):
        users.ensure_users(lab)
    with phase("dockerd spawned"):
        docker_daemon.spawn_daemon(lab)
    with phase("pg primary started"):
        passwords = postgres.create_primary(lab)
    with phase("sshd started, ssh login works"):
        sshd.setup(lab)
        sshd.start(lab)
        sshd.trust_and_test(lab)
        starport.create(lab)
    with phase("stand-in bb8 installed"):
        standin_setup.install(lab)
    with phase("dockerd ready"):
        version = docker_daemon.wait_daemon(lab)
    with phase("images built"):
        images.build_images(lab)
    with phase("barman-montagu started"):
        barman_setup.write_config(lab, passwords)
        barman_setup.start_container(lab)
    with phase("barman streaming, check OK"):
        barman_setup.start_streaming(lab)
        barman_setup.archive_first_wal(lab)
        barman_setup.wait_check_ok(lab)
    with phase("barman backup"):
        barman_setup.first_backup(lab)
    with phase("tunnel up, sshd-aws started"):
        tunnel.start(lab)
        sshd.setup_aws(lab)
        sshd.start(lab, lab.aws_sshd)
        sshd.trust_and_test_aws(lab)
    with phase("barman-aws streaming through the tunnel, check OK"):
        aws = lab.aws_barman_site
        barman_setup.write_config(lab, passwords, aws)
        barman_setup.start_container(lab, aws)
        barman_setup.start_streaming(lab, aws)
        barman_setup.archive_first_wal(lab, aws)
        barman_setup.wait_check_ok(lab, site=aws)
    with phase("barman-aws backup"):
        barman_setup.first_backup(lab, aws)
    with phase("nightly recover"):
        nightly.recover(lab)
    with phase("nightly WAL replay"):
        nightly.replay_wal(lab)
        nightly.write_timestamp(lab)
    with phase("barman_recover: recover, replay, timestamp"):
        nightly.recover(lab, RECOVER_VOLUME)
        nightly.replay_wal(lab, RECOVER_VOLUME, lab.recover_replay_log)
        nightly.write_timestamp(lab, volume=RECOVER_VOLUME)
    with phase("privateer venv (its lock, cached)"):
        privateer_lab.install_venv(lab)
    with phase("privateer: images, vault, keys, server on the annex"):
        privateer_lab.setup(lab)
    with phase("starport shipped (bb8 backup)"):
        starport.ship_nightly(lab)
    with phase("science restored (bb8 restore)"):
        science.restore(lab)
    with phase("montagu-db open"):
        science.start(lab)
    with phase("writer started"):
        writer.start(lab, WRITER_SECONDS)
    config = console_config.write(lab)
    with phase("nightly copies proven (run prove-nightly)"):
        for path in (lab.config_path, lab.privateer_config_path):
            prove = [sys.executable, "-m", "montagu_console", "run", "prove-nightly", "--yes", "--config", str(path)]
            run(f"montagu-console run prove-nightly --config {path}", prove, timeout=600)
    lab.pids = {
        "dockerd": docker_daemon.daemon_pid(lab) or 0,
        "postgres_primary": postgres.primary_pid(lab) or 0,
        "sshd": sshd.sshd_pid(lab) or 0,
        "sshd_aws": sshd.sshd_pid(lab, lab.aws_sshd) or 0,
        "tunnel": tunnel.tunnel_pid(lab) or 0,
    }
    total = time.monotonic() - started
    lab.timings = phase.timings | {"total": round(total, 2)}
    lab.save()
    log(f"lab: ready in {total:.1f} s (docker engine {version}); config {config}")
    return config


def lab_down(lab_dir: Path = DEFAULT_LAB_DIR) -> None:
    """Stop what the lab in ``lab_dir`` started: writer, containers (privateer's volumes too),
    dockerd, privateer's vault, the tunnel, primary, both sshds.

    Idempotent; files stay in place. Every step is tried; the first failure is raised at the end.
    """
    require_root()
    lab = Lab.at(Path(lab_dir))
    errors: list[LabError] = []

    def attempt(step: Callable[[], None]) -> None:
        try:
            step()
        except LabError as exc:
            errors.append(exc)

    attempt(lambda: writer.stop(lab))
    if docker_daemon.daemon_pid(lab):
        attempt(lambda: privateer_lab.remove_server(lab))
        attempt(lambda: docker_daemon.remove_all_containers(lab))
        attempt(lambda: privateer_lab.remove_volumes(lab))
    attempt(lambda: privateer_vault.stop(lab))
    attempt(lambda: docker_daemon.stop_daemon(lab))
    attempt(lambda: tunnel.stop(lab))
    attempt(lambda: postgres.stop_primary(lab))
    attempt(lambda: sshd.stop(lab, lab.aws_sshd))
    attempt(lambda: sshd.stop(lab))
    if errors:
        raise errors[0]


def require_root() -> None:
    """The lab creates users and runs postgres as labpg, so it needs root."""
    if os.geteuid() != 0:
        raise LabError("the lab needs root (it creates users and runs postgres as labpg)")


def _reusable(lab: Lab) -> bool:
    """True if a lab of this version, with the same ports and python environment (the very one,
    not one made anew at its path), runs healthy in ``lab.lab_dir``."""
    data = Layout.recorded(lab.lab_dir)
    recorded = Layout.inputs(data)
    same = (
        recorded
        and (recorded["ports"], recorded["venv"]) == (lab.ports, lab.venv)
        and data.get("venv_id") == venv_identity(lab.venv)
        and recorded["wal_segsize_mb"] == lab.wal_segsize_mb
        and data.get("version") == LAB_VERSION
    )
    if not same or not lab.config_path.exists() or any(b.cron_paused.exists() for b in lab.barman_sites):
        return False
    if not all(c["running"] for c in lab_status(lab.lab_dir) if c["name"] != "writer"):
        return False
    if not privateer_lab.server_running(lab):
        return False
    return postgres.is_ready("127.0.0.1", lab.science_port)


def _preflight(lab: Lab) -> None:
    """Programs installed, barman present; lab dir safe to wipe, short enough, reachable by labpg."""
    for name in PACKAGES:
        program(name)
    barman_setup.require_barman(lab)
    for sock in (lab.docker_socket, lab.pg_run / f".s.PGSQL.{lab.pg_port}"):
        if len(str(sock)) > MAX_SOCKET_PATH:
            raise LabError(f"lab dir {lab.lab_dir} is too long: socket path {sock} exceeds {MAX_SOCKET_PATH} bytes")
    if lab.lab_dir.exists():
        entries = {p.name for p in lab.lab_dir.iterdir()}
        if entries - {"cache"} and MARKER not in entries:
            raise LabError(
                f"refusing to wipe {lab.lab_dir}: it is not empty and has no {MARKER} file "
                "(choose an empty or new lab dir)"
            )
    for parent in lab.lab_dir.parents:
        if parent.exists() and not parent.stat().st_mode & 0o001:
            raise LabError(
                f"labpg cannot reach {lab.lab_dir}: {parent} is not searchable by others "
                f"(chmod o+x {parent}, or choose another lab dir)"
            )


RESERVED_PORTS = Path("/proc/sys/net/ipv4/ip_local_reserved_ports")


def _reserve_ports(lab: Lab, log: Log) -> None:
    """Keep the kernel from giving the lab's ports to outgoing connections as their local port
    (they lie in the ephemeral range, 32768-60999 by default): a connection that held 55434 for a
    moment made the replay's postgres exit, unable to listen. The ports are added to
    ip_local_reserved_ports, with what is reserved already; a kernel that refuses is logged, not fatal."""
    try:
        reserved = {r for r in RESERVED_PORTS.read_text().strip().split(",") if r}
        wanted = reserved | {str(p) for p in lab.all_ports}
        if wanted != reserved:
            RESERVED_PORTS.write_text(",".join(sorted(wanted)) + "\n")
    except OSError as e:
        log(f"lab: could not reserve its ports from the ephemeral range ({e}); carrying on")


def _check_ports_free(lab: Lab) -> None:
    """Fail, naming the port, if any of the lab's ports is taken by something else."""
    for role, port in vars(lab.ports).items():
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                holder = run(
                    "find port user", [program("ss"), "-Htlnp", f"sport = :{port}"], check=False
                ).stdout.strip()
                raise LabError(
                    f"port {port} ({role}) is already in use: {holder or 'by another program'}; "
                    "stop it or pass other ports"
                ) from None


def _wipe(lab: Lab) -> None:
    """Empty ``lab_dir`` except ``cache/`` and mark it as a lab dir."""
    root = lab.lab_dir
    for target in (root, lab.docker_exec_root):
        docker_daemon.unmount_below(target)
    if lab.docker_exec_root.exists() and root not in lab.docker_exec_root.parents:
        shutil.rmtree(lab.docker_exec_root)
    root.mkdir(parents=True, exist_ok=True)
    for entry in root.iterdir():
        if entry.name == "cache":
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    root.chmod(0o755)
    (root / MARKER).write_text("Written by montagu-console lab up: lab up may wipe this directory.\n")
