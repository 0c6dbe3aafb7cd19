"""What a lab records of the python environment it was built with (its containers mount it)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from montagu_console.lab.layout import Layout, venv_identity


def _venv(path: Path) -> Path:
    path.mkdir()
    (path / "pyvenv.cfg").write_text("home = /usr/bin\n")
    return path


def test_a_venv_made_anew_at_the_same_path_is_another_venv(tmp_path):
    venv = _venv(tmp_path / ".venv")
    first = venv_identity(venv)
    assert first and first == venv_identity(venv)
    shutil.rmtree(venv)
    keep = _venv(tmp_path / "keep")  # holds the old inode number so it cannot come back at once
    _venv(venv)
    assert venv_identity(venv) not in (None, first)
    assert venv_identity(keep) != venv_identity(venv)


def test_no_venv_has_no_identity(tmp_path):
    assert venv_identity(tmp_path / "nothing") is None


def test_lab_json_records_the_venv_identity_and_reads_back(tmp_path):
    lab = Layout(tmp_path / "lab", venv=Path(sys.prefix))
    lab.lab_dir.mkdir()
    lab.lab_json.write_text(json.dumps(lab.describe()))
    assert Layout.recorded(lab.lab_dir)["venv_id"] == venv_identity(Path(sys.prefix)) is not None
    assert Layout.load_inputs(lab.lab_dir)["venv"] == Path(sys.prefix)
    lab.lab_json.write_text("[1, 2]")  # not a lab.json: nothing recorded
    assert Layout.recorded(lab.lab_dir) == {} and Layout.load_version(lab.lab_dir) is None
