"""Every key of the console in one registry, by binding id.

The same records build the Textual ``BINDINGS``, the ``?`` help screen and the command palette,
and the operator remaps them through the config's ``keys`` mapping (binding id -> keys).
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding, BindingType
from textual.keys import _normalize_key_list, format_key  # Textual is pinned exactly

from ..errors import ConsoleError

PERIOD = Binding.Group("period", compact=True)
ACTIONS = Binding.Group("actions", compact=True)


@dataclass(frozen=True)
class KeySpec:
    """One binding: its id, default keys (Textual names, comma-separated) and what it does."""

    id: str
    keys: str
    action: str
    label: str  # short footer label
    help: str  # one line for the help screen and the command palette
    scope: str  # "app" (everywhere), "main", "view" (every screen but main), a screen's own, "help", "confirm"
    show: bool = True
    group: Binding.Group | None = None


KEYS: tuple[KeySpec, ...] = (
    KeySpec("help", "question_mark", "help", "help", "Show every key and what it does", "app"),
    KeySpec("details", "enter", "details", "details", "Open the focused panel's details", "main"),
    KeySpec("back", "escape", "back", "back", "Back to the main screen", "view"),
    KeySpec("refresh", "R", "refresh", "refresh", "Poll every panel now (not one still polling)", "app"),
    KeySpec(
        "faster", "plus,equals_sign", "faster", "faster", "Refresh more often (down to every 1 s)", "app", group=PERIOD
    ),
    KeySpec("slower", "minus", "slower", "slower", "Refresh less often", "app", group=PERIOD),
    KeySpec(
        "base-backup",
        "b",
        "act('base-backup')",
        "backup",
        "Base backup of the primary through barman",
        "app",
        group=ACTIONS,
    ),
    KeySpec(
        "nightly-recover",
        "n",
        "act('nightly-recover')",
        "nightly",
        "Nightly recover into the nightly copy",
        "app",
        group=ACTIONS,
    ),
    KeySpec("science-restore", "r", "act('restore')", "restore", "Restore science's database", "app", group=ACTIONS),
    KeySpec("restore-drill", "d", "drill", "drill", "Guided restore drill (the wizard)", "app", group=ACTIONS),
    KeySpec(
        "pitr",
        "p",
        "act('pitr')",
        "pitr",
        "Point-in-time recovery into a scratch copy (type the time to recover to)",
        "app",
        group=ACTIONS,
    ),
    KeySpec(
        "view-run",
        "v",
        "view_run",
        "run",
        "Show the attached run: steps, progress, log (again: the next)",
        "app",
        group=ACTIONS,
    ),
    KeySpec(
        "cancel-run", "c", "cancel", "cancel", "Cancel the run on view, or the newest running one", "app", group=ACTIONS
    ),
    KeySpec(
        "drill-history",
        "h",
        "history",
        "drills",
        "Drill history: every drill's outcome, RTO and RPO",
        "app",
        group=ACTIONS,
    ),
    KeySpec(
        "trends",
        "t",
        "trends",
        "trends",
        "Trends over 24 h or 30 days: backup age, WAL lag, nightly age, proofs, drills (again: switch)",
        "app",
        show=False,
    ),
    KeySpec("quit", "q,ctrl+c", "quit", "quit", "Quit the console (runs continue detached)", "app"),
    KeySpec("panel-left", "left", "move(0, -1)", "", "Focus the panel to the left", "main", show=False),
    KeySpec("panel-right", "right", "move(0, 1)", "", "Focus the panel to the right", "main", show=False),
    KeySpec("panel-up", "up", "move(-1, 0)", "", "Focus the panel above", "main", show=False),
    KeySpec("panel-down", "down", "move(1, 0)", "", "Focus the panel below", "main", show=False),
    KeySpec("panel-barman", "1", "focus_panel('barman')", "", "Focus the barman panel", "main", show=False),
    KeySpec("panel-wal", "2", "focus_panel('wal')", "", "Focus the WAL panel", "main", show=False),
    KeySpec("panel-starport", "3", "focus_panel('starport')", "", "Focus the starport panel", "main", show=False),
    KeySpec("panel-restore", "4", "focus_panel('restore')", "", "Focus the science restore panel", "main", show=False),
    KeySpec("start-drill", "s", "start", "start", "Drill wizard: start a drill (type the science host name)", "drill"),
    KeySpec(
        "resume-drill", "u", "resume", "resume", "Drill wizard: resume the interrupted drill where it stopped", "drill"
    ),
    KeySpec("show-report", "enter", "report", "report", "Drill history: show the selected drill's report", "history"),
    KeySpec("close-help", "escape,question_mark", "close", "close", "Close this help", "help"),
    KeySpec("confirm-yes", "y", "yes", "yes", "In a y/n question: yes", "confirm"),
    KeySpec("confirm-no", "n,escape", "no", "no", "In a question: no, cancel (the default)", "confirm"),
)

BY_ID = {spec.id: spec for spec in KEYS}
# Scopes whose bindings are active together; a key may not be bound twice within one.
_ACTIVE_TOGETHER = (("app", "main"), ("app", "view", "drill"), ("app", "view", "history"), ("help",), ("confirm",))


def bindings(*scopes: str) -> list[BindingType]:
    """The Textual bindings of ``scopes``, each carrying its id for ``set_keymap``."""
    return [
        Binding(s.keys, s.action, s.label, show=s.show, id=s.id, group=s.group, tooltip=s.help)
        for s in KEYS
        if s.scope in scopes
    ]


def keys_for(spec: KeySpec, keymap: dict[str, str]) -> str:
    """The keys bound to ``spec`` once the operator's keymap is applied (Textual key names)."""
    return _normalize_key_list(keymap.get(spec.id, spec.keys))


def display_keys(spec: KeySpec, keymap: dict[str, str]) -> str:
    """Human form of the keys bound to ``spec``: ``?``, ``+ =``, ``enter``."""
    return " ".join(format_key(k.strip()) for k in keys_for(spec, keymap).split(","))


def check_keymap(keymap: dict[str, str]) -> None:
    """Raise ConsoleError naming every unknown binding id and every key bound twice."""
    problems = [f"keys.{bid}: unknown binding id" for bid in keymap if bid not in BY_ID]
    for scopes in _ACTIVE_TOGETHER:
        seen: dict[str, str] = {}
        for spec in KEYS:
            if spec.scope not in scopes:
                continue
            for key in keys_for(spec, keymap).split(","):
                key = key.strip()
                if key in seen and seen[key] != spec.id:
                    problems.append(f"keys: {key!r} is bound to both {seen[key]} and {spec.id}")
                seen[key] = spec.id
    if problems:
        known = ", ".join(sorted(BY_ID))
        raise ConsoleError(f"{'; '.join(dict.fromkeys(problems))} (binding ids: {known})")
