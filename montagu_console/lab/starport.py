"""The starport in bb8's layout, filled by the stand-in ``bb8 backup`` (real rsync over the lab sshd).

``~labsci/starport`` -> ``LAB/starport``; the annex's bb8 ships ``montagu_db_volume`` to
``starport/barman_to_starport/data/montagu_db_volume/`` and writes ``meta/metadata.json``;
science's bb8 restores from ``starport/main_db_restore``, a link to ``barman_to_starport``.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

from . import standin_setup
from .layout import RESTORE_TARGET, STARPORT_TARGET, Layout
from .users import ids


def create(lab: Layout) -> None:
    """Create LAB/starport and the SSH user's home with its ``starport`` link, owned by that user.

    ``starport/main_db_restore`` links to ``barman_to_starport`` (as the two targets shared one
    directory before bb8's 2018 layout): science's ``bb8 restore`` reads what the annex's
    ``bb8 backup`` wrote. The link dangles until the first backup creates the target.
    """
    uid, gid = ids(lab.sci_user)
    for path in (lab.sci_home, lab.starport_dir):
        path.mkdir(exist_ok=True)
        os.chown(path, uid, gid)
    for link, target in (
        (lab.sci_home / "starport", lab.starport_dir),
        (lab.starport_dir / RESTORE_TARGET, Path(STARPORT_TARGET)),
    ):
        link.symlink_to(target)
        os.lchown(link, uid, gid)


def metadata_json(last_backup: datetime) -> str:
    """bb8's metadata.json for a backup finished at ``last_backup``."""
    machine_id = Path("/etc/machine-id").read_text().strip()
    return json.dumps({"last_backup": last_backup.isoformat(), "instance_guid": machine_id})


def ship_nightly(lab: Layout) -> None:
    """``bb8 backup`` on the annex (the stand-in): montagu_db_volume to barman_to_starport."""
    standin_setup.bb8(lab, "annex", "backup")


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
    if raw is None:
        assert last_backup is not None  # both None returned above
        raw = metadata_json(last_backup)
    path.write_text(raw)
    os.chown(path, uid, gid)
    return path
