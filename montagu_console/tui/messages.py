"""Messages the pollers post to the app; handlers own every widget update."""

from __future__ import annotations

from textual.message import Message

from ..snapshot import PanelResult


class PanelUpdated(Message):
    """A panel's poll finished (successfully or as an UNKNOWN result naming the failure)."""

    def __init__(self, result: PanelResult) -> None:
        self.result = result
        super().__init__()
