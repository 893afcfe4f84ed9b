"""One header line: the modes that matter, which stores are open, and where the sessions are."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from storage.safetext import one_line


@dataclass(frozen=True)
class HeaderInfo:
    path: str
    backends: tuple[str, ...]
    demo: bool = False
    read_only: bool = False


def short_path(path: str, room: int, home: str | None = None) -> str:
    """``path`` with ``~`` for the home folder, cut from the left to ``room`` cells."""
    home = str(Path.home()) if home is None else home
    if home and home != "/" and (path == home or path.startswith(home + "/")):
        path = "~" + path[len(home) :]
    path = one_line(path, 4000)
    if cell_len(path) <= room:
        return path
    while path and cell_len(path) > max(1, room - 1):
        path = path[1:]
    return "…" + path


def header_text(info: HeaderInfo, live: str, sessions: int | None, width: int = 200) -> Text:
    """The header as literal text: the path is shown as it is, never parsed as markup."""
    text = Text.assemble((" zc-sessions ", "bold reverse"), " ")
    if info.demo:
        text.append(" DEMO ", "bold black on yellow")
        text.append(" ")
    if info.read_only:
        text.append(" READ-ONLY ", "bold white on red")
        text.append(" ")
    if live:
        text.append(f"{live} ", "green" if live.startswith("●") else "yellow")
    text.append(f" [{' + '.join(info.backends) or 'no store'}]", "dim")
    if sessions is not None:
        text.append(f"  {sessions} session{'s' if sessions != 1 else ''}", "dim")
    room = width - text.cell_len - 2
    if room >= 8:
        text.append("  ")
        text.append(short_path(info.path, room), "bold")
    return text


class WorkspaceHeader(Widget):
    DEFAULT_CSS: ClassVar[str] = """
    WorkspaceHeader {
        height: 1;
        width: 1fr;
        background: $panel;
    }
    """

    live: reactive[str] = reactive("")
    sessions: reactive[int | None] = reactive(None)

    def __init__(self, info: HeaderInfo, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.info = info

    def render(self) -> Text:
        text = header_text(self.info, self.live, self.sessions, self.size.width)
        text.truncate(self.size.width, overflow="ellipsis")
        return text
