"""Where everything of one lab lives: paths, ports, users, container and volume names.

The names are a contract with the console's config (``config.yml``), so they are fixed here.
``lab.json`` records the inputs (directory, ports, python environment) plus the derived paths
for other readers; :meth:`Layout.load_inputs` reads the inputs back.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

DEFAULT_LAB_DIR = Path(os.environ.get("MONTAGU_LAB_DIR", "/srv/montagu-lab"))

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_USER = "labpg"  # OS user that runs every postgres of the lab
DOCKER_GROUP = "labdocker"
DB_SUPERUSER = "vimc"
DB_NAME = "montagu"
BARMAN_SERVER = "montagu"
SLOT_NAME = "barman"
AWS_SLOT_NAME = "barman_aws"
BARMAN_CONTAINER = "barman-montagu"
AWS_BARMAN_CONTAINER = "barman-aws"
TUNNEL_USER = "labtunnel"  # the off-site barman's tunnel logs in as this user (forwarding only)
RETENTION_POLICY = "RECOVERY WINDOW OF 3 MONTHS"
SCIENCE_CONTAINER = "montagu-db"
REPLAY_CONTAINER = "barman-replay-wal"
BARMAN_IMAGE = "montagu-lab/barman:host"
POSTGRES_IMAGE = "montagu-lab/postgres:host"
NIGHTLY_VOLUME = "montagu_db_volume"
RECOVER_VOLUME = "barman_recover"
SCIENCE_VOLUME = "science_db_volume"
PITR_VOLUME = "montagu_pitr_volume"  # the point-in-time recovery's scratch copy
PITR_MOUNT = "/pitr"  # where barman-montagu mounts it
STARPORT_TARGET = "barman_to_starport"
RESTORE_TARGET = "main_db_restore"
TIMESTAMP_FILE = ".barman-last-restore"
BARMAN_CRON_INTERVAL = 10
MARKER = ".montagu-lab"  # a directory holding this file may be wiped by lab_up
# lab.json's "version": lab_up rebuilds (rather than reuses) a running lab of another version
# 2: the off-site barman, its tunnel and host, both slots; 3: the PITR scratch volume;
# 4: the real privateer 2.1.1 (its venv, images, vault, keys and server) instead of its stand-in;
# 5: a lock_dir of its own in its configs, its ports reserved from the ephemeral range
LAB_VERSION = 5
DEFAULT_WAL_SEGSIZE_MB = 16  # PostgreSQL's own default

# unix socket paths must fit in sockaddr_un.sun_path (108 bytes including the NUL)
MAX_SOCKET_PATH = 107
# room dockerd and containerd need below exec-root for their sockets (containerd/containerd.sock.ttrpc, ...)
EXEC_ROOT_SOCKET_DEPTH = 48


@dataclass(frozen=True)
class LabPorts:
    """Loopback ports of one lab. Two labs running at once need different ports."""

    primary: int = 55432
    science: int = 55433
    replay: int = 55434
    ssh: int = 2222
    tunnel: int = 55435  # the off-site barman's end of its SSH tunnel to the primary
    aws_ssh: int = 2223  # the off-site barman's host


@dataclass(frozen=True)
class BarmanSite:
    """One barman of the lab: its container, its replication slot, and its files, all under
    ``dir`` (mounted into the container at the same path; barman.conf also at /etc/barman.conf)."""

    name: str  # "annex" or "aws", as in the console's config
    container: str
    dir: Path
    slot: str
    pg_port: int  # where this barman reaches the primary (the tunnel's port for aws)

    @property
    def conf(self) -> Path:
        return self.dir / "barman.conf"

    @property
    def home(self) -> Path:
        return self.dir / "home"

    @property
    def log(self) -> Path:
        return self.dir / "log" / "barman.log"

    @property
    def pgpass(self) -> Path:
        return self.dir / "pgpass"

    @property
    def cron_paused(self) -> Path:
        return self.dir / "cron.paused"

    @property
    def cron_lock(self) -> Path:
        return self.dir / "cron.lock"


@dataclass(frozen=True)
class SshdSite:
    """One sshd of the lab: its port, the users it lets in, and its files under ``dir``."""

    name: str  # its lab_status row
    dir: Path
    port: int
    users: tuple[str, ...]

    @property
    def config(self) -> Path:
        return self.dir / "sshd_config"

    @property
    def pidfile(self) -> Path:
        return self.dir / "sshd.pid"

    @property
    def log(self) -> Path:
        return self.dir / "sshd.log"

    @property
    def host_key(self) -> Path:
        return self.dir / "ssh_host_ed25519_key"

    @property
    def known_hosts(self) -> Path:
        return self.dir / "known_hosts"

    @property
    def authorized_keys_dir(self) -> Path:
        return self.dir / "authorized_keys"


def venv_identity(venv: Path) -> str | None:
    """Which python environment lives at ``venv``: its pyvenv.cfg's device, inode and mtime. A
    venv made anew at the same path (a fresh clone) differs, and the lab's containers, which
    mount the old one, must be rebuilt."""
    try:
        st = (venv / "pyvenv.cfg").stat()
    except OSError:
        return None
    return f"{st.st_dev}:{st.st_ino}:{st.st_mtime_ns}"


@dataclass
class Layout:
    """Every path, port and name of one lab, derived from its directory and ports."""

    lab_dir: Path
    ports: LabPorts = field(default_factory=LabPorts)
    venv: Path = field(default_factory=lambda: Path(sys.prefix))
    python: Path = field(default_factory=lambda: Path(sys.executable))
    # the primary's WAL segment size (initdb --wal-segsize); the grown lab for benchmarks uses 1
    wal_segsize_mb: int = DEFAULT_WAL_SEGSIZE_MB

    # fixed names, a contract with config.yml and the real estate
    pg_user: ClassVar[str] = PG_USER
    docker_group: ClassVar[str] = DOCKER_GROUP
    db_superuser: ClassVar[str] = DB_SUPERUSER
    db_name: ClassVar[str] = DB_NAME
    barman_server: ClassVar[str] = BARMAN_SERVER
    slot_name: ClassVar[str] = SLOT_NAME
    aws_slot_name: ClassVar[str] = AWS_SLOT_NAME
    barman_container: ClassVar[str] = BARMAN_CONTAINER
    aws_barman_container: ClassVar[str] = AWS_BARMAN_CONTAINER
    retention_policy: ClassVar[str] = RETENTION_POLICY
    science_container: ClassVar[str] = SCIENCE_CONTAINER
    replay_container: ClassVar[str] = REPLAY_CONTAINER
    barman_image: ClassVar[str] = BARMAN_IMAGE
    postgres_image: ClassVar[str] = POSTGRES_IMAGE
    nightly_volume: ClassVar[str] = NIGHTLY_VOLUME
    recover_volume: ClassVar[str] = RECOVER_VOLUME
    science_volume: ClassVar[str] = SCIENCE_VOLUME
    starport_target: ClassVar[str] = STARPORT_TARGET
    restore_target: ClassVar[str] = RESTORE_TARGET
    timestamp_file: ClassVar[str] = TIMESTAMP_FILE

    def __post_init__(self) -> None:
        self.lab_dir = Path(self.lab_dir).absolute()
        self.venv = Path(self.venv)
        self.python = Path(self.python)

    # --- users -------------------------------------------------------------
    @property
    def sci_user(self) -> str:
        """The SSH login user: ``labsci`` for the default ssh port, ``labsci<port>`` otherwise.

        Its home holds the ``starport`` link, so two labs running at once need two users.
        """
        return "labsci" if self.ports.ssh == LabPorts.ssh else f"labsci{self.ports.ssh}"

    @property
    def aws_user(self) -> str:
        """The off-site host's SSH login (in the docker group): ``labaws``, or ``labaws<port>``
        for another aws_ssh port (its home is in the lab dir)."""
        return "labaws" if self.ports.aws_ssh == LabPorts.aws_ssh else f"labaws{self.ports.aws_ssh}"

    @property
    def tunnel_user(self) -> str:
        """The user the tunnel logs in as on the lab sshd: port forwarding only, no shell."""
        return TUNNEL_USER

    # --- ports -------------------------------------------------------------
    @property
    def pg_port(self) -> int:
        return self.ports.primary

    @property
    def science_port(self) -> int:
        return self.ports.science

    @property
    def replay_port(self) -> int:
        return self.ports.replay

    @property
    def pitr_port(self) -> int:
        """The PITR scratch copy's port: next to the tunnel's, so each lab (ports) has its own."""
        return self.ports.tunnel + 1

    @property
    def privateer_port(self) -> int:
        """The privateer server's sshd (annex, host network): two past the tunnel's."""
        return self.ports.tunnel + 2

    @property
    def vault_port(self) -> int:
        """privateer's vault (OpenBao dev server; its cluster listener takes the next port)."""
        return self.ports.tunnel + 3

    @property
    def all_ports(self) -> tuple[int, ...]:
        """Every loopback port the lab listens on: its LabPorts, the PITR copy's, privateer's
        server's and its vault's with the vault's cluster listener."""
        return (*vars(self.ports).values(), self.pitr_port, self.privateer_port, self.vault_port, self.vault_port + 1)

    @property
    def ssh_port(self) -> int:
        return self.ports.ssh

    @property
    def tunnel_port(self) -> int:
        return self.ports.tunnel

    @property
    def aws_ssh_port(self) -> int:
        return self.ports.aws_ssh

    # --- docker ------------------------------------------------------------
    @property
    def docker_socket(self) -> Path:
        return self.lab_dir / "docker.sock"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.docker_socket}"

    @property
    def docker_dir(self) -> Path:
        return self.lab_dir / "docker"

    @property
    def docker_root(self) -> Path:
        return self.docker_dir / "root"

    @property
    def docker_pidfile(self) -> Path:
        return self.docker_dir / "docker.pid"

    @property
    def docker_log(self) -> Path:
        return self.docker_dir / "dockerd.log"

    @property
    def docker_exec_root(self) -> Path:
        """dockerd's exec-root; under /run when the lab path would make its sockets too long."""
        local = self.docker_dir / "exec"
        if len(str(local)) <= MAX_SOCKET_PATH - EXEC_ROOT_SOCKET_DEPTH:
            return local
        digest = hashlib.sha1(str(self.lab_dir).encode()).hexdigest()[:10]
        return Path("/run") / f"montagu-lab-{digest}"

    # --- postgres primary --------------------------------------------------
    @property
    def pg_dir(self) -> Path:
        return self.lab_dir / "pg"

    @property
    def pg_data(self) -> Path:
        return self.pg_dir / "primary"

    @property
    def pg_run(self) -> Path:
        return self.pg_dir / "run"

    @property
    def pg_log(self) -> Path:
        return self.pg_dir / "primary.log"

    # --- barman ------------------------------------------------------------
    @property
    def barman_dir(self) -> Path:
        return self.lab_dir / "barman"

    @property
    def barman_conf(self) -> Path:
        return self.barman_dir / "barman.conf"

    @property
    def barman_home(self) -> Path:
        return self.barman_dir / "home"

    @property
    def barman_log(self) -> Path:
        return self.barman_dir / "log" / "barman.log"

    @property
    def pgpass(self) -> Path:
        return self.barman_dir / "pgpass"

    @property
    def cron_paused(self) -> Path:
        return self.barman_dir / "cron.paused"

    @property
    def cron_lock(self) -> Path:
        return self.barman_dir / "cron.lock"

    @property
    def barman_exe(self) -> Path:
        return self.python.parent / "barman"

    @property
    def annex_barman_site(self) -> BarmanSite:
        """barman-montagu on the annex, streaming straight from the primary with slot barman."""
        return BarmanSite("annex", BARMAN_CONTAINER, self.barman_dir, SLOT_NAME, self.pg_port)

    @property
    def aws_barman_site(self) -> BarmanSite:
        """The off-site barman-aws, streaming through the SSH tunnel with slot barman_aws."""
        return BarmanSite("aws", AWS_BARMAN_CONTAINER, self.aws_dir, AWS_SLOT_NAME, self.tunnel_port)

    @property
    def barman_sites(self) -> tuple[BarmanSite, BarmanSite]:
        return (self.annex_barman_site, self.aws_barman_site)

    # --- the off-site barman ("aws"): its files, its host's sshd, its tunnel ----
    @property
    def aws_dir(self) -> Path:
        return self.lab_dir / "aws"

    @property
    def aws_barman_conf(self) -> Path:
        return self.aws_barman_site.conf

    @property
    def aws_barman_home(self) -> Path:
        return self.aws_barman_site.home

    @property
    def aws_barman_log(self) -> Path:
        return self.aws_barman_site.log

    @property
    def aws_pgpass(self) -> Path:
        return self.aws_barman_site.pgpass

    @property
    def aws_cron_paused(self) -> Path:
        return self.aws_barman_site.cron_paused

    @property
    def aws_cron_lock(self) -> Path:
        return self.aws_barman_site.cron_lock

    @property
    def aws_home(self) -> Path:
        """Home of the off-site host's SSH user."""
        return self.lab_dir / "labaws-home"

    @property
    def aws_sshd(self) -> SshdSite:
        """The off-site host's sshd: only the aws user, who runs docker exec barman-aws."""
        return SshdSite("sshd-aws", self.lab_dir / "aws-ssh", self.aws_ssh_port, (self.aws_user,))

    @property
    def aws_sshd_config(self) -> Path:
        return self.aws_sshd.config

    @property
    def aws_sshd_pidfile(self) -> Path:
        return self.aws_sshd.pidfile

    @property
    def aws_sshd_log(self) -> Path:
        return self.aws_sshd.log

    @property
    def aws_known_hosts(self) -> Path:
        """known_hosts holding the off-site sshd's host key ([127.0.0.1]:aws_ssh)."""
        return self.aws_sshd.known_hosts

    @property
    def tunnel_dir(self) -> Path:
        return self.lab_dir / "tunnel"

    @property
    def tunnel_key(self) -> Path:
        """The tunnel's own client key (authorized for port forwarding to the primary only)."""
        return self.tunnel_dir / "tunnel_key"

    @property
    def tunnel_pidfile(self) -> Path:
        return self.tunnel_dir / "tunnel.pid"

    @property
    def tunnel_log(self) -> Path:
        return self.tunnel_dir / "tunnel.log"

    # --- ssh and starport --------------------------------------------------
    @property
    def ssh_dir(self) -> Path:
        return self.lab_dir / "ssh"

    @property
    def starport_sshd(self) -> SshdSite:
        """The lab's main sshd: the starport (the SSH user) and the tunnel's end (the tunnel user)."""
        return SshdSite("sshd", self.ssh_dir, self.ssh_port, (self.sci_user, self.tunnel_user))

    @property
    def sshd_config(self) -> Path:
        return self.starport_sshd.config

    @property
    def sshd_pidfile(self) -> Path:
        return self.starport_sshd.pidfile

    @property
    def sshd_log(self) -> Path:
        return self.starport_sshd.log

    @property
    def host_key(self) -> Path:
        return self.starport_sshd.host_key

    @property
    def client_key(self) -> Path:
        return self.ssh_dir / "client_key"

    @property
    def known_hosts(self) -> Path:
        return self.starport_sshd.known_hosts

    @property
    def known_hosts_wrong(self) -> Path:
        return self.ssh_dir / "known_hosts.wrong"

    @property
    def authorized_keys_dir(self) -> Path:
        return self.starport_sshd.authorized_keys_dir

    @property
    def sci_home(self) -> Path:
        return self.lab_dir / "labsci-home"

    @property
    def starport_dir(self) -> Path:
        return self.lab_dir / "starport"

    # --- files for the console and the tests ---------------------------------
    @property
    def config_path(self) -> Path:
        return self.lab_dir / "config.yml"

    @property
    def state_dir(self) -> Path:
        return self.lab_dir / "state"

    @property
    def lab_json(self) -> Path:
        return self.lab_dir / "lab.json"

    @property
    def replay_log(self) -> Path:
        """``docker logs`` of the last nightly WAL replay (its redo lines), kept after the container goes."""
        return self.lab_dir / "barman-replay-wal.log"

    @property
    def recover_replay_log(self) -> Path:
        """The same for the replay of privateer's copy in barman_recover."""
        return self.lab_dir / "barman-replay-wal.recover.log"

    @property
    def writer_pidfile(self) -> Path:
        return self.lab_dir / "writer.pid"

    @property
    def writer_log(self) -> Path:
        return self.lab_dir / "writer.log"

    # --- the stand-in bb8 (standin_setup.py) and the real privateer (privateer_lab.py) ---
    @property
    def annex_dir(self) -> Path:
        """The annex's side of bb8 and privateer: ``bin/bb8``, ``bin/privateer``, ``bb8/``, ``privateer/``."""
        return self.lab_dir / "annex"

    @property
    def science_dir(self) -> Path:
        """Science's side of bb8 and privateer: ``bin/bb8``, ``bin/privateer``, ``bb8/``, ``privateer/``."""
        return self.lab_dir / "science"

    @property
    def bb8_annex(self) -> Path:
        """``bb8`` on the annex (target barman_to_starport: backup only)."""
        return self.annex_dir / "bin" / "bb8"

    @property
    def bb8_science(self) -> Path:
        """``bb8`` on science (target main_db_restore into science_db_volume: restore only)."""
        return self.science_dir / "bin" / "bb8"

    @property
    def privateer_science(self) -> Path:
        """``privateer`` on science (the real one through the lab's shim; restores the annex's barman_recover)."""
        return self.science_dir / "bin" / "privateer"

    @property
    def privateer_annex(self) -> Path:
        """``privateer`` on the annex (the real one through the lab's shim: privateer_lab.py)."""
        return self.annex_dir / "bin" / "privateer"

    @property
    def privateer_venv(self) -> Path:
        """privateer's own venv, kept across rebuilds (cache/ survives the wipe)."""
        return self.lab_dir / "cache" / "privateer-venv"

    @property
    def privateer_config_path(self) -> Path:
        """A second console config for the privateer profile (nightly copy in barman_recover)."""
        return self.lab_dir / "config-privateer.yml"

    # --- lab.json ----------------------------------------------------------
    def describe(self) -> dict:
        """Everything a reader of lab.json needs: inputs, paths, ports and names."""
        paths = {
            name: str(getattr(self, name))
            for name in (
                "docker_socket",
                "docker_root",
                "docker_exec_root",
                "docker_pidfile",
                "docker_log",
                "pg_data",
                "pg_run",
                "pg_log",
                "barman_conf",
                "barman_home",
                "barman_log",
                "pgpass",
                "cron_paused",
                "cron_lock",
                "barman_exe",
                "sshd_config",
                "sshd_pidfile",
                "sshd_log",
                "client_key",
                "known_hosts",
                "known_hosts_wrong",
                "sci_home",
                "starport_dir",
                "config_path",
                "state_dir",
                "replay_log",
                "recover_replay_log",
                "writer_pidfile",
                "bb8_annex",
                "bb8_science",
                "privateer_science",
                "privateer_annex",
                "privateer_venv",
                "privateer_config_path",
                "aws_barman_conf",
                "aws_barman_home",
                "aws_barman_log",
                "aws_pgpass",
                "aws_cron_paused",
                "aws_cron_lock",
                "aws_home",
                "aws_sshd_config",
                "aws_sshd_pidfile",
                "aws_sshd_log",
                "aws_known_hosts",
                "tunnel_key",
                "tunnel_pidfile",
                "tunnel_log",
            )
        }
        return {
            "version": LAB_VERSION,
            "lab_dir": str(self.lab_dir),
            "ports": vars(self.ports).copy(),
            "venv": str(self.venv),
            "venv_id": venv_identity(self.venv),
            "python": str(self.python),
            "wal_segsize_mb": self.wal_segsize_mb,
            "docker_host": self.docker_host,
            "users": {
                "postgres": self.pg_user,
                "ssh": self.sci_user,
                "aws_ssh": self.aws_user,
                "tunnel": self.tunnel_user,
                "docker_group": DOCKER_GROUP,
            },
            "database": {"superuser": DB_SUPERUSER, "name": DB_NAME, "slot": SLOT_NAME, "aws_slot": AWS_SLOT_NAME},
            "retention_policy": RETENTION_POLICY,
            "tunnel": f"127.0.0.1:{self.tunnel_port} -> 127.0.0.1:{self.pg_port} over ssh 127.0.0.1:{self.ssh_port}",
            "containers": {
                "barman": BARMAN_CONTAINER,
                "aws_barman": AWS_BARMAN_CONTAINER,
                "science": SCIENCE_CONTAINER,
                "replay": REPLAY_CONTAINER,
            },
            "images": {"barman": BARMAN_IMAGE, "postgres": POSTGRES_IMAGE},
            "volumes": {
                "nightly": NIGHTLY_VOLUME,
                "recover": RECOVER_VOLUME,
                "science": SCIENCE_VOLUME,
                "pitr": PITR_VOLUME,
            },
            "paths": paths,
        }

    @staticmethod
    def recorded(lab_dir: Path) -> dict:
        """``lab_dir/lab.json`` as written (empty if there is none or it is unreadable)."""
        try:
            data = json.loads((Path(lab_dir) / "lab.json").read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    @staticmethod
    def load_version(lab_dir: Path) -> int | None:
        """The lab version recorded in ``lab_dir/lab.json`` (None for a lab before versions)."""
        return Layout.recorded(lab_dir).get("version")

    @staticmethod
    def load_inputs(lab_dir: Path) -> dict:
        """The constructor arguments recorded in ``lab_dir/lab.json`` (empty if there is none)."""
        return Layout.inputs(Layout.recorded(lab_dir))

    @staticmethod
    def inputs(data: dict) -> dict:
        """The constructor arguments in a read ``lab.json`` (empty for an empty one)."""
        if not data:
            return {}
        return {
            "lab_dir": Path(data["lab_dir"]),
            "ports": LabPorts(**data["ports"]),
            "venv": Path(data["venv"]),
            "python": Path(data["python"]),
            "wal_segsize_mb": int(data.get("wal_segsize_mb", DEFAULT_WAL_SEGSIZE_MB)),
        }
