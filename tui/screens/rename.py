"""Ask for a session's new name. An empty name clears it (ZeroClaw stores NULL)."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from storage.safetext import one_line


class RenameScreen(ModalScreen[str | None]):
    """Enter saves the name, Escape cancels (returns None)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, key: str, current: str | None) -> None:
        super().__init__(classes="dialog-screen")
        self.key = key
        self.current = current or ""

    def compose(self) -> ComposeResult:
        with Vertical(id="rename", classes="dialog"):
            yield Label(Text(f"Rename {one_line(self.key, 80)}"), classes="dialog-title")
            yield Input(value=self.current, placeholder="new name", id="rename-input")
            yield Static(
                Text("enter: save · empty clears the name · esc: cancel", "dim"),
                classes="dialog-keys",
            )

    @on(Input.Submitted, "#rename-input")
    def _save(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)
