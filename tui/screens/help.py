"""The key reference, built from the bindings themselves so it cannot fall out of date."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

KeyRows = Sequence[tuple[str, str]]

_KEY_NAMES = {
    "question_mark": "?",
    "slash": "/",
    "escape": "esc",
    "pageup": "pgup",
    "pagedown": "pgdn",
    "full_stop": ".",
    "up": "↑",
    "down": "↓",
    "left": "←",
    "right": "→",
}


def key_label(keys: str) -> str:
    """``up,k`` -> ``↑ k``: Textual key names as they are printed on the keys."""
    return " ".join(_KEY_NAMES.get(k.strip(), k.strip()) for k in keys.split(","))


def rows_of(bindings: Iterable[BindingType]) -> list[tuple[str, str]]:
    """(keys, description) of every binding that has a description."""
    rows: list[tuple[str, str]] = []
    for b in bindings:
        if isinstance(b, Binding) and b.description:
            rows.append((key_label(b.key), b.description))
        elif isinstance(b, tuple) and len(b) >= 3:
            rows.append((key_label(str(b[0])), str(b[2])))
    return rows


def keys_table(title: str, rows: KeyRows) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", min_width=12)
    table.add_column()
    table.add_row(Text(title, "bold underline"), "")
    for keys, description in rows:
        table.add_row(Text(keys), Text(description))
    return table


class HelpScreen(ModalScreen[None]):
    """Every key, section by section. Any of escape, q or ? closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "close", "Close help"),
    ]

    def __init__(self, sections: Sequence[tuple[str, KeyRows]], notes: Sequence[str] = ()) -> None:
        super().__init__(classes="dialog-screen")
        self.sections = sections
        self.notes = notes

    def compose(self) -> ComposeResult:
        with Vertical(id="help", classes="dialog"):
            yield Label("zc-sessions: keys", classes="dialog-title")
            with VerticalScroll(id="help-body"):
                for title, rows in self.sections:
                    yield Static(keys_table(title, rows), classes="help-section")
                for note in self.notes:
                    yield Static(Text(note), classes="dialog-note")
            yield Static(Text("esc, q or ?: close", "dim"), classes="dialog-keys")

    def action_close(self) -> None:
        self.dismiss(None)
