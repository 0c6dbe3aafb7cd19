"""The console's config.yml pointing at one lab."""

from __future__ import annotations

import os
from pathlib import Path

from .layout import (BARMAN_CONTAINER, BARMAN_SERVER, DB_NAME, DB_SUPERUSER, NIGHTLY_VOLUME,
                     SCIENCE_CONTAINER, SCIENCE_VOLUME, STARPORT_TARGET, TIMESTAMP_FILE, Layout)

TEMPLATE = """\
# Written by `montagu-console lab up`. Points the console at the embedded lab.
refresh_seconds: 5
state_dir: {state_dir}
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
barman:
  host: annex
  server: {server}
  command: [docker, -H, {docker_host}, exec, {barman_container}, barman]
  container: {barman_container}
nightly:
  host: annex
  volume: {nightly_volume}
  timestamp_file: {timestamp_file}
  profile: bb8
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
  profile: bb8
"""


def write(lab: Layout) -> Path:
    """Write LAB/config.yml (mode 600) and create the console's state dir; return the config path."""
    lab.state_dir.mkdir(exist_ok=True)
    text = TEMPLATE.format(
        state_dir=lab.state_dir, docker_host=lab.docker_host, ssh_port=lab.ssh_port, sci_user=lab.sci_user,
        client_key=lab.client_key, known_hosts=lab.known_hosts, server=BARMAN_SERVER,
        barman_container=BARMAN_CONTAINER, nightly_volume=NIGHTLY_VOLUME, timestamp_file=TIMESTAMP_FILE,
        target=STARPORT_TARGET, science_container=SCIENCE_CONTAINER, science_volume=SCIENCE_VOLUME,
        db_user=DB_SUPERUSER, db_name=DB_NAME)
    fd = os.open(lab.config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as config:
        config.write(text)
    return lab.config_path
