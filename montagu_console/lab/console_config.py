"""The console's config files pointing at one lab: ``config.yml`` (bb8 profile) and
``config-privateer.yml`` (privateer profile: the nightly copy in barman_recover, restored by the
real ``privateer restore barman_recover --server=annex --to-volume science_db_volume`` on science,
through the lab's wrapper and shim: privateer_lab.py). Both share the lab's state dir, as two
profiles of one estate would."""

from __future__ import annotations

import json
import os
from pathlib import Path

from . import pg_container
from .images import host_mounts
from .layout import (
    AWS_BARMAN_CONTAINER,
    AWS_SLOT_NAME,
    BARMAN_CONTAINER,
    BARMAN_SERVER,
    DB_NAME,
    DB_SUPERUSER,
    NIGHTLY_VOLUME,
    PITR_MOUNT,
    PITR_VOLUME,
    POSTGRES_IMAGE,
    RECOVER_VOLUME,
    SCIENCE_CONTAINER,
    SCIENCE_VOLUME,
    SLOT_NAME,
    STARPORT_TARGET,
    TIMESTAMP_FILE,
    Layout,
)
from .privateer_lab import SERVER as PRIVATEER_SERVER

REPLAY_TIMEOUT = 600
READY_TIMEOUT = 600
RPO_SQL = 'SELECT max("timestamp") FROM api_access_log'
VERIFY = [
    {"name": "api_access_log has rows", "sql": "SELECT count(*) FROM api_access_log", "expect": "> 0"},
    {"name": "newest api_access_log entry", "sql": RPO_SQL, "expect": "not null"},
]

TEMPLATE = """\
# Written by `montagu-console lab up`. Points the console at the embedded lab ({profile} profile).
refresh_seconds: 5
state_dir: {state_dir}
lock_dir: {lock_dir}                 # this lab's own: consoles of other labs on the machine never share a lock
hosts:
  annex:
    transport: local
    docker: {docker_host}
  science:
    transport: local
    docker: {docker_host}
  starport:
    transport: ssh
    host: 127.0.0.1
    port: {ssh_port}
    user: {sci_user}
    key_file: {client_key}
    known_hosts: {known_hosts}
  # the off-site barman's host: its own sshd; {aws_user} runs docker exec {aws_container} there
  aws:
    transport: ssh
    host: 127.0.0.1
    port: {aws_ssh_port}
    user: {aws_user}
    key_file: {client_key}
    known_hosts: {aws_known_hosts}
# psql on the primary through barman-montagu, which holds the passfile
primary:
  host: annex
  command: {primary_command}
barman:
  - name: annex
    host: annex
    server: {server}
    command: [docker, -H, {docker_host}, exec, {barman_container}, barman]
    container: {barman_container}
    home: {barman_home}               # inside barman-montagu (mounted at the same path)
    slot: {slot}
  # streams through an SSH tunnel (127.0.0.1:{tunnel_port} -> the primary); its Docker is not
  # visible from here, so no container
  - name: aws
    host: aws
    server: {server}
    command: [docker, -H, {docker_host}, exec, {aws_container}, barman]
    home: {aws_barman_home}
    slot: {aws_slot}
nightly:
  host: annex
  volume: {nightly_volume}
  timestamp_file: {timestamp_file}
  profile: {profile}
  mount: {nightly_mount}                  # where barman-montagu mounts that volume
  # barman-replay-wal: the lab's postgres image, started as root like montagu-db (it hands
  # /pgdata to labpg), with the host's programs mounted; it listens on $PGPORT from env
  replay:
    image: {postgres_image}
    command: {replay_command}
    user: "0"
    data_dir: /pgdata
    ready_command: {ready_command}
    timeout_seconds: {replay_timeout}
    mounts: {replay_mounts}
    env: {replay_env}
  ship_command: {ship_command}
# point-in-time recovery: barman-montagu mounts the scratch volume at {pitr_mount}
pitr:
  volume: {pitr_volume}
  mount: {pitr_mount}
  port: {pitr_port}
starport:
  host: starport
  path: ~/starport
  targets: [{target}]
science:
  host: science
  container: {science_container}
  volume: {science_volume}
  data_dir: /pgdata
  db_user: {db_user}
  db_name: {db_name}
  profile: {profile}
  restore_command: {restore_command}
  ready_timeout_seconds: {ready_timeout}
  verify: {verify}
  rpo_sql: {rpo_sql}
"""


def _yaml(value) -> str:
    """A value in YAML flow style (JSON is valid YAML)."""
    return json.dumps(value)


def primary_command(lab: Layout) -> list[str]:
    """psql connected to the primary, run in barman-montagu (its PGPASSFILE has the barman role)."""
    return [
        "docker",
        "-H",
        lab.docker_host,
        "exec",
        BARMAN_CONTAINER,
        "psql",
        "-h",
        "127.0.0.1",
        "-p",
        str(lab.pg_port),
        "-U",
        "barman",
        "-d",
        DB_NAME,
    ]


def render(lab: Layout, profile: str = "bb8") -> str:
    """The config text for ``profile`` (``bb8`` or ``privateer``)."""
    port = lab.replay_port
    ready = f"psql -h /tmp -U {DB_SUPERUSER} -d {DB_NAME} -Atc 'select pg_is_in_recovery()' | grep -qx f"
    mounts = host_mounts()
    if profile == "bb8":
        volume, mount = NIGHTLY_VOLUME, "/nightly"
        restore = [str(lab.bb8_science), "restore"]
    else:
        volume, mount = RECOVER_VOLUME, "/recover"
        restore = [
            str(lab.privateer_science),
            "restore",
            RECOVER_VOLUME,
            f"--server={PRIVATEER_SERVER}",
            "--to-volume",
            SCIENCE_VOLUME,
        ]
    return TEMPLATE.format(
        profile=profile,
        state_dir=lab.state_dir,
        lock_dir=lab.lab_dir / "locks",
        docker_host=lab.docker_host,
        ssh_port=lab.ssh_port,
        sci_user=lab.sci_user,
        client_key=lab.client_key,
        known_hosts=lab.known_hosts,
        aws_ssh_port=lab.aws_ssh_port,
        aws_user=lab.aws_user,
        aws_known_hosts=lab.aws_known_hosts,
        aws_container=AWS_BARMAN_CONTAINER,
        aws_barman_home=lab.aws_barman_home,
        aws_slot=AWS_SLOT_NAME,
        slot=SLOT_NAME,
        tunnel_port=lab.tunnel_port,
        primary_command=_yaml(primary_command(lab)),
        server=BARMAN_SERVER,
        barman_container=BARMAN_CONTAINER,
        barman_home=lab.barman_home,
        nightly_volume=volume,
        timestamp_file=TIMESTAMP_FILE,
        nightly_mount=mount,
        postgres_image=POSTGRES_IMAGE,
        replay_command=_yaml(pg_container.postgres_command("$PGPORT")),  # PGPORT: replay_env
        ready_command=_yaml(["sh", "-c", ready]),
        replay_timeout=REPLAY_TIMEOUT,
        replay_mounts=_yaml([mounts[i + 1] for i in range(0, len(mounts), 2)]),
        replay_env=_yaml(pg_container.environment(port)),
        ship_command=_yaml([str(lab.bb8_annex), "backup"]),
        pitr_volume=PITR_VOLUME,
        pitr_mount=PITR_MOUNT,
        pitr_port=lab.pitr_port,
        target=STARPORT_TARGET,
        science_container=SCIENCE_CONTAINER,
        science_volume=SCIENCE_VOLUME,
        db_user=DB_SUPERUSER,
        db_name=DB_NAME,
        restore_command=_yaml(restore),
        ready_timeout=READY_TIMEOUT,
        verify=_yaml(VERIFY),
        rpo_sql=_yaml(RPO_SQL),
    )


def write(lab: Layout) -> Path:
    """Write LAB/config.yml and LAB/config-privateer.yml (mode 600) and create the console's
    state dir; return the path of config.yml."""
    lab.state_dir.mkdir(exist_ok=True)
    for path, profile in ((lab.config_path, "bb8"), (lab.privateer_config_path, "privateer")):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as config:
            config.write(render(lab, profile))
    return lab.config_path
