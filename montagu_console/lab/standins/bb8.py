#!/usr/bin/env python3
"""Stand-in for vimc/bb8 (7cb28aa, the version montagu-bb8 pins), for the montagu-console lab.

The lab's wrapper runs it inside a throw-away container named ``bb8`` (``bb8_<32 hex>`` for
``log`` and ``status``), as /usr/local/bin/bb8 runs the bb8 image. So two concurrent backups or
restores collide on the container name, and a running ``bb8`` container shows a run under way.

    bb8 backup
    bb8 restore
    bb8 init                        (refused: the lab installs the ssh key itself)
    bb8 status [--json] [TARGET...]
    bb8 log list [--limit=<number>]
    bb8 log show [VERSION]

As in bb8: INFO lines on the console as ``LEVEL    message`` (stderr) and every line of a
backup or restore in ``<logs_dir>/bb8_<isoformat>.log`` (``%(asctime)s    %(levelname)s
%(message)s``, DEBUG, first line 60 ``*``); exit status 0, or 255 after "An error occurred:"
and the traceback. Per target, a backup runs ``mkdir -p`` of ``<bucket>/data/`` and
``<bucket>/meta/`` on the starport, refuses a target whose ``meta/metadata.json`` carries another
``instance_guid`` ("Target X has been backed up by a different instance of bb8."), rsyncs the
volume with ``--relative`` into ``<bucket>/data/`` and only then writes ``metadata.json`` =
``{"last_backup": <local-time isoformat>, "instance_guid": <machine-id>}``. A restore creates a
missing volume ("Creating docker volume with name '...'") and rsyncs ``<bucket>/data/<volume>/``
into it. Every rsync runs in a throw-away container with bb8's argv (``rsync -r -v -e "ssh -o
Compression=no ..." --perms --delete --info=progress2 --times FROM TO [--relative]``); a
non-zero exit prints "Rsync failed with code N" and "trying again... k/5", and the fifth failure
raises "rsync failed too many times".

Config (``/bb8/etc/config.json``, or ``$BB8_CONFIG``): bb8's source-config format,
``{"starport": {"addr", "user", "backup_location"}, "targets": [{"name", "type": "named_volume" |
"directory", "volume" | "path", "backup"?, "restore"?}]}``, plus what the lab needs (these are
deviations from the real format):

- ``starport.port``, ``starport.key_file``, ``starport.known_hosts``: ssh to the lab's sshd (the
  real bb8 finds its key and known_hosts in ``~/.ssh``, its ``bb8_ssh`` volume). Both files are
  mounted at the same paths into the bb8 container and into every rsync container.
- ``docker_host``: the Docker daemon of the rsync containers (the real one uses the mounted
  /var/run/docker.sock).
- ``logs_dir``: where the log files go (real: /bb8/logs/, the ``bb8_logs`` volume).
- ``rsync_image``, ``rsync_mounts``: the image of the rsync containers and extra ``SRC:DST[:ro]``
  mounts for it (real: ``instrumentisto/rsync-ssh``; the lab's image borrows the host's programs).
- ``targets[].remote_volume``: restore from ``<bucket>/data/<remote_volume>/`` instead of
  ``<bucket>/data/<volume>/``. In the lab, science's volume is ``science_db_volume`` (it shares one
  Docker daemon with the annex), while the starport holds ``montagu_db_volume``; on the real
  science both are ``montagu_db_volume``.

Also unlike bb8 (every other way it differs from vimc/bb8 as the facts file describes it):

- Remote commands (mkdir, reading and writing metadata.json, the remote mtime for ``status``)
  run with ssh from the bb8 container itself rather than each in an rsync-ssh container.
- ``status`` shows "Never backed up" for a target without metadata (bb8 crashes) and finds the
  newest mtime by its epoch (bb8 sorts the local one as text), with ``find -L | xargs stat`` in
  a container of ``rsync_image`` (bb8 uses a ``bash`` image).
- Its container is the lab's postgres image running this script with the project's Python 3.11
  (mounted read-only), on the host network, with the lab's Docker socket mounted; bb8's is the
  locally built ``bb8`` image (Python 3.8, docopt) with its config and secrets baked in, on
  Docker's default network, with /var/run/docker.sock and the ``bb8_ssh`` and ``bb8_logs``
  volumes. Its own argument parsing stands in for docopt's: a usage error prints the usage
  and exits 1.
- No ``setup``, ``setup_starport``, ``schedule``, ``bb8_link_write``, Vault or GitHub token:
  ``lab up`` writes the config, key and known_hosts (the lab's own ed25519 key and the lab
  sshd's known_hosts line, not ``{ip},{addr} <host_key>`` from Vault), and ``bb8 init`` is
  refused. No starport-metrics and no ``/etc/cron.hourly/bb8``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import signal
import subprocess
import sys
from datetime import datetime
from os.path import join

ROOT_PATH = "/bb8/etc/"
CONFIG_PATH = os.environ.get("BB8_CONFIG", join(ROOT_PATH, "config.json"))
MACHINE_ID_PATH = os.environ.get("BB8_MACHINE_ID", join(ROOT_PATH, "machine-id"))
DEFAULT_LOG_DIR = "/bb8/logs/"
RESTARTS = 5

USAGE = """\
Usage:
  bb8 backup
  bb8 restore
  bb8 init
  bb8 status [--json] [TARGET...]
  bb8 log list [--limit=<number>]
  bb8 log show [VERSION]
"""
OPTIONS = """
Options:
  --limit=<number>     How many log files to return [default: 10]
"""


# --- settings ------------------------------------------------------------------------------------


class Target:
    """One entry of ``targets``: a named volume or a directory, with its backup/restore flags."""

    def __init__(self, data: dict):
        self.name = data["name"]
        kind = data["type"]
        if kind == "directory":
            self.id, self.mount_id, self.is_volume = "Directory: " + self.name, data["path"], False
        elif kind == "named_volume":
            self.id, self.mount_id, self.is_volume = "Named volume: " + self.name, data["volume"], True
        else:
            raise Exception("Unsupported target type: " + kind)
        self.backup = data.get("backup", True)
        self.restore = data.get("restore", True)
        self.remote_volume = data.get("remote_volume", self.mount_id)


class Settings:
    def __init__(self, path: str = CONFIG_PATH, machine_id_path: str = MACHINE_ID_PATH):
        with open(path) as f:
            config = json.load(f)
        self.starport = config["starport"]
        self.targets = [Target(t) for t in config["targets"]]
        self.docker_host = config.get("docker_host")
        self.log_dir = config.get("logs_dir", DEFAULT_LOG_DIR)
        self.rsync_image = config.get("rsync_image", "instrumentisto/rsync-ssh")
        self.rsync_mounts = list(config.get("rsync_mounts", []))
        self.instance_guid: str | None
        if os.path.isfile(machine_id_path):
            with open(machine_id_path) as f:
                self.instance_guid = f.read().replace("\n", "")
        else:
            self.instance_guid = None
        self._client = None

    @property
    def docker(self):
        if self._client is None:
            import docker

            self._client = docker.DockerClient(base_url=self.docker_host) if self.docker_host else docker.from_env()
        return self._client

    def ssh_options(self) -> list[str]:
        """The lab's additions to bb8's ``ssh -o Compression=no``: port, key and known_hosts."""
        s = self.starport
        opts = []
        if s.get("port"):
            opts += ["-p", str(s["port"])]
        if s.get("key_file"):
            opts += ["-i", s["key_file"], "-o", "IdentitiesOnly=yes"]
        if s.get("known_hosts"):
            opts += [
                "-o",
                f"UserKnownHostsFile={s['known_hosts']}",
                "-o",
                "GlobalKnownHostsFile=/dev/null",
                "-o",
                "StrictHostKeyChecking=yes",
            ]
        return opts + ["-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]

    def ssh_files(self) -> list[str]:
        return [self.starport[k] for k in ("key_file", "known_hosts") if self.starport.get(k)]


def configured_log_dir() -> str:
    try:
        with open(CONFIG_PATH) as f:
            return json.load(f).get("logs_dir") or DEFAULT_LOG_DIR
    except (OSError, ValueError, AttributeError):
        return DEFAULT_LOG_DIR


# --- the starport --------------------------------------------------------------------------------


class RemotePaths:
    def __init__(self, target_name: str, starport: dict):
        self.target_name = target_name
        self.host = "{user}@{addr}".format(**starport)
        bucket = re.sub("/+", "/", "{}/{}".format(starport["backup_location"], target_name))
        self.data = f"{bucket}/data/"
        self.meta = f"{bucket}/meta/"
        self.metadata_file = join(self.meta, "metadata.json")
        self.rsync_path = f"{self.host}:{self.data}"


class RemoteCommandError(Exception):
    pass


class RemoteFileManager:
    def __init__(self, paths: RemotePaths, settings: Settings):
        self.paths = paths
        self.settings = settings

    def run_remote_cmd(self, remote_cmd: str) -> bytes:
        argv = ["ssh", *self.settings.ssh_options(), self.paths.host, remote_cmd]
        logging.debug("Running on the starport: " + remote_cmd)
        try:
            result = subprocess.run(argv, capture_output=True, timeout=300)
        except subprocess.TimeoutExpired:
            raise RemoteCommandError(f"Command '{remote_cmd}' on {self.paths.host} timed out") from None
        if result.returncode != 0:
            raise RemoteCommandError(
                f"Command '{shlex.join(argv)}' returned non-zero exit status {result.returncode}: {result.stderr!r}"
            )
        return result.stdout

    def get_metadata(self) -> dict:
        # '|| true': exit status 0 and no output when the file does not exist
        output = self.run_remote_cmd(f"cat {self.paths.metadata_file} || true")
        if output.strip():
            return json.loads(output)
        return {"last_backup": None, "instance_guid": None}

    def write_metadata(self, metadata: dict) -> None:
        self.run_remote_cmd(f"echo {shlex.quote(json.dumps(metadata))} > {self.paths.metadata_file}")

    def create_directories(self) -> None:
        self.run_remote_cmd(f"mkdir -p {self.paths.data}")
        self.run_remote_cmd(f"mkdir -p {self.paths.meta}")

    def validate_instance(self, local_guid: str | None) -> None:
        remote_guid = self.get_metadata().get("instance_guid")
        if remote_guid and local_guid and remote_guid != local_guid:
            raise Exception(f"Target {self.paths.target_name} has been backed up by a different instance of bb8.")


# --- rsync in a throw-away container -------------------------------------------------------------


class RsyncError(Exception):
    def __init__(self, code: int):
        super().__init__(f"Rsync failed with code {code}")
        self.code = code


def log_from_docker(container) -> None:
    for chunk in container.logs(stream=True):
        logging.info(chunk.strip().decode("UTF-8", "replace"))


class DockerRsync:
    def __init__(self, settings: Settings):
        self.settings = settings

    def _run_rsync(self, volumes: dict, from_path: str, to_path: str, relative: bool) -> None:
        # bb8 disables ssh compression; the lab adds its port, key and known_hosts
        ssh_cmd = " ".join(["ssh", "-o", "Compression=no", *self.settings.ssh_options()])
        cmd = [
            "rsync",
            "-r",
            "-v",
            "-e",
            ssh_cmd,
            "--perms",
            "--delete",
            "--info=progress2",
            "--times",
            from_path,
            to_path,
        ]
        if relative:
            cmd.append("--relative")
        logging.debug("Running rsync in docker with: " + " ".join(cmd))
        logging.debug("Volume mapping: " + str(volumes))
        binds = [f"{src}:{v['bind']}:{v['mode']}" for src, v in volumes.items()] + self.settings.rsync_mounts
        container = self.settings.docker.containers.run(
            self.settings.rsync_image, command=cmd, volumes=binds, detach=True, network_mode="host", working_dir="/"
        )
        try:
            log_from_docker(container)
            code = container.wait()["StatusCode"]
            if code != 0:
                raise RsyncError(code)
        except KeyboardInterrupt:
            logging.warning("Stopping container " + container.name)
            container.stop()
            raise
        finally:
            container.remove(force=True)

    def _run_rsync_with_restart(
        self, volumes: dict, from_path: str, to_path: str, relative: bool, restarts: int = RESTARTS
    ) -> None:
        attempts = 1
        while True:
            try:
                self._run_rsync(volumes, from_path, to_path, relative=relative)
                return
            except RsyncError as e:
                print(str(e), flush=True)
                attempts += 1
                if attempts > restarts:
                    raise Exception("rsync failed too many times") from None
                print(f"trying again... {attempts}/{restarts}", flush=True)

    def _get_volume_args(self, local_volume: str, volume_mode: str) -> dict:
        volumes = {path: {"bind": path, "mode": "ro"} for path in self.settings.ssh_files()}
        volumes[local_volume] = {"bind": join("/", local_volume), "mode": volume_mode}
        return volumes

    def backup_volume(self, local_volume: str, remote_path: str) -> None:
        volumes = self._get_volume_args(local_volume, "ro")
        logging.info(f"Backing up to {remote_path} from {local_volume}")
        self._run_rsync_with_restart(volumes, local_volume, remote_path, relative=True)

    def restore_volume(self, local_volume: str, remote_path: str, remote_volume: str) -> None:
        mounted_volume = join("/", local_volume)
        volumes = self._get_volume_args(local_volume, "rw")
        remote_path = f"{remote_path}{remote_volume}/"
        logging.info(f"Restoring from {remote_path} to {local_volume}")
        self._run_rsync_with_restart(volumes, remote_path, mounted_volume, relative=False)


# --- backup and restore --------------------------------------------------------------------------


def volume_exists(settings: Settings, volume: str) -> bool:
    return volume in [v.name for v in settings.docker.volumes.list()]


def run_backup() -> None:
    settings = Settings()
    rsync = DockerRsync(settings)
    logging.info(f"Backing up targets to Starport. Output will be logged to {settings.log_dir}")
    starport = settings.starport
    logging.info(f"Backing up to {starport['addr']}: ")
    for target in settings.targets:
        logging.info("- " + target.id)
        if not target.backup:
            logging.info(f"  (Skipping backing up {target.name} - backup is false in config)")
            continue
        fm = RemoteFileManager(RemotePaths(target.name, starport), settings)
        fm.create_directories()
        fm.validate_instance(settings.instance_guid)
        rsync.backup_volume(target.mount_id, fm.paths.rsync_path)
        fm.write_metadata(
            {"last_backup": datetime.now().astimezone().isoformat(), "instance_guid": settings.instance_guid}
        )


def run_restore() -> None:
    settings = Settings()
    rsync = DockerRsync(settings)
    logging.info(f"Restoring targets from Starport. Output will be logged to {settings.log_dir}")
    starport = settings.starport
    logging.info(f"Restoring from {starport['addr']}: ")
    logging.info(f"Remote directory: {starport['backup_location']}")
    for target in settings.targets:
        logging.info("- " + target.id)
        if not target.restore:
            logging.info(f"  (Skipping restoring {target.name} - restore is false in config)")
            continue
        paths = RemotePaths(target.name, starport)
        if target.is_volume and not volume_exists(settings, target.mount_id):
            print(f"Creating docker volume with name '{target.mount_id}'", flush=True)
            settings.docker.volumes.create(target.mount_id)
        rsync.restore_volume(target.mount_id, paths.rsync_path, target.remote_volume)


def run_init() -> None:
    raise Exception("bb8 init is not part of the lab's stand-in: the lab writes the ssh key and known_hosts itself")


def with_logging(do, log_dir: str) -> None:
    os.makedirs(log_dir, exist_ok=True)
    filename = join(log_dir, f"bb8_{datetime.now().isoformat()}.log")
    logging.basicConfig(filename=filename, level=logging.DEBUG, format="%(asctime)s    %(levelname)s    %(message)s")
    logging.info("*" * 60)
    console = logging.StreamHandler()
    console.setLevel(logging.INFO)
    console.setFormatter(logging.Formatter("%(levelname)s    %(message)s"))
    logging.getLogger("").addHandler(console)
    try:
        do()
    except Exception as e:
        logging.error("An error occurred:", exc_info=e)
        sys.exit(-1)


# --- status --------------------------------------------------------------------------------------

NEWEST_MTIME = 'find -L {path} -print0 | xargs -0 stat --format "%Y :%y" | sort -nr | cut -d: -f2- | head -n 1'


def normalize_timestamp(text: str) -> datetime:
    from dateutil import parser

    return parser.parse(text).replace(microsecond=0).astimezone()


def interpret_timestamp_output(raw: bytes) -> datetime | None:
    text = raw.decode("utf-8").strip()
    return normalize_timestamp(text) if text else None


def last_modified_local(target: Target, settings: Settings) -> datetime | None:
    if target.is_volume and not volume_exists(settings, target.mount_id):
        return None
    output = settings.docker.containers.run(
        settings.rsync_image,
        command=["sh", "-c", NEWEST_MTIME.format(path="/data")],
        volumes=[f"{target.mount_id}:/data:ro", *settings.rsync_mounts],
        network_mode="none",
        remove=True,
    )
    return interpret_timestamp_output(output)


def target_status(target: Target, settings: Settings) -> dict:
    paths = RemotePaths(target.name, settings.starport)
    fm = RemoteFileManager(paths, settings)
    last = fm.get_metadata().get("last_backup")
    return {
        "target": target.name,
        "last_backup": normalize_timestamp(last) if last else None,
        "last_modified_local": last_modified_local(target, settings),
        "last_modified_remote": interpret_timestamp_output(fm.run_remote_cmd(NEWEST_MTIME.format(path=paths.data))),
    }


def print_target_status(data: dict) -> None:
    last_backup, mod_local, mod_remote = data["last_backup"], data["last_modified_local"], data["last_modified_remote"]
    print(
        f"""
{data["target"]}
------------
Last backup:               {last_backup or "Never backed up"}
Local copy last modified:  {mod_local or "No files present"}
Remote copy last modified: {mod_remote or "No files present"}""",
        flush=True,
    )
    if mod_local and (not last_backup or mod_local > last_backup):
        print("Warning: Data has been modified since last backup. Consider running bb8 backup.")
    if mod_remote and (not mod_local or mod_remote > mod_local):
        print("Warning: Remote data has been modified since last restore. Consider running bb8 restore.")


def serialize_date(obj):
    if isinstance(obj, datetime):
        return obj.astimezone().isoformat(" ")
    raise TypeError(f"Type {type(obj)} not serializable")


def print_status(as_json: bool, names: list[str]) -> None:
    settings = Settings()
    targets = settings.targets
    if names:
        targets = [t for t in targets if t.name in names]
        remainder = set(names) - {t.name for t in targets}
        if remainder:
            print("Unknown targets specified: " + " ".join(sorted(remainder)))
            sys.exit(-1)
    statuses = (target_status(t, settings) for t in targets)
    if as_json:
        print(json.dumps(list(statuses), indent=4, default=serialize_date))
    else:
        for status in statuses:
            print_target_status(status)


# --- logs ----------------------------------------------------------------------------------------


def all_log_files(log_dir: str) -> list[str]:
    try:
        return sorted(os.listdir(log_dir), reverse=True)
    except FileNotFoundError:
        return []


def list_logs(log_dir: str, n: int) -> None:
    files = all_log_files(log_dir)
    for name in files[:n]:
        print(name)
    if len(files) > n:
        print(f"Results truncated, use bb8 log --list --limit={len(files)} to view all")


def show_log(log_dir: str, version: str | None) -> None:
    files = all_log_files(log_dir)
    version = version or (files[0] if files else None)
    if not version:
        print("No logs exist")
        return
    path = join(log_dir, version)
    if not os.path.exists(path) and os.path.exists(join(log_dir, f"bb8_{version}.log")):
        path = join(log_dir, f"bb8_{version}.log")
    try:
        with open(path, "rb") as f:
            sys.stdout.buffer.write(f.read())
    except OSError as e:
        print(f"cat: {path}: {e.strerror}", file=sys.stderr)


# --- command line --------------------------------------------------------------------------------


def usage_error() -> None:
    print(USAGE, end="", file=sys.stderr)
    sys.exit(1)


def _interrupt(signum, frame):
    raise KeyboardInterrupt()


def main(argv: list[str]) -> None:
    if argv[:1] in (["-h"], ["--help"]):
        print(USAGE + OPTIONS, end="")
        return
    signal.signal(signal.SIGTERM, _interrupt)  # `docker stop bb8`, or a cancelled console run
    command, rest = (argv[0], argv[1:]) if argv else (None, [])
    if command in ("backup", "restore", "init") and not rest:
        with_logging({"backup": run_backup, "restore": run_restore, "init": run_init}[command], configured_log_dir())
    elif command == "status":
        as_json = "--json" in rest
        names = [a for a in rest if a != "--json"]
        if any(a.startswith("-") for a in names):
            usage_error()
        print_status(as_json, names)
    elif command == "log" and rest[:1] == ["list"]:
        opts = rest[1:]
        limit = "10"
        if len(opts) == 1 and opts[0].startswith("--limit="):
            limit = opts[0].split("=", 1)[1]
        elif len(opts) == 2 and opts[0] == "--limit":
            limit = opts[1]
        elif opts:
            usage_error()
        if not limit.isdigit():
            usage_error()
        list_logs(configured_log_dir(), int(limit))
    elif command == "log" and rest[:1] == ["show"] and len(rest) <= 2:
        show_log(configured_log_dir(), rest[1] if len(rest) == 2 else None)
    else:
        usage_error()


if __name__ == "__main__":
    main(sys.argv[1:])
