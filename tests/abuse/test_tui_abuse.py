"""Hostile text against the TUI, from real sources: findings 5 (remote text parsed as markup),
6 (terminal control sequences reaching the terminal) and 13 (duplicate table row keys).

The console runs on the real lab (App.run_test), its starport pointed at a copy of the lab's
starport layout whose metadata.json files carry Rich/Textual markup, OSC 52 clipboard writes,
CSI and title sequences, invalid UTF-8 and NUL bytes (read over the real sshd), and its barman
command wrapped so that real barman's JSON gains a check whose name collides with another once
``_`` becomes a space and two backups with the same id; the starport targets are listed twice.
Every detail view is opened: the payloads show as literal text, nothing on screen is a link or
an action, no control character is drawn, and the app keeps answering keys.
"""

from __future__ import annotations

import copy
import json
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.text import Text

from montagu_console.collect import Collector
from montagu_console.config import Config, load_config
from montagu_console.errors import ConsoleError
from montagu_console.snapshot import PANELS
from montagu_console.tui.app import MontaguApp
from montagu_console.tui.screens.detail import DetailScreen
from montagu_console.tui.screens.help import HelpScreen
from montagu_console.tui.screens.main import MainScreen
from montagu_console.tui.screens.run import RunScreen
from montagu_console.tui.widgets.log import RunLog
from montagu_console.tui.widgets.table import SteadyTable
from montagu_console.tui.widgets.text import Line

TUI_TESTS = Path(__file__).resolve().parents[1] / "tui"
sys.path.insert(0, str(TUI_TESTS))

import tui_fakes  # noqa: E402
import tui_runs  # noqa: E402
from tui_helpers import wait_for  # noqa: E402

from tests.conftest import annex_barman, config_variant  # noqa: E402

LINK = "[link=https://evil.example/]y[/link]"
CLICK = "[@click=app.quit]z[/]"
# bb8 target name -> the bytes of its meta/metadata.json
METADATA = {
    "t-markup": b'{"last_backup": "[/] [bold]x"}',
    "t-link": b'{"last_backup": "' + LINK.encode() + b'"}',
    "t-click": b'{"last_backup": "' + CLICK.encode() + b'"}',
    "t-osc52": b"\x1b]52;c;aGVsbG8=\x07 osc52",
    "t-csi": b"\x1b[2J\x1b[H\x1b]0;owned\x07 csi",
    "t-bytes": b"\xff\xfe\x00NUL [/]",
    "t-jsonesc": b'{"last_backup": "\\u001b]52;c;aGk=\\u0007 \\u009b2J"}',
}
CHECK_HINT = "[/] " + LINK + " " + CLICK + " \x1b]52;c;aGk=\x07 \x1b[2J\x1b]0;owned\x07"
BACKUP_ID = "[/]" + LINK
# a barman that answers with real barman's JSON, plus a colliding check and a duplicated backup
BARMAN_WRAPPER = """\
import json, subprocess, sys
real = json.loads(sys.argv[1])
args = sys.argv[2:]
r = subprocess.run(real + args, capture_output=True, text=True)
out = r.stdout
if "-f" in args and "check" in args:
    data = json.loads(out)
    for server in data.values():
        server["archiver errors"] = {"status": "FAILED", "hint": HINT}  # "archiver_errors" too, once _ is a space
        server["archiver_errors"]["hint"] = HINT
    out = json.dumps(data)
elif "-f" in args and "list-backup" in args:
    data = json.loads(out)
    for server, backups in data.items():
        fake = {"backup_id": BACKUP_ID, "status": "FAILED", "end_time_timestamp": None, "size_bytes": None}
        data[server] = [fake, dict(fake)] + backups
    out = json.dumps(data)
sys.stdout.write(out)
sys.stderr.write(r.stderr)
sys.exit(r.returncode)
"""
CONTROLS = "\x1b\x07\x00\x9b\x9d"


def with_targets(config: Config, targets: tuple[str, ...]) -> Config:
    """``config`` with the starport targets forced to ``targets`` (duplicates included), past validation."""
    starport = config.starport
    if hasattr(starport, "model_copy"):  # a pydantic model: model_copy does not validate
        return config.model_copy(update={"starport": starport.model_copy(update={"targets": targets})})
    # a (pydantic) dataclass validates on replace(): copy it and set the field underneath instead
    starport, config = copy.copy(starport), copy.copy(config)
    object.__setattr__(starport, "targets", targets)
    object.__setattr__(config, "starport", starport)
    return config


@pytest.fixture
def hostile_config(lab, lab_config, tmp_path) -> Iterator[Config]:
    """The lab's config on a copied starport of hostile metadata and a barman wrapped to add hostile JSON."""
    real_starport = Path(lab.starport_dir)
    copy = Path(lab.sci_home) / f"abuse-starport-{uuid.uuid4().hex[:8]}"  # readable by labsci (the sshd user)
    try:
        good = copy / "barman_to_starport"
        (good / "meta").mkdir(parents=True)
        shutil.copy2(real_starport / "barman_to_starport" / "meta" / "metadata.json", good / "meta" / "metadata.json")
        carried = real_starport / "barman_to_starport" / "data" / "montagu_db_volume" / ".barman-last-restore"
        if carried.exists():
            (good / "data" / "montagu_db_volume").mkdir(parents=True)
            shutil.copy2(carried, good / "data" / "montagu_db_volume" / ".barman-last-restore")
        for name, data in METADATA.items():
            (copy / name / "meta").mkdir(parents=True)
            (copy / name / "meta" / "metadata.json").write_bytes(data)
        copy.chmod(0o755)

        import yaml

        real_command = annex_barman(yaml.safe_load(lab_config.read_text()))["command"]
        wrapper = tmp_path / "barman_wrapper.py"
        wrapper.write_text(f"HINT = {CHECK_HINT!r}\nBACKUP_ID = {BACKUP_ID!r}\n" + BARMAN_WRAPPER)
        targets = ["barman_to_starport", *METADATA, "t-markup", "barman_to_starport"]  # two listed twice

        def edit(data: dict) -> None:
            data["starport"]["path"] = str(copy)
            data["starport"]["targets"] = targets
            annex_barman(data)["command"] = [sys.executable, str(wrapper), json.dumps(real_command)]
            data["refresh_seconds"] = 5

        path = config_variant(lab_config, tmp_path, edit)
        try:
            config = load_config(path)
        except ConsoleError:  # the config refuses duplicate targets: force them, as a careless edit could not
            data = yaml.safe_load(path.read_text())
            data["starport"]["targets"] = list(dict.fromkeys(targets))
            path.write_text(yaml.safe_dump(data))
            config = load_config(path)
        yield with_targets(config, tuple(targets))
    finally:
        shutil.rmtree(copy, ignore_errors=True)


def screen_text_and_styles(app: MontaguApp) -> tuple[str, list[str], list[str]]:
    """What the current screen draws: its text, every link and every ``@click`` action in its styles."""
    links, clicks, lines = [], [], []
    for strip in app.screen._compositor.render_strips():
        lines.append("".join(segment.text for segment in strip))
        for segment in strip:
            style = segment.style
            if style is None:
                continue
            if style.link:
                links.append(style.link)
            click = (style.meta or {}).get("@click")
            if click:
                clicks.append(str(click))
    return "\n".join(lines), links, clicks


def assert_harmless(app: MontaguApp) -> str:
    text, links, clicks = screen_text_and_styles(app)
    assert not [c for c in CONTROLS if c in text], f"control characters drawn on {app.screen}"
    assert not [link for link in links if "evil" in link], links
    assert not [click for click in clicks if "quit" in click or "evil" in click], clicks
    return text


def cell_texts(table: SteadyTable) -> list[list[Text]]:
    return [list(table.get_row_at(i)) for i in range(table.row_count)]


def assert_literal_cells(rows: list[list[Text]]) -> str:
    """Every cell is plain Text: no span that links or acts; returns all cells' text."""
    for row in rows:
        for cell in row:
            assert isinstance(cell, Text)
            for span in cell.spans:
                style = span.style
                assert isinstance(style, str) or not (style.link or (style.meta or {}).get("@click")), span
    return "\n".join(cell.plain for row in rows for cell in row)


pytestmark = pytest.mark.lab


async def open_detail(pilot, app: MontaguApp, key: str, panel: str) -> None:
    """Choose panel ``key``, press Enter, and wait until its detail view is up."""
    await pilot.press(key, "enter")
    await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen) and app.screen.panel == panel)
    await pilot.pause()


async def test_hostile_host_text_is_literal_harmless_and_never_crashes_the_tui(hostile_config):
    """Findings 5, 6, 13: markup, links, actions, OSC 52, CSI, invalid UTF-8 and NUL from starport's
    metadata and barman's JSON; a colliding check name, a duplicated backup id and starport target."""
    app = MontaguApp(hostile_config, Collector(hostile_config))
    async with app.run_test(size=(220, 60)) as pilot:
        await wait_for(
            pilot,
            lambda: len(app.results) == 4 and all(app.results[n].detail is not None for n in ("barman", "starport")),
            timeout=120,
        )
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
        main = assert_harmless(app)
        assert "[/]" in main  # the markup is shown, not parsed

        await open_detail(pilot, app, "1", "barman")
        checks = cell_texts(app.screen.query_one("#checks", SteadyTable))
        names = [row[0].plain for row in checks]
        assert names.count("archiver errors") == 2  # two rows, not a DuplicateKey crash
        shown = assert_literal_cells(checks)
        assert LINK in shown and CLICK in shown and "[/]" in shown
        backups = cell_texts(app.screen.query_one("#backups", SteadyTable))
        assert [row[0].plain for row in backups].count(BACKUP_ID) == 2
        assert_literal_cells(backups)
        assert_harmless(app)
        await pilot.press("escape")

        await open_detail(pilot, app, "2", "wal")
        assert_harmless(app)
        await pilot.press("escape")

        await open_detail(pilot, app, "3", "starport")
        targets = cell_texts(app.screen.query_one("#targets", SteadyTable))
        assert [row[0].plain for row in targets].count("t-markup") == 2
        assert [row[0].plain for row in targets].count("barman_to_starport") == 2
        shown = assert_literal_cells(targets)
        assert LINK in shown and CLICK in shown
        assert not [c for c in CONTROLS if c in shown]
        summary = app.screen.query_one(".detail-summary", Line).text
        assert "[/] [bold]x" in summary
        assert_harmless(app)
        await pilot.press("escape")

        await open_detail(pilot, app, "4", "restore")
        assert_harmless(app)
        await pilot.press("escape")

        # it keeps answering keys: the help opens and closes, a refresh is taken
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        before = dict(app.results)
        await pilot.press("R")
        await wait_for(pilot, lambda: any(app.results[n] is not before[n] for n in PANELS), timeout=120)
        assert_harmless(app)
        assert app.is_running
    assert app.return_code in (None, 0)


RUN_LOG_PAYLOAD = (
    b"\x1b]0;owned\x07title \x1b]52;c;aGVsbG8=\x07clip \x1b[2J\x1b[Hclear "
    b"[/] " + LINK.encode() + b" " + CLICK.encode() + b" \xff\x00 end of payload\n"
)


async def test_a_run_log_with_escapes_and_markup_reaches_the_run_view_clean(tmp_path):
    """Finding 6 (and 5): the run log, which the TUI reads itself, carries OSC 52, title and CSI
    sequences, markup, invalid UTF-8 and NUL; the run view shows it literally, drawing no control."""
    config = tui_runs.write_config(tmp_path)
    run = tui_runs.create_run(config, "nightly-recover")
    proc = tui_runs.start_fake_supervisor(run, rate=20, seconds=30, step=1)
    try:
        with open(run.log_path, "ab") as log:
            log.write(RUN_LOG_PAYLOAD)
        app = MontaguApp(config, tui_fakes.FakeCollector(tui_fakes.healthy()), clock=tui_fakes.frozen())
        async with app.run_test(size=(200, 40)) as pilot:
            await wait_for(pilot, lambda: app.attached_runs == [run], timeout=10)
            await pilot.press("v")
            await wait_for(pilot, lambda: isinstance(app.screen, RunScreen))

            def payload_lines() -> list[str]:
                return [line for line in app.screen.query_one(RunLog).lines if "end of payload" in line]

            await wait_for(pilot, lambda: bool(payload_lines()), timeout=10)
            (line,) = payload_lines()
            assert not [c for c in CONTROLS if c in line]
            assert "[/]" in line and LINK in line and CLICK in line and "title" in line and "clip" in line
            await pilot.pause()
            assert_harmless(app)
            await pilot.press("question_mark")  # still answering
            await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
            await pilot.press("escape")
            assert app.is_running
    finally:
        proc.kill()
        proc.wait()
