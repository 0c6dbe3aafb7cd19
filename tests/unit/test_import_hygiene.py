"""Import hygiene: the headless core never imports Textual, and imports flow one way only.

`check` must start fast and run without a terminal (cron, Nagios), so nothing it loads may pull
in Textual; and the layers contract in pyproject.toml keeps views and actions above collection,
the health rules, probes, transports and the config, with the shared modules (clock, text,
redact, errors, humanfmt) at the bottom.
"""

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_check_path_does_not_import_textual():
    code = (
        "import sys, montagu_console.cli, montagu_console.collect, montagu_console.check, "
        "montagu_console.lab, montagu_console.clock, montagu_console.text; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'textual' or m.startswith('montagu_console.tui'));"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr


def _contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def test_contracts_cover_the_shared_modules_and_a_layers_contract():
    contracts = {c["type"]: c for c in _contracts()}
    forbidden = contracts["forbidden"]
    assert {"montagu_console.clock", "montagu_console.text"} <= set(forbidden["source_modules"])
    layers = " | ".join(contracts["layers"]["layers"])
    for module in ("tui", "actions", "collect", "health", "probes", "transports", "config", "clock", "text"):
        assert f"montagu_console.{module}" in layers, module
    # no exception is hidden in the contract: a wrong-way import must be fixed, not ignored
    assert not any(c.get("ignore_imports") for c in _contracts())


def test_import_linter_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    r = subprocess.run([str(lint)], capture_output=True, text=True, cwd=ROOT)
    n = len(_contracts())
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"Contracts: {n} kept, 0 broken" in r.stdout
