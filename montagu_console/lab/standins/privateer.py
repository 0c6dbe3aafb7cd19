#!/usr/bin/env python3
"""Stand-in for ``privateer restore`` (reside-ic/privateer2, as montagu-config's backup.md uses it),
for the montagu-console lab.

    privateer [--path=PATH] [--as=NAME] restore VOLUME [--server=NAME] [--to-volume=TARGET] [--dry-run]

Like privateer it prints "Restoring 'VOLUME' from 'SERVER' to 'TARGET'", starts a throw-away
client container running ``rsync -av --delete SERVER:/privateer/local/VOLUME/
/privateer/volumes/TARGET/`` with TARGET mounted there and its keys at /privateer/keys, prints
"Restore command started. To stream progress, run:" and ``docker logs -f <container>``, waits,
then prints "Restore completed successfully! Container logs:" and the last 10 lines (and removes
the container), or "An error occured! Container logs:" and the last 20 lines and raises (a
traceback, exit status 1; the container is kept for its logs). ``--dry-run`` prints the
``docker run`` command instead.

Config (``privateer.json`` in --path, as privateer's): ``servers[] {name, hostname, port,
key_volume}``, ``clients[] {name}``, ``volumes[] {name, local?}``, plus what the lab needs
(deviations): ``servers[].username`` (the SSH login; privateer's server is root in its own
container), ``key_volume`` may be a host directory (holding ``id_ed25519``, ``known_hosts``,
``config`` and ``ssh_config``, the client image's /etc/ssh/ssh_config), and ``lab {docker_host,
image, mounts}``: the Docker daemon, the client image (instead of mrcide/privateer-client) and its
extra ``SRC:DST[:ro]`` mounts. On the lab's server side, logins with this key land in a
throw-away container holding the server's local volumes at /privateer/local/<volume>
(an ``authorized_keys`` forced command), as privateer's server container does.
"""

from __future__ import annotations

import json
import os
import sys

USAGE = """\
Usage:
  privateer [options] restore <volume> [--server=NAME] [--to-volume=NAME]

Options:
  --path=PATH  The path to the configuration, or directory with privateer.json
  --as=NAME    The machine to run the command as
  --dry-run    Do nothing, but print docker commands
"""


def read_config(path: str | None) -> dict:
    if not path:
        path = "privateer.json"
    elif os.path.isdir(path):
        path = os.path.join(path, "privateer.json")
    if not os.path.exists(path):
        raise Exception(f"Did not find privateer configuration at '{path}'")
    with open(path) as f:
        return json.load(f)


def match_value(given, valid, name):
    if given is None:
        if len(valid) == 1:
            return valid[0]
        raise Exception(f"Please provide a value for {name}")
    if given not in valid:
        valid_str = ", ".join([f"'{x}'" for x in valid])
        raise Exception(f"Invalid {name} '{given}': valid options: {valid_str}")
    return given


def log_tail(container, n: int) -> list[str]:
    logs = container.logs().decode("utf-8", "replace").strip().split("\n")
    if len(logs) > n:
        return [f"(ommitting {len(logs) - n} lines of logs)"] + logs[-n:]
    return logs


def restore(cfg: dict, name: str, volume: str, *, server: str | None, to_volume: str | None, dry_run: bool) -> None:
    import docker

    if name not in [c["name"] for c in cfg.get("clients", [])]:
        raise Exception(f"Invalid configuration '{name}': not a client")
    server = match_value(server, [s["name"] for s in cfg["servers"]], "server")
    volume = match_value(volume, [v["name"] for v in cfg["volumes"]], "volume")
    to_volume = to_volume or volume
    srv = next(s for s in cfg["servers"] if s["name"] == server)
    lab = cfg.get("lab", {})
    image = lab.get("image", "mrcide/privateer-client:main")
    keys = srv["key_volume"]
    dest_mount = f"/privateer/volumes/{to_volume}"
    mounts = [
        f"{keys}:/privateer/keys:ro",
        f"{to_volume}:{dest_mount}",
        f"{os.path.join(keys, 'ssh_config')}:/etc/ssh/ssh_config:ro",
        *lab.get("mounts", []),
    ]
    src = f"{server}:/privateer/local/{volume}/"
    command = ["rsync", "-av", "--delete", src, f"{dest_mount}/"]
    if dry_run:
        cmd = ["docker", "run", "--rm", "--network", "host", *[x for m in mounts for x in ("-v", m)], image, *command]
        print("Command to manually run restore:")
        print()
        print(f"  {' '.join(cmd)}")
        print()
        print(f"This will restore data from the server '{server}' into our")
        print(f"local volume '{to_volume}'")
        print()
        print("Note that this uses hostname/port information for the server")
        print("contained within (config), along with our identity (id_ed25519)")
        print("in the directory /privateer/keys")
        return
    print(f"Restoring '{volume}' from '{server}' to '{to_volume}'", flush=True)
    client = docker.DockerClient(base_url=lab["docker_host"]) if lab.get("docker_host") else docker.from_env()
    container = client.containers.run(image, command=command, volumes=mounts, network_mode="host", detach=True)
    print("Restore command started. To stream progress, run:")
    print(f"  docker logs -f {container.name}", flush=True)
    result = container.wait()
    if result["StatusCode"] == 0:
        print("Restore completed successfully! Container logs:")
        print("\n".join(log_tail(container, 10)), flush=True)
        container.remove()
    else:
        print("An error occured! Container logs:")
        print("\n".join(log_tail(container, 20)), flush=True)
        raise Exception(f"Restore failed; see {container.name} logs for details")


def parse(argv: list[str]) -> dict:
    opts: dict = {"--path": None, "--as": None, "--dry-run": False, "--server": None, "--to-volume": None}
    positional = []
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg == "--dry-run":
            opts["--dry-run"] = True
        elif arg in ("-h", "--help"):
            print(USAGE, end="")
            sys.exit(0)
        elif arg.startswith("--"):
            key, eq, value = arg.partition("=")
            if key not in opts or key == "--dry-run":
                raise SystemExit(USAGE)
            if not eq:
                if not args:
                    raise SystemExit(USAGE)
                value = args.pop(0)
            opts[key] = value
        else:
            positional.append(arg)
    if len(positional) != 2 or positional[0] != "restore":
        raise SystemExit(USAGE)
    return opts | {"<volume>": positional[1]}


def main(argv: list[str]) -> None:
    opts = parse(argv)
    cfg = read_config(opts["--path"])
    name = opts["--as"]
    if not name:
        raise Exception(
            "Can't determine identity; did you forget to configure?Alternatively, pass '--as=NAME' to this command"
        )
    restore(
        cfg, name, opts["<volume>"], server=opts["--server"], to_volume=opts["--to-volume"], dry_run=opts["--dry-run"]
    )


if __name__ == "__main__":
    main(sys.argv[1:])
