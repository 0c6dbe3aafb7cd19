"""What a screen may ask of the app: one typed protocol instead of ``self.app.<anything>``.

Screens reach the app only through :class:`ConsoleHost` (``self.host`` on a
:class:`ConsoleScreen`), so what they depend on is written down in one place, mypy checks that
:class:`~montagu_console.tui.app.MontaguApp` provides it, and a screen cannot quietly grow a
dependency on some other part of the app.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, runtime_checkable

from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen

from ..config import Config

if TYPE_CHECKING:
    from .present import TrendData
    from .screens.detail import DetailScreen

Severity = Literal["information", "warning", "error"]
T = TypeVar("T")


@runtime_checkable
class ConsoleHost(Protocol):
    """The app as the screens see it."""

    @property
    def config(self) -> Config: ...

    @property
    def read_only(self) -> bool: ...

    def say(self, text: str, *, severity: Severity = "information", toast: bool | None = None) -> None:
        """A timestamped line in the output pane (and a toast when ``toast``, or when the pane is hidden)."""

    def key_of(self, binding_id: str) -> str:
        """The keys bound to ``binding_id`` as the operator sees them ("n", "esc")."""
        ...

    def restore_facts(self) -> dict:
        """The science restore panel's newest facts (redo progress, the last drill)."""
        ...

    def barman_facts(self) -> dict:
        """The barman panel's newest facts (its first instance's: a running base backup's progress)."""
        ...

    def lag_trend(self) -> TrendData:
        """The WAL lag of the recent polls, against its WARNING threshold."""
        ...

    def show_detail(self, screen: DetailScreen) -> None:
        """Bring one detail view up to date with the newest results."""

    def open_details(self, name: str) -> None:
        """Show the detail view of panel ``name``."""

    def open_screen(self, screen: Screen[Any]) -> None:
        """Show ``screen`` over the current one (Escape comes back)."""

    def ask(self, screen: ModalScreen[Any], then: Callable[[Any], None]) -> None:
        """Show a question (a modal screen); ``then`` gets its answer."""

    def run_thread(self, work: Callable[[], None], name: str) -> None:
        """Run blocking ``work`` (disk, hosts) in a thread worker whose failure the app reports."""

    def start_drill(self, confirmation: str) -> None:
        """Start a restore drill (the action layer refuses a wrong confirmation or read-only mode)."""

    def resume_drill(self, drill_id: str) -> None:
        """Resume the interrupted drill ``drill_id``."""


def host_of(node: DOMNode) -> ConsoleHost:
    """The app ``node`` runs in, as a :class:`ConsoleHost` (TypeError if it is some other app)."""
    app = node.app
    if not isinstance(app, ConsoleHost):
        raise TypeError(f"{type(app).__name__} is not a montagu-console host")
    return app


class ConsoleScreen(Screen[T]):
    """A screen of the console: it reaches the app through :attr:`host` only."""

    @property
    def host(self) -> ConsoleHost:
        return host_of(self)
