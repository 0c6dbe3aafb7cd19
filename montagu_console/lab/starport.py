"""The starport in bb8's layout, filled with real rsync over the lab sshd.

``~labsci/starport`` -> ``LAB/starport``; the annex ships ``montagu_db_volume`` to
``starport/barman_to_starport/data/montagu_db_volume/`` and writes ``meta/metadata.json``;
science restores from ``starport/main_db_restore``, a link to ``barman_to_starport``.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

from . import sshd
from .docker_daemon import volume_path
from .layout import NIGHTLY_VOLUME, RESTORE_TARGET, STARPORT_TARGET, Layout
from .proc import run
from .users import ids

RSYNC_FLAGS = ["-r", "--perms", "--delete", "--times"]


def create(lab: Layout) -> None:
    """Create LAB/starport and the SSH user's home with its ``starport`` link, owned by that user."""
    uid, gid = ids(lab.sci_user)
    for path in (lab.sci_home, lab.starport_dir):
        path.mkdir(exist_ok=True)
        os.chown(path, uid, gid)
    link = lab.sci_home / "starport"
    link.symlink_to(lab.starport_dir)
    os.lchown(link, uid, gid)


def remote_data(target: str, volume: str = NIGHTLY_VOLUME) -> str:
    """Path of a target's copy of ``volume``, relative to the SSH user's home."""
    return f"starport/{target}/data/{volume}/"


def metadata_json(last_backup: datetime) -> str:
    """bb8's metadata.json for a backup finished at ``last_backup``."""
    machine_id = Path("/etc/machine-id").read_text().strip()
    return json.dumps({"last_backup": last_backup.isoformat(), "instance_guid": machine_id})


def ship_nightly(lab: Layout) -> None:
    """What ``bb8 backup`` does on the annex: mkdir, rsync the volume, write metadata.json, link."""
    base = f"starport/{STARPORT_TARGET}"
    sshd.ssh(lab, f"mkdir -p {base}/data {base}/meta", step="starport mkdir")
    run("rsync nightly to starport",
        ["rsync", *RSYNC_FLAGS, "-e", sshd.rsync_shell(lab), volume_path(lab, NIGHTLY_VOLUME) + "/",
         f"{lab.sci_user}@127.0.0.1:{remote_data(STARPORT_TARGET)}"], timeout=1800)
    sshd.ssh(lab, f"cat > {base}/meta/metadata.json", step="write metadata.json",
             input=metadata_json(datetime.now().astimezone()))
    sshd.ssh(lab, f"ln -sfn {STARPORT_TARGET} starport/{RESTORE_TARGET}", step="link main_db_restore")


def write_metadata(lab: Layout, target: str, last_backup: datetime | None, raw: str | None = None) -> Path:
    """Write (``raw`` verbatim, or bb8's JSON) or, when both are None, delete a target's metadata.json."""
    path = lab.starport_dir / target / "meta" / "metadata.json"
    if raw is None and last_backup is None:
        path.unlink(missing_ok=True)
        return path
    uid, gid = ids(lab.sci_user)
    for directory in (path.parent.parent, path.parent):
        directory.mkdir(exist_ok=True)
        os.chown(directory, uid, gid)
    path.write_text(raw if raw is not None else metadata_json(last_backup))
    os.chown(path, uid, gid)
    return path
