"""Themes: the shipped YAML files load by name, bad ones fail with one clear line, NO_COLOR keeps the words."""

from __future__ import annotations

import re

import pytest
import tui_fakes
from tui_helpers import ready

from montagu_console.errors import ConsoleError
from montagu_console.tui.app import MontaguApp
from montagu_console.tui.themes import THEMES_DIR, available_themes, load_theme

SHIPPED = ["montagu-dark", "montagu-high-contrast", "montagu-light"]


def test_the_three_themes_ship_in_the_package_and_the_repo():
    assert available_themes() == SHIPPED
    assert THEMES_DIR.parent.name == "tui"  # package data, found relative to the package
    repo_themes = THEMES_DIR.parents[2] / "themes"
    assert sorted(p.stem for p in repo_themes.glob("*.yml")) == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
async def test_theme_selected_by_argument(make_app, name):
    app = make_app(theme=name)
    async with app.run_test() as pilot:
        await ready(pilot)
        assert app.theme == name
        assert app.current_theme.name == name
        assert app.current_theme.dark == (name != "montagu-light")


def test_theme_from_config_unless_the_argument_says_otherwise():
    def theme_of(config_theme, argument):
        config = tui_fakes.make_config(theme=config_theme)
        return MontaguApp(config, tui_fakes.FakeCollector(), theme=argument).theme

    assert theme_of("montagu-high-contrast", None) == "montagu-high-contrast"
    assert theme_of("montagu-high-contrast", "montagu-light") == "montagu-light"


def test_unknown_theme_is_one_clear_error(make_app):
    with pytest.raises(ConsoleError) as e:
        make_app(theme="solarized")
    assert str(e.value) == ("unknown theme 'solarized' (available: montagu-dark, montagu-high-contrast, montagu-light)")


@pytest.mark.parametrize(
    "text, message",
    [
        ("name: x\nprimary: '#000000'\n", "name 'x' differs from the file name 'bad'"),
        ("primary: '#000000'\nsparkle: true\n", "unknown keys sparkle"),
        ("primary: 'not-a-colour'\n", "primary: not a colour: 'not-a-colour'"),
        ("secondary: '#ffffff'\n", "missing required key primary"),
        ("- a list\n", "expected a mapping of theme fields"),
    ],
)
def test_bad_theme_file_names_the_problem(tmp_path, text, message):
    (tmp_path / "bad.yml").write_text(text)
    with pytest.raises(ConsoleError) as e:
        load_theme("bad", tmp_path)
    assert message in str(e.value) and str(tmp_path / "bad.yml") in str(e.value)


def _colours(svg: str) -> set[str]:
    """The non-grey fill colours of a screenshot, without the SVG frame's own foreground."""
    fills = set(re.findall(r"fill: #([0-9a-f]{6})", svg)) - {"c5c8c6"}
    return {f for f in fills if not f[0:2] == f[2:4] == f[4:6]}


@pytest.mark.parametrize("no_color", [False, True])
async def test_no_color_keeps_the_status_words(make_app, monkeypatch, no_color):
    if no_color:
        monkeypatch.setenv("NO_COLOR", "1")
    else:
        monkeypatch.delenv("NO_COLOR", raising=False)
    ready_science = tui_fakes.restore_result(last_drill=tui_fakes.LAST_DRILL)  # an OK panel beside the others
    app = make_app(tui_fakes.troubled() | {"restore": ready_science})
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        assert app.no_color == no_color
        svg = app.export_screenshot()
    for word in ("CRITICAL", "WARNING", "OK"):
        assert f">{word}<" in svg
    assert bool(_colours(svg)) != no_color  # Textual's monochrome filter leaves greys only
