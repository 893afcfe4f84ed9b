"""The search pane: a query box, a scope toggle and hits that stream in as the app finds them.

The pane never searches: it asks (``QueryChanged``, debounced) and the app's worker answers
with ``add_hits``. Snippets are shown literally, with the matched spans highlighted.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Checkbox, Input, Label, OptionList
from textual.widgets.option_list import Option

from storage.models import SearchHit
from storage.safetext import one_line, visible

MATCH_STYLE = Style(bold=True, reverse=True)


def highlighted_snippet(snippet: str, spans: Iterable[tuple[int, int]]) -> Text:
    """``snippet`` on one visible line with ``spans`` (offsets into the raw snippet) styled."""
    text = Text()
    pos = 0
    for start, end in sorted(spans):
        start, end = max(start, pos), min(end, len(snippet))
        if start >= end:
            continue
        text.append(visible(snippet[pos:start], keep_newlines=False))
        text.append(visible(snippet[start:end], keep_newlines=False), MATCH_STYLE)
        pos = end
    text.append(visible(snippet[pos:], keep_newlines=False))
    return text


def hit_text(hit: SearchHit, show_backend: bool = False) -> Text:
    """One result line: session, index, role, then the snippet."""
    head = Text(one_line(hit.key, 32), style="bold")
    if show_backend:
        head.append(f" [{hit.backend}]", "dim")
    head.append(f" #{hit.index} ", "dim")
    head.append(one_line(hit.role, 12), "italic")
    head.append(": ", "dim")
    line = head + highlighted_snippet(hit.snippet, hit.spans)
    line.no_wrap, line.overflow = True, "ellipsis"
    return line


class SearchPane(Vertical):
    """Query, scope and hits. ``n``/``N`` in the app walk the hits through ``move``."""

    DEBOUNCE: ClassVar[float] = 0.15

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+t", "toggle_scope", "This session only"),
        Binding("escape", "close", "Close search"),
        Binding("down", "to_results", "Results", show=False),
    ]

    class QueryChanged(Message):
        def __init__(self, query: str, scoped: bool) -> None:
            super().__init__()
            self.query = query
            self.scoped = scoped

    class HitChosen(Message):
        def __init__(self, hit: SearchHit) -> None:
            super().__init__()
            self.hit = hit

    class Closed(Message):
        """Escape in the pane."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._hits: list[SearchHit] = []
        self._timer: Timer | None = None
        self._open_first = False  # Enter came before the hits: open the first one to arrive
        self.show_backend = False
        self.searching = False
        self._input = Input(
            placeholder='search all sessions: words, "a phrase", prefix*',
            id="search-input",
            compact=True,
        )
        self._scope = Checkbox("this session only", id="search-scope", compact=True)
        self._status_label = Label("type to search", id="search-status")
        self._results = OptionList(id="search-results", compact=True)

    def compose(self) -> ComposeResult:
        with Horizontal(id="search-bar"):
            yield self._input
            yield self._scope
        yield self._status_label
        yield self._results

    # --- asking --------------------------------------------------------------------------

    @property
    def query_text(self) -> str:
        return self._input.value

    @property
    def scoped(self) -> bool:
        return self._scope.value

    def focus_input(self) -> None:
        self._input.focus()

    @on(Input.Changed, "#search-input")
    def _typed(self) -> None:
        self._open_first = False
        self._ask_soon()

    @on(Checkbox.Changed, "#search-scope")
    def _scope_changed(self) -> None:
        self._ask_soon()

    def _ask_soon(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        if self.DEBOUNCE <= 0:
            self._ask()
        else:
            self._timer = self.set_timer(self.DEBOUNCE, self._ask)

    def _ask(self) -> None:
        self._timer = None
        self.post_message(self.QueryChanged(self.query_text, self.scoped))

    @on(Input.Submitted, "#search-input")
    def _submitted(self) -> None:
        """Enter opens the highlighted hit. Typed faster than the debounce, it searches now
        and opens the first hit when it comes (the hits shown are an older query's)."""
        if self._timer is not None:
            self._timer.stop()
            self._ask()
            self._open_first = True
        elif self._hits:
            results = self._results
            results.highlighted = results.highlighted or 0
            self._choose(results.highlighted or 0)
        elif self.searching:
            self._open_first = True

    def action_toggle_scope(self) -> None:
        box = self._scope
        box.value = not box.value

    def action_close(self) -> None:
        self.post_message(self.Closed())

    def action_to_results(self) -> None:
        if self._hits:
            self.focus_results()

    def focus_results(self) -> None:
        """Focus the hits (the query box when there are none), keeping the chosen hit."""
        if not self._hits:
            self.focus_input()
            return
        results = self._results
        results.focus()
        results.highlighted = results.highlighted or 0

    # --- answers (attributes down) -------------------------------------------------------

    def start(self, query: str) -> None:
        self._hits = []
        self._results.clear_options()
        self.searching = bool(query.strip())
        self._status("searching…" if self.searching else "type to search")

    def add_hits(self, hits: list[SearchHit]) -> None:
        results = self._results
        first = len(self._hits)
        self._hits.extend(hits)
        results.add_options(
            Option(hit_text(h, self.show_backend), id=str(first + i)) for i, h in enumerate(hits)
        )
        if results.highlighted is None and self._hits:
            results.highlighted = 0
        if self._open_first and self._hits:
            self._open_first = False
            self._choose(0)
        self._status(f"{len(self._hits)} hit{'s' if len(self._hits) != 1 else ''}…")

    def finish(self, error: str | None = None) -> None:
        self.searching = False
        self._open_first = False
        n = len(self._hits)
        if error:
            self._status(error)
        elif n == 0:
            self._status("no hits" if self.query_text.strip() else "type to search")
        else:
            self._status(f"{n} hit{'s' if n != 1 else ''}  ·  enter: open  ·  n/N: next/previous")

    def _status(self, text: str) -> None:
        self._status_label.update(Text(text))

    @property
    def hits(self) -> list[SearchHit]:
        return list(self._hits)

    @property
    def current(self) -> SearchHit | None:
        index = self._results.highlighted
        return self._hits[index] if index is not None and index < len(self._hits) else None

    def move(self, delta: int) -> SearchHit | None:
        """Highlight the next (or previous) hit, wrapping around, and return it."""
        if not self._hits:
            return None
        results = self._results
        index = results.highlighted
        index = (0 if delta > 0 else -1) if index is None else index + delta
        results.highlighted = index % len(self._hits)
        return self.current

    @on(OptionList.OptionSelected, "#search-results")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self._choose(event.option_index)

    def _choose(self, index: int) -> None:
        if 0 <= index < len(self._hits):
            self.post_message(self.HitChosen(self._hits[index]))
