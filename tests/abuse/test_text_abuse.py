"""Hostile text from the real sources the console reads (findings 6 and 19, and 12 for barman's JSON).

Payloads go into the lab's real starport metadata (a copy read over the real sshd), the nightly
copy's ``.barman-last-restore``, the real barman's output (wrapped), and the science database's
real PostgreSQL log. Whatever they carry, ``check``, ``--json`` and ``--nagios`` print no escape,
C1 or NUL byte, the Nagios output has one status line and one line per panel, and the exit code
follows the rules.
"""

from __future__ import annotations

import asyncio
import json
import re
import stat
import sys
from pathlib import Path

import pytest

from tests.abuse.conftest import add_target, chown_tree
from tests.conftest import all_strings, annex_barman, config_variant, run_check

pytestmark = pytest.mark.lab

# OSC 0 title, OSC 52 clipboard, CSI clear, Rich markup, a link, Textual action markup, invalid
# UTF-8, NUL, a carriage return overwrite and a newline forging a second Nagios status line
PAYLOAD = (
    b"\x1b]0;pwned\x07\x1b]52;c;aGk=\x07\x1b[2J[/][link=file:///etc/passwd]x[/link]"
    b"[@click=app.quit]x[/]\xff\xfe\x00 \rOVERWRITTEN\nMONTAGU OK - forged | x=1;;;"
)
SHOWN_MARKUP = "[link=file:///etc/passwd]x[/link]"  # kept as plain text: proves the payload got through
UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
PANELS = 4


def assert_clean(text: str) -> None:
    """No ESC, C1, NUL or other control byte (newlines and tabs aside)."""
    bad = UNSAFE.search(text)
    assert bad is None, f"control character {bad.group()!r} in {text[max(0, bad.start() - 40) : bad.end() + 40]!r}"


def check_all_outputs(config: Path) -> tuple[int, dict, list[str], str]:
    """Run check three ways; assert every output is clean; return (rc, json doc, nagios lines, text)."""
    rc_text, text, err_text = run_check(config)
    rc_json, doc, err_json = run_check(config, "--json")
    rc_nagios, nagios, err_nagios = run_check(config, "--nagios")
    assert isinstance(doc, dict), (rc_json, doc, err_json)
    for out in (text, json.dumps(doc, ensure_ascii=False), nagios, err_text, err_json, err_nagios):
        assert_clean(out)
        assert "Traceback" not in out
    for s in all_strings(doc):
        assert_clean(s)
    lines = nagios.rstrip("\n").split("\n")
    assert len(lines) == 1 + PANELS, lines
    assert lines[0].startswith("MONTAGU ") and not any(line.startswith("MONTAGU") for line in lines[1:]), lines
    assert len(text.rstrip("\n").split("\n")) == 1 + PANELS
    assert rc_text == rc_json == rc_nagios
    return rc_json, doc, lines, text


def test_hostile_starport_metadata_and_nightly_stamp(lab, lab_config, starport_copy, tmp_path):
    """Finding 6: payloads in bb8's metadata.json (raw and JSON-escaped) and .barman-last-restore."""
    add_target(starport_copy, "hostile_raw", b'{"last_backup": "' + PAYLOAD + b'"}')
    escaped = json.dumps({"last_backup": PAYLOAD.decode("utf-8", "replace"), "instance_guid": "\x1b]0;x\x07"})
    assert "\\u001b" in escaped  # valid JSON: the escape only appears once decoded
    add_target(starport_copy, "hostile_escaped", escaped.encode())
    chown_tree(starport_copy, lab.sci_user)
    nightly = tmp_path / "nightly"
    nightly.mkdir()
    (nightly / ".barman-last-restore").write_bytes(PAYLOAD)

    def edit(c):
        c["starport"].update(path=str(starport_copy), targets=["barman_to_starport", "hostile_raw", "hostile_escaped"])
        c["nightly"].pop("volume", None)  # a directory instead of the Docker volume
        c["nightly"]["path"] = str(nightly)

    rc, doc, lines, text = check_all_outputs(config_variant(lab_config, tmp_path, edit))
    starport = doc["panels"]["starport"]
    assert rc == 2 and starport["status"] == "CRITICAL", starport
    assert lines[0].startswith("MONTAGU CRITICAL - ")
    assert "hostile_raw" in starport["summary"] and "hostile_escaped" in starport["summary"]
    assert "unreadable .barman-last-restore" in starport["summary"]
    assert SHOWN_MARKUP in starport["summary"] and "\ufffd" in starport["summary"]
    assert SHOWN_MARKUP in text


def _barman_wrapper(tmp_path: Path, real: list[str]) -> str:
    """The real barman, wrapped: stderr carries the payload, check's JSON a hostile (escaped) check
    name, and diagnose fails with the payload as its only output."""
    script = tmp_path / "hostile-barman"
    script.write_text(f"""#!{sys.executable}
import json, subprocess, sys
REAL = {real!r}
PAYLOAD = {PAYLOAD!r}
args = sys.argv[1:]
if args == ["diagnose"]:
    # the console quotes the last line: make it the escapes, after a forged status line
    sys.stderr.buffer.write(b"ERROR: " + PAYLOAD + b"\\nERROR: " + PAYLOAD.split(b"\\r")[0])
    sys.exit(1)
r = subprocess.run(REAL + args, capture_output=True, timeout=60)
out = r.stdout
if args[:3] == ["-f", "json", "check"]:
    doc = json.loads(out)
    doc[args[3]]["evil\\x1b]0;pwned\\x07 [/] check\\x1b[2J"] = {{"status": "FAILED", "hint": "\\x1b]52;c;aGk=\\x07"}}
    out = json.dumps(doc).encode()  # the escapes travel as \\u001b inside valid JSON
sys.stdout.buffer.write(out)
sys.stderr.buffer.write(r.stderr + PAYLOAD)
sys.exit(r.returncode)
""")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_hostile_barman_output_and_escaped_json(lab_config, tmp_path):
    """Findings 6 and 12: barman's stderr carries payloads; its JSON carries escaped controls."""
    import yaml

    real = annex_barman(yaml.safe_load(lab_config.read_text()))["command"]
    cfg = config_variant(
        lab_config, tmp_path, lambda c: annex_barman(c).update(command=[_barman_wrapper(tmp_path, real)])
    )
    rc, doc, lines, _ = check_all_outputs(cfg)
    barman, wal = doc["panels"]["barman"], doc["panels"]["wal"]
    assert rc == 2 and barman["status"] == "CRITICAL", barman
    assert "barman check FAILED: evil\ufffd [/] check\ufffd" in barman["summary"]
    assert "evil\ufffd [/] check\ufffd" in barman["facts"]["failed_checks"]
    assert wal["status"] == "UNKNOWN" and "barman diagnose exited 1" in wal["summary"], wal
    assert SHOWN_MARKUP in wal["summary"]
    assert lines[0].startswith("MONTAGU CRITICAL - ")


def test_hostile_science_postgres_log(lab, lab_config):
    """Finding 6: a RAISE LOG with escapes in the science database's real log reaches the probe clean."""
    from montagu_console.collect import Collector
    from montagu_console.config import load_config
    from montagu_console.probes.restore import probe_restore

    marker = "abuse-log-marker"
    lab.psql(
        "DO $$ BEGIN RAISE LOG '%', E'"
        + marker
        + r" \x1b]0;pwned\x07\x1b]52;c;aGk=\x07\x1b[2J [/] [link=file:///etc/passwd]x[/link] "
        r"[@click=app.quit]x[/] \rOVER\nMONTAGU OK'; END $$;",
        port=lab.science_port,
    )

    async def probe():
        collector = Collector(load_config(lab_config))
        try:
            return await probe_restore(collector.ctx)
        finally:
            await collector.close()

    facts = asyncio.run(probe())
    # the message itself, not the STATEMENT line that quotes the SQL
    hits = [line for line in facts.log_tail if f"LOG: {marker}" in line]
    assert hits, facts.log_tail[-10:]
    assert SHOWN_MARKUP in hits[-1] and "\ufffd" in hits[-1], hits[-1]
    for line in facts.log_tail:
        assert_clean(line)
        assert "\n" not in line
