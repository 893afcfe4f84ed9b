"""The session list: a virtualized, two-line-per-session list that stays fast at 10,000 rows.

It paints from the metadata it is given and never reads a store: counts that are not known yet
(JSONL listings have none) show as ``…`` until the app's counting worker hands them down with
``set_counts``. All text from the stores is rendered literally (``rich.text.Text``, never markup)
with control characters made visible.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import ClassVar, Literal

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from storage.models import BackendName, SessionMetadata
from storage.ops import is_stuck
from storage.safetext import one_line
from storage.zcformat import parse_rfc3339
from tui.launch import no_gc
from tui.messages import SessionRef, ref_of

SortMode = Literal["activity", "name", "count"]
SORT_MODES: tuple[SortMode, ...] = ("activity", "name", "count")
SORT_LABELS: dict[SortMode, str] = {
    "activity": "last activity",
    "name": "name",
    "count": "message count",
}
Clock = Callable[[], datetime]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --- pure helpers -----------------------------------------------------------------------------


def source_label(meta: SessionMetadata) -> str:
    """Where a session comes from: gateway, rpc, its channel, or its key's prefix."""
    if meta.key.startswith("gw_"):
        return "gateway"
    if meta.key.startswith("rpc_"):
        return "rpc"
    if meta.channel_id:
        return meta.channel_id
    prefix = meta.key.split("_", 1)[0]
    return prefix if prefix and prefix != meta.key else "-"


def relative_time(when: datetime | None, now: datetime) -> str:
    """``12s ago``, ``5m ago``, ``3h ago``, ``2d ago``; ``-`` without a time."""
    if when is None:
        return "-"
    secs = max(0, int((now - when).total_seconds()))
    if secs < 5:
        return "now"
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{secs // size}{unit} ago"
    return f"{secs}s ago"


@dataclass(frozen=True, slots=True)
class SessionRow:
    """A session as the list shows it. ``stale`` means ``count`` predates the last change."""

    ref: SessionRef
    meta: SessionMetadata
    count: int | None
    activity: datetime | None
    stale: bool = False
    unreadable: bool = False

    @property
    def title(self) -> str:
        return self.meta.name or self.meta.key

    @property
    def source(self) -> str:
        return source_label(self.meta)


def activity_of(text: str | None) -> datetime | None:
    """``last_activity`` as an aware datetime: ``fromisoformat`` (C, and in 3.11 it takes the
    nine fraction digits chrono writes) first, the strict RFC 3339 parser when it says no or
    gives a naive time (which could not be compared with the others)."""
    if not text:
        return None
    end = len(text) - (1 if text[-1:] in ("Z", "z") else 6)  # where the fraction ends
    plain = (
        len(text) >= 20
        and text[4::3][:5] in ("--T::", "--t::", "-- ::")
        and (end == len(text) - 1 or (text[-6] in "+-" and text[-3] == ":"))
        and (end == 19 or (text[19] == "." and 1 <= end - 20 <= 9 and text[20:end].isdigit()))
    )
    if not plain:
        return parse_rfc3339(text)  # not the usual shape: the strict parser judges it
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return parse_rfc3339(text)
    return when if when.tzinfo is not None else parse_rfc3339(text)


def make_row(meta: SessionMetadata, previous: SessionRow | None = None) -> SessionRow:
    """A row for fresh metadata; a count the metadata lacks is kept from ``previous``, as stale."""
    ref = SessionRef(meta.backend, meta.key)
    activity = activity_of(meta.last_activity)
    unreadable = bool(meta.has_unreadable) or (previous is not None and previous.unreadable)
    if meta.message_count is not None:
        return SessionRow(ref, meta, meta.message_count, activity, unreadable=unreadable)
    count = previous.count if previous is not None else None
    stale = previous is not None
    return SessionRow(ref, meta, count, activity, stale=stale, unreadable=unreadable)


def badges(row: SessionRow, stuck_after: float, now: datetime) -> list[tuple[str, str]]:
    """(label, component class) for each badge of a row."""
    found: list[tuple[str, str]] = []
    if is_stuck(row.meta, stuck_after, now):
        found.append(("stuck", "session-list--stuck"))
    elif row.meta.state == "running":
        found.append(("running", "session-list--running"))
    elif row.meta.state == "error":
        found.append(("error", "session-list--error"))
    if row.unreadable:
        found.append(("unreadable lines", "session-list--unreadable"))
    return found


def matches(row: SessionRow, needle: str) -> bool:
    """Case-insensitive substring match on what the row shows and who it is for."""
    if not needle:
        return True
    meta = row.meta
    fields = (meta.name, meta.key, row.source, meta.channel_id, meta.sender_id, meta.agent_alias)
    return any(needle in f.casefold() for f in fields if f)


SMALL_UPSERT = 32  # up to this many changed sessions move in place instead of a full re-sort


def sort_key(mode: SortMode) -> Callable[[SessionRow], tuple[object, ...]]:
    """The key of ``mode`` (``activity`` sorts by it descending, the others ascending)."""
    if mode == "name":
        return lambda r: (r.title.casefold(), r.meta.key)
    if mode == "count":
        return lambda r: (-(r.count or 0), r.title.casefold())
    return lambda r: (r.activity or _EPOCH, r.meta.key)


def sort_rows(rows: Iterable[SessionRow], mode: SortMode) -> list[SessionRow]:
    return sorted(rows, key=sort_key(mode), reverse=mode == "activity")


def count_label(row: SessionRow) -> str:
    if row.count is None:
        return "… msgs"
    return "1 msg" if row.count == 1 else f"{row.count} msgs"


# --- the widget ------------------------------------------------------------------------------


class SessionList(ScrollView, can_focus=True):
    """Sessions, two lines each; the cursor stays on its session when the list re-sorts."""

    ROW_HEIGHT: ClassVar[int] = 2

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "session-list--cursor",
        "session-list--cursor-blurred",
        "session-list--title",
        "session-list--dim",
        "session-list--running",
        "session-list--stuck",
        "session-list--error",
        "session-list--unreadable",
    }

    DEFAULT_CSS = """
    SessionList {
        overflow-x: hidden;
        & > .session-list--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: bold;
        }
        & > .session-list--cursor-blurred { background: $block-cursor-blurred-background; }
        & > .session-list--title { text-style: bold; }
        & > .session-list--dim { color: $text-muted; }
        & > .session-list--running { color: $success; text-style: bold; }
        & > .session-list--stuck { color: $warning; text-style: bold reverse; }
        & > .session-list--error { color: $error; text-style: bold; }
        & > .session-list--unreadable { color: $accent; text-style: bold; }
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor_up", "Up", show=False),
        Binding("down,j", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "first", "First", show=False),
        Binding("end", "last", "Last", show=False),
        Binding("enter", "open", "Open", show=False),
        Binding("s", "app.cycle_sort", "Sort"),
    ]

    cursor: reactive[int] = reactive(0, always_update=True, init=False)

    class Highlighted(Message):
        """The cursor is on another session (None: the list is empty)."""

        def __init__(self, ref: SessionRef | None) -> None:
            super().__init__()
            self.ref = ref

    class Opened(Message):
        """Enter on a session: show it and move to the transcript."""

        def __init__(self, ref: SessionRef) -> None:
            super().__init__()
            self.ref = ref

    class CountsWanted(Message):
        """Rows on screen (or every row, to sort by count) whose count is unknown or stale."""

        def __init__(self, refs: list[SessionRef], *, urgent: bool = True) -> None:
            super().__init__()
            self.refs = refs
            self.urgent = urgent

    class TypedToFilter(Message):
        """A printable key no command uses: the user started typing a filter."""

        def __init__(self, character: str) -> None:
            super().__init__()
            self.character = character

    def __init__(
        self,
        *,
        clock: Clock,
        stuck_after: float,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.clock = clock
        self.stuck_after = stuck_after
        self.show_backend = False
        self.sort_mode: SortMode = "activity"
        self.filter_text = ""
        self._rows: dict[SessionRef, SessionRow] = {}
        self._partial = False  # only the first sessions are listed yet
        self._listing_total: int | None = None  # how many in all, while partial (None: unknown)
        self._view: list[SessionRow] = []
        self._index: dict[SessionRef, int] = {}
        self._posted: SessionRef | None = None
        self._lines: LRUCache[tuple[int, int], Strip] = LRUCache(512)
        self._asked: set[SessionRef] = set()  # counts asked for and not yet handed down
        self._wanted: list[SessionRow] = []

    # --- data in (attributes down) ------------------------------------------------------------

    def set_sessions(
        self,
        metas: Iterable[SessionMetadata],
        backends: Iterable[BackendName] | None = None,
        *,
        partial: bool = False,
        total: int | None = None,
    ) -> None:
        """Replace every row of ``backends`` (all rows when None) with ``metas``. ``partial``:
        they are the first of ``total`` sessions (None: not counted yet); the rest are being
        listed."""
        self._partial, self._listing_total = partial, total
        with no_gc():  # 10,000 new rows would set off several full collections of the heap
            self._set_sessions(metas, backends)

    def _set_sessions(
        self, metas: Iterable[SessionMetadata], backends: Iterable[BackendName] | None
    ) -> None:
        scope = set(backends) if backends is not None else None
        fresh = {ref_of(m): m for m in metas}
        kept = {
            ref: row
            for ref, row in self._rows.items()
            if scope is not None and ref.backend not in scope
        }
        kept.update({ref: make_row(m, self._rows.get(ref)) for ref, m in fresh.items()})
        self._rows = kept
        self._asked.difference_update(fresh)
        self._rebuild()

    def upsert(self, metas: Iterable[SessionMetadata], gone: Iterable[SessionRef] = ()) -> None:
        metas, gone = list(metas), list(gone)
        if len(metas) + len(gone) <= SMALL_UPSERT and self._view:
            self._upsert_in_place(metas, gone)
            return
        for meta in metas:
            ref = ref_of(meta)
            self._rows[ref] = make_row(meta, self._rows.get(ref))
            self._asked.discard(ref)
        for ref in gone:
            self._rows.pop(ref, None)
        self._rebuild()

    def _upsert_in_place(self, metas: list[SessionMetadata], gone: list[SessionRef]) -> None:
        """A few changed sessions (the live tail's case): move just their rows, no full sort."""
        current = self.highlighted if self._posted is None else self._posted
        view = self._view
        before = len(view)
        moved: list[int] = []  # where rows left and arrived
        metas = list({ref_of(m): m for m in metas}.values())
        leaving = [self._index.pop(ref, None) for ref in {*gone, *(ref_of(m) for m in metas)}]
        for at in sorted((a for a in leaving if a is not None), reverse=True):
            del view[at]  # back to front, so the positions still to delete stay right
            moved.append(at)
        for ref in gone:
            self._rows.pop(ref, None)
        for meta in metas:
            ref = ref_of(meta)
            row = self._rows[ref] = make_row(meta, self._rows.get(ref))
            self._asked.discard(ref)
            if matches(row, self.filter_text):
                at = self._insertion_point(row)
                view.insert(at, row)
                moved.append(at)
        # Only rows between the first and last moved position shifted (all below them when the
        # list got longer or shorter), each later insert pushing a noted row at most one further:
        # renumber those, not all 10,000.
        if moved:
            same = len(view) == before
            self._reindex(min(moved), max(moved) + len(metas) + 1 if same else len(view))
        touched = [self.cursor, *moved]
        self.virtual_size = Size(self.scrollable_content_region.width, self._content_height())
        fallback = min(self.cursor, max(0, len(view) - 1))
        new_cursor = fallback if current is None else self._index.get(current, fallback)
        touched.append(new_cursor)
        self.set_reactive(SessionList.cursor, new_cursor)
        # Rows between the first and last touched one shifted; the rest are as painted (unless
        # the list got longer or shorter: then everything below shifted too).
        # (Positions are noted mid-way: each later insert can push a noted row one further.)
        low = min(touched)
        high = max(touched) + len(metas) if len(view) == before else max(before, len(view))
        self._repaint_rows(low, high)
        self._after_cursor_move()

    def _repaint_rows(self, low: int, high: int) -> None:
        """Repaint rows ``low..high`` only (a live tail touches one row, not the screen)."""
        top, bottom = low * self.ROW_HEIGHT, (high + 1) * self.ROW_HEIGHT
        for key in [k for k in self._lines.keys() if top <= k[0] < bottom]:  # noqa: SIM118 (not a dict)
            self._lines.discard(key)
        first = max(top, int(self.scroll_offset.y))
        last = min(bottom, int(self.scroll_offset.y) + self.scrollable_content_region.height)
        if last > first:
            self.refresh_lines(first, last - first)
        if not self._view:
            self.refresh()

    def _reindex(self, start: int, stop: int | None = None) -> None:
        index, view = self._index, self._view
        for i in range(start, len(view) if stop is None else min(stop, len(view))):
            index[view[i].ref] = i

    def _insertion_point(self, row: SessionRow) -> int:
        """Where ``row`` goes in the sorted view: after every row that sorts before it."""
        key, reverse = sort_key(self.sort_mode), self.sort_mode == "activity"
        mine = key(row)
        lo, hi = 0, len(self._view)
        while lo < hi:
            mid = (lo + hi) // 2
            theirs = key(self._view[mid])
            before = theirs > mine if reverse else theirs <= mine
            if before:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def set_counts(
        self, counts: Mapping[SessionRef, int], unreadable: Mapping[SessionRef, bool] | None = None
    ) -> None:
        unreadable = unreadable or {}
        shown: list[int] = []
        for ref, count in counts.items():
            row = self._rows.get(ref)
            if row is not None:
                flag = unreadable.get(ref, row.unreadable)
                new = replace(row, count=count, stale=False, unreadable=flag)
                self._rows[ref] = new
                at = self._index.get(ref)
                if at is not None:
                    self._view[at] = new  # same place: no re-sort unless sorted by count
                    shown.append(at)
            self._asked.discard(ref)
        if self.sort_mode == "count":
            self._rebuild()
        elif len(shown) <= SMALL_UPSERT:
            for at in shown:
                self._repaint_rows(at, at)
        else:
            self._lines.clear()
            self.refresh()

    def recount(self, ref: SessionRef) -> None:
        """Ask again for ``ref``'s count when it is painted (if it is still unknown or stale)."""
        self._asked.discard(ref)
        self._lines.clear()
        self.refresh()

    def set_filter(self, text: str) -> None:
        self.filter_text = text.strip().casefold()
        self._rebuild()

    def cycle_sort(self) -> SortMode:
        self.sort_mode = SORT_MODES[(SORT_MODES.index(self.sort_mode) + 1) % len(SORT_MODES)]
        self._rebuild()
        if self.sort_mode == "count":  # sorting by count needs every count, not just the shown
            refs = [ref for ref in self.uncounted() if ref not in self._asked]
            self._asked.update(refs)
            if refs:
                self.post_message(self.CountsWanted(refs, urgent=False))
        return self.sort_mode

    # --- data out --------------------------------------------------------------------------

    @property
    def highlighted(self) -> SessionRef | None:
        return self._view[self.cursor].ref if 0 <= self.cursor < len(self._view) else None

    @property
    def refs(self) -> list[SessionRef]:
        """The sessions shown, in display order."""
        return [row.ref for row in self._view]

    @property
    def shown(self) -> int:
        """How many sessions pass the filter."""
        return len(self._view)

    @property
    def total(self) -> int:
        """How many sessions (while partial and not counted yet: how many are listed)."""
        if self._partial and self._listing_total is not None:
            return self._listing_total
        return len(self._rows)

    @property
    def total_known(self) -> bool:
        return not self._partial or self._listing_total is not None

    def row(self, ref: SessionRef) -> SessionRow | None:
        return self._rows.get(ref)

    def uncounted(self) -> list[SessionRef]:
        """Sessions whose count is unknown or stale: the shown ones first, in display order."""
        shown = [r.ref for r in self._view if r.count is None or r.stale]
        seen = set(shown)
        hidden = [
            ref for ref, r in self._rows.items() if (r.count is None or r.stale) and ref not in seen
        ]
        return shown + hidden

    def select(self, ref: SessionRef) -> bool:
        """Move the cursor to ``ref``; False when it is not shown (filtered out or unknown)."""
        index = self._index.get(ref)
        if index is None:
            return False
        self.cursor = index
        return True

    # --- building the view -----------------------------------------------------------------

    def _rebuild(self, resort: bool = True) -> None:
        current = self.highlighted if self._posted is None else self._posted
        if resort:
            shown = (r for r in self._rows.values() if matches(r, self.filter_text))
            self._view = sort_rows(shown, self.sort_mode)
        else:
            self._view = [self._rows[r.ref] for r in self._view if r.ref in self._rows]
        self._index = {row.ref: i for i, row in enumerate(self._view)}
        self.virtual_size = Size(self.scrollable_content_region.width, self._content_height())
        self._lines.clear()
        fallback = min(self.cursor, max(0, len(self._view) - 1))
        new_cursor = fallback if current is None else self._index.get(current, fallback)
        self.set_reactive(SessionList.cursor, new_cursor)
        self._after_cursor_move()
        self.refresh()

    def _content_height(self) -> int:
        return max(1, len(self._view)) * self.ROW_HEIGHT

    def on_resize(self, event: events.Resize) -> None:
        self.virtual_size = Size(self.scrollable_content_region.width, self._content_height())
        self._lines.clear()

    def refresh_times(self) -> None:
        """Relative times and stuck badges age: repaint."""
        self._lines.clear()
        self.refresh()

    # --- cursor ----------------------------------------------------------------------------

    def validate_cursor(self, value: int) -> int:
        return max(0, min(value, len(self._view) - 1)) if self._view else 0

    def watch_cursor(self) -> None:
        self._lines.clear()
        self._after_cursor_move()
        self.refresh()

    def _after_cursor_move(self) -> None:
        if self.is_mounted and self._view:
            top = self.cursor * self.ROW_HEIGHT
            self.scroll_to_region(
                Region(0, top, 1, self.ROW_HEIGHT), animate=False, force=True, immediate=True
            )
        ref = self.highlighted
        if ref != self._posted:
            self._posted = ref
            self.post_message(self.Highlighted(ref))

    def action_cursor_up(self) -> None:
        self.cursor -= 1

    def action_cursor_down(self) -> None:
        self.cursor += 1

    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height // self.ROW_HEIGHT - 1)

    def action_page_up(self) -> None:
        self.cursor -= self._page()

    def action_page_down(self) -> None:
        self.cursor += self._page()

    def action_first(self) -> None:
        self.cursor = 0

    def action_last(self) -> None:
        self.cursor = len(self._view) - 1

    def action_open(self) -> None:
        if (ref := self.highlighted) is not None:
            self.post_message(self.Opened(ref))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        index = (offset.y + int(self.scroll_offset.y)) // self.ROW_HEIGHT
        if index < len(self._view):
            self.cursor = index
            if event.chain > 1:
                self.action_open()

    def on_key(self, event: events.Key) -> None:
        if not event.is_printable or not event.character or event.character == " ":
            return
        if event.key in self.screen.active_bindings:
            return
        event.stop()
        event.prevent_default()
        self.post_message(self.TypedToFilter(event.character))

    def on_focus(self) -> None:
        self._lines.clear()
        self.refresh()

    def on_blur(self) -> None:
        self._lines.clear()
        self.refresh()

    # --- painting --------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        line_y = scroll_y + y
        width = self.scrollable_content_region.width
        key = (line_y, width)
        strip = self._lines.get(key)
        if strip is None:
            strip = self._render_row_line(line_y, width)
            self._lines[key] = strip
        return strip.apply_offsets(scroll_x, line_y)

    def _render_row_line(self, line_y: int, width: int) -> Strip:
        base = self.rich_style
        index, part = divmod(line_y, self.ROW_HEIGHT)
        if not self._view:
            text = self._empty_text() if line_y == 0 else Text()
        elif index >= len(self._view):
            return Strip.blank(width, base)
        else:
            row = self._view[index]
            text = self._title_line(row, width) if part == 0 else self._detail_line(row, width)
            if (row.count is None or row.stale) and row.ref not in self._asked:
                self._want_count(row)
        text.truncate(width, overflow="ellipsis", pad=True)
        if self._view and index == self.cursor:
            cls = "session-list--cursor" if self.has_focus else "session-list--cursor-blurred"
            cursor = self._style(cls)
            text.stylize_before(cursor)
            if cursor.bgcolor is not None:
                # The parts' own styles carry the list's background: the cursor's goes on top,
                # so the whole row is highlighted while badges keep their colours.
                text.stylize(Style(bgcolor=cursor.bgcolor))
        text.stylize_before(base)
        segments = list(text.render(self.app.console))
        return Strip(segments, cell_len(text.plain)).crop_extend(0, width, base)

    def _want_count(self, row: SessionRow) -> None:
        """Counts are read lazily: only for rows that get painted, after the paint."""
        self._asked.add(row.ref)
        self._wanted.append(row)
        if len(self._wanted) == 1:
            self.call_later(self._post_wanted)  # after this paint, not before it

    def _post_wanted(self) -> None:
        rows, self._wanted = self._wanted, []
        # Small sessions first: one huge file must not hold the rest of the screen at "…".
        rows.sort(key=lambda r: r.meta.size or 0)
        self.post_message(self.CountsWanted([r.ref for r in rows]))

    def _empty_text(self) -> Text:
        dim = self.get_component_rich_style("session-list--dim")
        if self._rows:
            return Text(f" no session matches {one_line(self.filter_text, 40)!r}", style=dim)
        return Text(" no sessions", style=dim)

    def _title_line(self, row: SessionRow, width: int) -> Text:
        when = relative_time(row.activity, self.clock())
        room = max(1, width - cell_len(when) - 3)
        title = Text(one_line(row.title, 500), style=self._style("session-list--title"))
        title.truncate(room, overflow="ellipsis")
        gap = max(1, width - 1 - title.cell_len - cell_len(when))
        return Text.assemble(" ", title, " " * gap, (when, self._style("session-list--dim")))

    def _detail_line(self, row: SessionRow, width: int) -> Text:
        dim = self._style("session-list--dim")
        # Badges first: in a narrow list they are what must stay visible.
        parts = [
            Text(label, style=self._style(cls))
            for label, cls in badges(row, self.stuck_after, self.clock())
        ]
        parts.append(Text(one_line(row.source, 40), style=dim))
        parts.append(Text(count_label(row), style=dim))
        if self.show_backend:
            parts.append(Text(row.meta.backend, style=dim))
        return Text(" ") + Text(" · ", style=dim).join(parts)

    def _style(self, cls: str) -> Style:
        return self.get_component_rich_style(cls)
