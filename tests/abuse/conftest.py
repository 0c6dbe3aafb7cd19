"""Fixtures of the abuse suite."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from pathlib import Path

import pytest


@pytest.fixture
def starport_copy(lab):
    """A copy of the lab's starport directory that the starport's SSH user can read, to poison freely."""
    root = Path(tempfile.mkdtemp(prefix="montagu-abuse-starport-", dir="/tmp"))
    try:
        os.chmod(root, 0o755)
        shutil.copytree(lab.starport_dir, root / "starport", symlinks=True)
        yield root / "starport"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def chown_tree(path: Path, user: str) -> None:
    """Give a copied tree to the lab user that reads it over SSH."""
    uid, gid = pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid
    os.chown(path, uid, gid, follow_symlinks=False)
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), uid, gid, follow_symlinks=False)


def add_target(starport: Path, name: str, metadata: bytes) -> None:
    """A starport target in bb8's layout whose meta/metadata.json holds ``metadata`` verbatim."""
    meta = starport / name / "meta"
    meta.mkdir(parents=True)
    (meta / "metadata.json").write_bytes(metadata)
