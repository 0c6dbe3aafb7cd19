"""Colour themes: YAML files in ``montagu_console/tui/themes/`` (the repo's ``themes/`` links here).

A theme file holds the fields of :class:`textual.theme.Theme`; its file name is its name.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from textual.color import Color, ColorParseError
from textual.theme import Theme

from ..errors import ConsoleError

THEMES_DIR = Path(__file__).resolve().parent / "themes"
DEFAULT_THEME = "montagu-dark"

_COLOURS = (
    "primary",
    "secondary",
    "accent",
    "foreground",
    "background",
    "surface",
    "panel",
    "boost",
    "success",
    "warning",
    "error",
)
_KEYS = {"name", "dark", "variables", *_COLOURS}


def available_themes(directory: Path = THEMES_DIR) -> list[str]:
    """Names of the themes in ``directory``, sorted."""
    return sorted(p.stem for p in directory.glob("*.yml"))


def load_theme(name: str, directory: Path = THEMES_DIR) -> Theme:
    """Read theme ``name``; raise ConsoleError naming the available themes or the bad key."""
    path = directory / f"{name}.yml"
    if not path.is_file():
        available = ", ".join(available_themes(directory)) or f"none in {directory}"
        raise ConsoleError(f"unknown theme {name!r} (available: {available})")
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConsoleError(f"theme {path}: cannot read it: {e}") from None
    if not isinstance(data, dict):
        raise ConsoleError(f"theme {path}: expected a mapping of theme fields")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ConsoleError(f"theme {path}: unknown keys {', '.join(unknown)} (allowed: {', '.join(sorted(_KEYS))})")
    if data.get("name", name) != name:
        raise ConsoleError(f"theme {path}: name {data['name']!r} differs from the file name {name!r}")
    if "primary" not in data:
        raise ConsoleError(f"theme {path}: missing required key primary")
    for key in _COLOURS:
        if key in data:
            try:
                Color.parse(data[key])
            except ColorParseError:
                raise ConsoleError(f"theme {path}: {key}: not a colour: {data[key]!r}") from None
    variables = data.get("variables") or {}
    if not isinstance(variables, dict):
        raise ConsoleError(f"theme {path}: variables: expected a mapping")
    return Theme(
        name=name,
        dark=bool(data.get("dark", True)),
        variables={str(k): str(v) for k, v in variables.items()},
        **{k: data[k] for k in _COLOURS if k in data},
    )
