"""The headless core never imports Textual: `check` must start fast and run without a terminal."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_check_path_does_not_import_textual():
    code = ("import sys, montagu_console.cli, montagu_console.collect, montagu_console.check, "
            "montagu_console.lab; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'textual' or m.startswith('montagu_console.tui'));"
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr


def test_import_linter_contract():
    lint = Path(sys.executable).with_name("lint-imports")
    r = subprocess.run([str(lint)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Contracts: 1 kept, 0 broken" in r.stdout
