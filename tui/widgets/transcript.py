"""A virtualized transcript: one session, any size, read a screenful at a time.

The view is modelled on message positions, not on line heights (unknown for a million messages
of any size): an *anchor* (a message position and a line offset inside it) says what sits on
the top line. Each layout renders only the messages needed to fill the viewport, from a bounded
cache; messages not loaded yet show as one-line placeholders and are fetched by a thread worker
through the storage API (``read_tail``/``read_range``), never on the UI thread. The scrollbar
maps to the message position, not to lines.

While a JSONL session's index is still being built, the tail is shown with *local* positions
(``#?`` headers) and the view cannot scroll above it; ``set_count`` switches to real indices.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, cast

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events, on, work
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.worker import Worker, WorkerState, get_current_worker

from storage.models import Changes, SkippedLine, StoredMessage, Tail
from tui.render import render_message, render_placeholder, render_skipped, sanitize

WORKER_GROUP = "transcript"


class TranscriptSource(Protocol):
    """The part of ``storage.backend.SessionBackend`` the transcript reads through."""

    def read_tail(self, key: str, n: int) -> Tail: ...

    def read_range(self, key: str, start: int, stop: int) -> list[StoredMessage]: ...

    def count_messages(self, key: str) -> int: ...

    def skipped_lines(self, key: str) -> list[SkippedLine]: ...


# --- what the workers hand back -------------------------------------------------------------


class _IndexProgressed(Message):
    """From the index worker: ``fraction`` of the session indexed (for ``generation``)."""

    def __init__(self, generation: int, fraction: float) -> None:
        super().__init__()
        self.generation = generation
        self.fraction = fraction


@dataclass(frozen=True)
class _TailRead:
    generation: int
    tail: Tail


@dataclass(frozen=True)
class _IndexRead:
    generation: int
    count: int | None
    skipped: tuple[SkippedLine, ...]


@dataclass(frozen=True)
class _RangeRead:
    generation: int
    start: int
    stop: int
    messages: tuple[StoredMessage, ...]


_StripKey = tuple[int, int, bool, bool, tuple[str, ...], bool]


class Transcript(ScrollView, can_focus=True):
    """The messages of one session, virtualized. See the module docstring for the design."""

    DEFAULT_CSS = """
    Transcript {
        overflow-y: scroll;
        overflow-x: hidden;
        background: $surface;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "select_previous", "Previous", show=False),
        Binding("down,j", "select_next", "Next", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown,space", "page_down", "Page down", show=False),
        Binding("g,home", "top", "Top", show=False),
        Binding("G,end", "bottom", "Bottom", show=False),
        Binding("enter", "toggle_expand", "Expand"),
        Binding("f", "toggle_follow", "Follow"),
    ]

    TAIL_SIZE: ClassVar[int] = 64
    PREFETCH: ClassVar[int] = 24
    FETCH_MAX: ClassVar[int] = 256
    MESSAGE_CACHE: ClassVar[int] = 1024
    STRIP_CACHE: ClassVar[int] = 256
    WHEEL_LINES: ClassVar[int] = 3

    # --- messages up ------------------------------------------------------------------------

    class Opened(Message):
        """The tail of a session is on screen. ``cursor`` is where a change feed starts."""

        def __init__(self, transcript: Transcript, key: str, cursor: int) -> None:
            super().__init__()
            self.transcript = transcript
            self.key = key
            self.cursor = cursor

        @property
        def control(self) -> Transcript:
            return self.transcript

    class CountChanged(Message):
        """The number of messages changed, or became known (``index_known``)."""

        def __init__(self, transcript: Transcript, count: int, index_known: bool) -> None:
            super().__init__()
            self.transcript = transcript
            self.count = count
            self.index_known = index_known

        @property
        def control(self) -> Transcript:
            return self.transcript

    class IndexProgress(Message):
        """The background index build of a big session got further (``fraction`` 0..1)."""

        def __init__(self, transcript: Transcript, fraction: float) -> None:
            super().__init__()
            self.transcript = transcript
            self.fraction = fraction

        @property
        def control(self) -> Transcript:
            return self.transcript

    class SelectionChanged(Message):
        """Another message was selected. ``index`` is None while indices are not known."""

        def __init__(
            self, transcript: Transcript, index: int | None, message: StoredMessage | None
        ) -> None:
            super().__init__()
            self.transcript = transcript
            self.index = index
            self.message = message

        @property
        def control(self) -> Transcript:
            return self.transcript

    class FollowChanged(Message):
        """Follow mode or the number of unseen new messages (``pending``) changed."""

        def __init__(self, transcript: Transcript, follow: bool, pending: int) -> None:
            super().__init__()
            self.transcript = transcript
            self.follow = follow
            self.pending = pending

        @property
        def control(self) -> Transcript:
            return self.transcript

    class LoadFailed(Message):
        """Reading the session failed; ``error`` is a one-line message."""

        def __init__(self, transcript: Transcript, error: str) -> None:
            super().__init__()
            self.transcript = transcript
            self.error = error

        @property
        def control(self) -> Transcript:
            return self.transcript

    # --- construction -----------------------------------------------------------------------

    def __init__(
        self,
        source: TranscriptSource | None = None,
        key: str | None = None,
        *,
        auto_count: bool = True,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        """Show session ``key`` of ``source`` once mounted (or later, through ``open``).

        With ``auto_count`` the transcript counts the messages and lists the skipped lines itself
        in a worker; without it the app calls ``set_count`` and ``set_skipped``.
        """
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self._source = source
        self._key = key
        self._auto_count = auto_count
        self._generation = 0
        self._index_cancel = threading.Event()
        self._messages: LRUCache[int, StoredMessage] = LRUCache(self.MESSAGE_CACHE)
        self._strips: LRUCache[_StripKey, tuple[StoredMessage, list[Strip]]] = LRUCache(
            self.STRIP_CACHE
        )
        self._reset_state()

    def _reset_state(self) -> None:
        self._count = 0
        self._index_known = False
        self._opened = False
        self._error: str | None = None
        self._messages.clear()
        self._strips.clear()
        self._skipped: dict[int, tuple[SkippedLine, ...]] = {}
        self._skipped_strips: dict[tuple[int, int], list[Strip]] = {}
        self._absent: set[int] = set()
        self._expanded: set[int] = set()
        self._selected: int | None = None
        self._top = 0
        self._top_line = 0
        self._follow = True
        self._pending = 0
        self._terms: tuple[str, ...] = ()
        self._lines: list[Strip] = []
        self._owners: list[int] = []
        self._at_bottom = True
        self._jobs: dict[Worker[Any], range | None] = {}  # this session's workers: what they read
        self._pending_jump: tuple[int, bool] | None = None
        self._syncing_scroll = False
        self._indexing: float | None = None  # how far the index build is, while it runs

    # --- public API -------------------------------------------------------------------------

    @property
    def count(self) -> int:
        """Messages known so far (while ``index_known`` is False: in the loaded tail)."""
        return self._count

    @property
    def index_known(self) -> bool:
        return self._index_known

    @property
    def indexing(self) -> float | None:
        """How far (0..1) the index build is while indices are not known; else None."""
        return None if self._index_known else self._indexing

    @property
    def jump_pending(self) -> bool:
        """A jump (``g``, a search hit) waits for the index."""
        return self._pending_jump is not None

    @property
    def follow(self) -> bool:
        """Pinned to the bottom: new messages scroll into view."""
        return self._follow

    @follow.setter
    def follow(self, value: bool) -> None:
        self._set_follow(value)
        self._relayout()

    @property
    def pending_new(self) -> int:
        """Messages that arrived since follow paused."""
        return self._pending

    @property
    def selected_index(self) -> int | None:
        """The selected message's index (None if none, or while indices are not known)."""
        return self._selected if self._index_known else None

    @selected_index.setter
    def selected_index(self, index: int) -> None:
        self.select_index(index)

    def select_index(self, index: int) -> None:
        """Select message ``index`` and scroll as little as needed to show it."""
        self._move_selection_to(index)

    @property
    def selected_message(self) -> StoredMessage | None:
        return None if self._selected is None else self._messages.get(self._selected)

    @property
    def search_terms(self) -> tuple[str, ...]:
        return self._terms

    def visible_range(self) -> range:
        """Positions of the messages with at least one line on screen."""
        shown = [owner for owner in self._owners if 0 <= owner < self._count]
        return range(min(shown), max(shown) + 1) if shown else range(0)

    def is_expanded(self, index: int) -> bool:
        return index in self._expanded

    def open(self, source: TranscriptSource, key: str, tail: Tail | None = None) -> None:
        """Show another session, starting at its tail (``tail``: already read, by launch)."""
        self._source, self._key = source, key
        self._start(tail)

    def set_messages(
        self,
        messages: Sequence[StoredMessage],
        skipped: Sequence[SkippedLine] = (),
        *,
        count: int | None = None,
    ) -> None:
        """Show messages the app already read (with their real indices), pinned to the bottom.

        ``count`` defaults to one past the last index. Positions not given are read through the
        source when one is set (``open`` or the constructor), else shown as not loaded.
        """
        self._new_generation()
        self._opened = self._index_known = True
        for msg in messages:
            self._messages.set(msg.index, msg)
        last = max((msg.index + 1 for msg in messages), default=0)
        self._count = last if count is None else count
        self._select(self._count - 1)
        self.set_skipped(skipped)
        self.post_message(self.CountChanged(self, self._count, True))

    def has_index(self, index: int) -> bool:
        """True if message ``index`` is part of the session shown (loaded or not)."""
        return self._index_known and 0 <= index < self._count

    def reload(self) -> None:
        """Read the session again (after ``Changes.reset``), keeping the place where possible."""
        top = None if self._follow or not self._index_known else self._top
        terms = self._terms
        self._start()
        self._terms = terms
        if top is not None:
            self._pending_jump = (top, False)

    def set_count(self, count: int) -> None:
        """The session holds ``count`` messages; the first call makes indices known."""
        if not self._index_known:
            self._become_known(count)
        elif count != self._count:
            self._resize_to(count)
        self._relayout()

    def set_skipped(self, lines: Iterable[SkippedLine]) -> None:
        """Every skipped line of the session, placed by ``before_index`` (ignored until indices
        are known: the tail's own skipped lines are shown meanwhile)."""
        if not self._index_known:
            return
        placed: dict[int, list[SkippedLine]] = {}
        for line in lines:
            at = self._count if line.before_index is None else line.before_index
            placed.setdefault(min(at, self._count), []).append(line)
        self._skipped = {at: tuple(group) for at, group in placed.items()}
        self._skipped_strips.clear()
        self._relayout()

    def append_messages(
        self, messages: Sequence[StoredMessage], skipped: Sequence[SkippedLine] = ()
    ) -> None:
        """New messages (and skipped lines) at the end of the session, e.g. from a change feed."""
        before = self._count
        for msg in messages:
            at = msg.index if self._index_known and msg.index >= 0 else self._count
            self._messages.set(at, msg)
            self._absent.discard(at)
            self._count = max(self._count, at + 1)
        for line in skipped:
            self._add_skipped(line, self._position_of(line))
        self._after_growth(before)
        self._relayout()

    def apply_changes(self, changes: Changes) -> None:
        """Apply what ``SessionBackend.changes_since`` returned."""
        if changes.reset:
            self.reload()
        else:
            self.append_messages(changes.messages, changes.skipped)

    def scroll_to_index(
        self, index: int, *, select: bool = True, terms: Iterable[str] | None = None
    ) -> None:
        """Put message ``index`` on the top line and (with ``select``) highlight it as selected.

        ``terms`` (e.g. a search query's words) are marked wherever they appear. Before indices
        are known the jump waits for ``set_count``.
        """
        if terms is not None:
            self.set_search_terms(terms)
        if not self._index_known:
            self._pending_jump = (index, select)
            return
        self._jump(index, select)

    def set_search_terms(self, terms: Iterable[str]) -> None:
        """Mark these words in every rendered message (empty: no marks)."""
        self._terms = tuple(term for term in terms if term.strip())
        self._relayout()

    def toggle_expanded(self, index: int) -> None:
        if index in self._expanded:
            self._expanded.discard(index)
        else:
            self._expanded.add(index)
        self._navigate(lambda: self._reveal(index))

    # --- actions ----------------------------------------------------------------------------

    def action_select_previous(self) -> None:
        self._move_selection(-1)

    def action_select_next(self) -> None:
        self._move_selection(+1)

    def action_page_up(self) -> None:
        self._navigate(lambda: self._page(-1))

    def action_page_down(self) -> None:
        self._navigate(lambda: self._page(+1))

    def action_top(self) -> None:
        if not self._index_known and self._opened:
            # Only the tail is loaded: its first message is not the session's first. Jump for
            # real as soon as the index says where #0 is (the title shows the progress).
            self._pending_jump = (0, True)
            self.post_message(self.IndexProgress(self, self._indexing or 0.0))
            return
        self._navigate(self._go_top)

    def action_bottom(self) -> None:
        if self._count:
            self._select(self._count - 1)
        self._set_follow(True)
        self._relayout()

    def action_toggle_expand(self) -> None:
        if self._selected is not None:
            self.toggle_expanded(self._selected)

    def action_toggle_follow(self) -> None:
        self.follow = not self._follow

    # --- Textual hooks ----------------------------------------------------------------------

    def on_mount(self) -> None:
        if self._source is not None and self._key is not None:
            self._start()

    def on_resize(self, event: events.Resize) -> None:
        self._relayout()

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        line = self._lines[y] if y < len(self._lines) else Strip.blank(width)
        return line.apply_style(self.rich_style)

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        event.prevent_default()
        event.stop()
        self._navigate(lambda: self._scroll_lines(self.WHEEL_LINES))

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        event.prevent_default()
        event.stop()
        self._navigate(lambda: self._scroll_lines(-self.WHEEL_LINES))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or not 0 <= offset.y < len(self._owners):
            return
        owner = self._owners[offset.y]
        if 0 <= owner < self._count:
            self._navigate(lambda: self._select(owner))
            if event.chain >= 2:
                self.toggle_expanded(owner)

    def scroll_page_up(self, **kwargs: Any) -> None:  # the scrollbar track was clicked
        self.action_page_up()

    def scroll_page_down(self, **kwargs: Any) -> None:
        self.action_page_down()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self._syncing_scroll or not self._index_known or not self._count:
            return
        if abs(new_value - self._scroll_position()) < 1:
            return  # a re-validation of the value we set, not a move
        self._jump_to_scroll(new_value)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place worker results and failures come back (stale workers are ignored)."""
        worker = event.worker
        if worker not in self._jobs or not worker.is_finished:
            return
        span = self._jobs.pop(worker)
        if event.state == WorkerState.SUCCESS:
            self._apply(worker.result)
        elif event.state == WorkerState.ERROR:
            if span is not None:
                self._absent.update(span)  # not retried until the session changes
            self._fail(worker.error)

    # --- workers: the only places that touch storage -----------------------------------------

    @work(thread=True, exit_on_error=False, group=WORKER_GROUP, description="read session tail")
    def _read_tail(self, source: TranscriptSource, key: str, generation: int) -> _TailRead:
        return _TailRead(generation, source.read_tail(key, self.TAIL_SIZE))

    @work(thread=True, exit_on_error=False, group=WORKER_GROUP, description="count messages")
    def _read_index(
        self, source: TranscriptSource, key: str, generation: int, count: bool
    ) -> _IndexRead:
        total = self._build_index(source, key, generation) if count else None
        return _IndexRead(generation, total, tuple(source.skipped_lines(key)))

    def _build_index(self, source: TranscriptSource, key: str, generation: int) -> int | None:
        """The message count; through ``build_index`` (progress shown, cancellable) if the store
        has one (JSONL), else ``count_messages``."""
        build = getattr(source, "build_index", None)
        if build is None:
            return source.count_messages(key)
        worker = get_current_worker()
        cancel = self._index_cancel

        def progress(done: int, total: int) -> None:
            if worker.is_cancelled:
                cancel.set()
            elif total > 0:
                self.post_message(_IndexProgressed(generation, done / total))

        return cast("int | None", build(key, progress=progress, cancel=cancel))

    @work(thread=True, exit_on_error=False, group=WORKER_GROUP, description="read messages")
    def _read_range(
        self, source: TranscriptSource, key: str, generation: int, start: int, stop: int
    ) -> _RangeRead:
        return _RangeRead(generation, start, stop, tuple(source.read_range(key, start, stop)))

    def _new_generation(self) -> None:
        """Forget the session shown; results of workers started before are ignored."""
        self.workers.cancel_group(self, WORKER_GROUP)
        self._index_cancel.set()  # an index build of the session shown before stops
        self._index_cancel = threading.Event()
        self._generation += 1
        self._reset_state()

    def _start(self, tail: Tail | None = None) -> None:
        self._new_generation()
        self._relayout()
        if tail is not None:
            self._apply_tail(tail)
        elif self._source is not None and self._key is not None:
            self._track(self._read_tail(self._source, self._key, self._generation))

    def _track(self, worker: Worker[Any], span: range | None = None) -> None:
        self._jobs[worker] = span

    def _reading_range(self) -> bool:
        return any(span is not None for span in self._jobs.values())

    def _apply(self, result: object) -> None:
        if getattr(result, "generation", None) != self._generation:
            return
        if isinstance(result, _TailRead):
            self._apply_tail(result.tail)
        elif isinstance(result, _IndexRead):
            self._apply_index(result)
        elif isinstance(result, _RangeRead):
            self._apply_range(result)

    def _fail(self, error: BaseException | None) -> None:
        first = str(error).strip().splitlines()[:1] if error is not None else []
        self._error = sanitize(first[0] if first else type(error).__name__)[:200]
        self.post_message(self.LoadFailed(self, self._error))
        self._relayout()

    def _apply_tail(self, tail: Tail) -> None:
        self._opened = True
        self._error = None
        self._index_known = tail.first_index is not None
        base = tail.first_index or 0
        for offset, msg in enumerate(tail.messages):
            self._messages.set(base + offset, msg)
        self._count = base + len(tail.messages)
        for line in tail.skipped:
            self._add_skipped(line, self._tail_position(line, tail, base))
        self._set_follow(True)
        self._select(self._count - 1)
        self._relayout()
        assert self._key is not None
        self.post_message(self.Opened(self, self._key, tail.cursor))
        self.post_message(self.CountChanged(self, self._count, self._index_known))
        if self._auto_count and self._source is not None:
            # After the tail is painted: the index build competes with the paint for the GIL.
            self.call_after_refresh(self._start_index, self._generation)
        if self._index_known:
            self._take_pending_jump()

    def _start_index(self, generation: int) -> None:
        if generation != self._generation or self._source is None or self._key is None:
            return  # another session was opened meanwhile
        worker = self._read_index(self._source, self._key, generation, not self._index_known)
        self._track(worker)

    def on_unmount(self) -> None:
        self._index_cancel.set()

    @on(_IndexProgressed)
    def _index_progressed(self, message: _IndexProgressed) -> None:
        if message.generation == self._generation and not self._index_known:
            self._indexing = message.fraction
            self.post_message(self.IndexProgress(self, message.fraction))

    def _apply_index(self, result: _IndexRead) -> None:
        if result.count is not None:
            self.set_count(result.count)
        self.set_skipped(result.skipped)

    def _apply_range(self, result: _RangeRead) -> None:
        self._error = None
        got = set()
        for msg in result.messages:
            self._messages.set(msg.index, msg)
            got.add(msg.index)
        self._absent.update(set(range(result.start, result.stop)) - got)
        self._relayout()

    def _request(self, missing: list[int]) -> None:
        """Fetch the missing positions (plus some around them); one read in flight at a time."""
        wanted = [at for at in missing if at not in self._absent]
        if not wanted or self._reading_range() or not self._index_known or self._source is None:
            return
        start = max(0, min(wanted) - self.PREFETCH)
        stop = min(self._count, max(wanted) + 1 + self.PREFETCH, start + self.FETCH_MAX)
        assert self._key is not None
        worker = self._read_range(self._source, self._key, self._generation, start, stop)
        self._track(worker, range(start, stop))

    # --- positions while indices are unknown -------------------------------------------------

    def _tail_position(self, line: SkippedLine, tail: Tail, base: int) -> int:
        if self._index_known and line.before_index is not None:
            return line.before_index
        after = [i for i, msg in enumerate(tail.messages) if (msg.offset or 0) > line.offset]
        return base + (after[0] if after else len(tail.messages))

    def _position_of(self, line: SkippedLine) -> int:
        if self._index_known and line.before_index is not None:
            return line.before_index
        return self._count

    def _add_skipped(self, line: SkippedLine, at: int) -> None:
        self._skipped[at] = (*self._skipped.get(at, ()), line)
        self._skipped_strips.pop((at, self._width()), None)

    def _become_known(self, count: int) -> None:
        shift = max(0, count - self._count)
        self._index_known = True
        self._count = count
        self._top += shift
        self._selected = None if self._selected is None else self._selected + shift
        self._expanded = {at + shift for at in self._expanded}
        self._skipped = {at + shift: lines for at, lines in self._skipped.items()}
        self._skipped_strips.clear()
        # Local positions were a guess: read the messages again under their real indices.
        self._messages.clear()
        self._strips.clear()
        self._absent.clear()
        self.post_message(self.CountChanged(self, count, True))
        self._post_selection()
        self._take_pending_jump()

    def _resize_to(self, count: int) -> None:
        before = self._count
        self._count = count
        self._absent.clear()
        if count < before:
            self._top = min(self._top, max(0, count - 1))
            if self._selected is not None and self._selected >= count:
                self._select(count - 1 if count else None)
        self._after_growth(before)

    def _after_growth(self, before: int) -> None:
        added = self._count - before
        if added <= 0:
            return
        if self._follow:
            if self._selected is None or self._selected >= before - 1:
                self._select(self._count - 1)
        else:
            self._pending += added
            self.post_message(self.FollowChanged(self, self._follow, self._pending))
        self.post_message(self.CountChanged(self, self._count, self._index_known))

    def _take_pending_jump(self) -> None:
        if self._pending_jump is not None:
            index, highlight = self._pending_jump
            self._pending_jump = None
            self._jump(index, highlight)

    # --- navigation -------------------------------------------------------------------------

    def _navigate(self, move: Callable[[], object]) -> None:
        """Run a user move with the view top-anchored; follow is then on iff at the bottom."""
        before = (self._top, self._top_line)
        was_following = self._follow
        self._follow = False
        move()
        self._relayout()
        moved = (self._top, self._top_line) != before
        self._follow = was_following
        self._set_follow(self._at_bottom if moved else was_following)
        if self._follow:
            self._relayout()

    def _set_follow(self, value: bool) -> None:
        changed = value != self._follow or (value and self._pending)
        self._follow = value
        if value:
            self._pending = 0
        if changed:
            self.post_message(self.FollowChanged(self, self._follow, self._pending))

    def _select(self, index: int | None) -> None:
        if index is not None:
            index = max(0, min(index, self._count - 1)) if self._count else None
        if index != self._selected:
            self._selected = index
            self._post_selection()

    def _post_selection(self) -> None:
        index = self._selected
        message = None if index is None else self._messages.get(index)
        self.post_message(self.SelectionChanged(self, self.selected_index, message))

    def _move_selection(self, step: int) -> None:
        if not self._count:
            return
        current = self._selected if self._selected is not None else self._count - 1
        self._move_selection_to(current + step)

    def _move_selection_to(self, index: int) -> None:
        if not self._count:
            return
        target = max(0, min(index, self._count - 1))

        def move() -> None:
            self._select(target)
            self._reveal(target)

        self._navigate(move)

    def _go_top(self) -> None:
        self._top, self._top_line = 0, 0
        self._select(0)

    def _jump(self, index: int, highlight: bool) -> None:
        index = max(0, min(index, self._count - 1))

        def move() -> None:
            self._top, self._top_line = index, 0
            if highlight:
                self._select(index)

        self._navigate(move)

    def _jump_to_scroll(self, y: float) -> None:
        if y >= self.max_scroll_y - 0.5:
            self.action_bottom()
            return

        def move() -> None:
            self._top, self._top_line = min(int(y), self._count - 1), 0

        self._navigate(move)

    def _page(self, direction: int) -> None:
        _, height = self._viewport()
        self._scroll_lines(direction * max(1, height - 1))
        self._relayout()
        shown = self.visible_range()
        if self._selected is not None and self._selected in shown:
            return
        if shown:
            self._select(shown.start if direction > 0 else shown.stop - 1)

    def _scroll_lines(self, delta: int) -> None:
        width = self._width()
        if delta < 0:
            self._top_line += delta
            while self._top_line < 0 and self._top > 0:
                self._top -= 1
                self._top_line += len(self._item(self._top, width, []))
            self._top_line = max(0, self._top_line)
            return
        top, line = self._top, self._top_line + delta
        while top < self._last_item() and line >= len(self._item(top, width, [])):
            line -= len(self._item(top, width, []))
            top += 1
        self._top, self._top_line = top, line

    def _reveal(self, index: int) -> None:
        """Scroll as little as possible to show message ``index`` (its start, if too tall)."""
        width, height = self._viewport()
        if index < self._top or (index == self._top and self._top_line > 0):
            self._top, self._top_line = index, 0
            return
        start = -self._top_line
        for at in range(self._top, index):
            start += len(self._item(at, width, []))
            if start >= height:
                break
        size = len(self._item(index, width, []))
        if start + size <= height:
            return
        if size >= height:
            self._top, self._top_line = index, 0
        else:
            self._anchor_bottom(index, width, height, [])

    # --- layout -----------------------------------------------------------------------------

    def _viewport(self) -> tuple[int, int]:
        region = self.scrollable_content_region
        return region.width, region.height

    def _width(self) -> int:
        return self._viewport()[0]

    def _last_item(self) -> int:
        """Items are the messages ``0..count-1`` plus item ``count``: skipped lines at the end."""
        return self._count

    def _item(self, at: int, width: int, missing: list[int]) -> list[Strip]:
        """The lines of item ``at``: skipped-line warnings in front of it, then the message."""
        strips = self._skipped_at(at, width) if at in self._skipped else []
        if at >= self._count:
            return strips
        msg = self._messages.get(at)
        if msg is None:
            if at not in self._absent:
                missing.append(at)
            note = "loading…" if self._source is not None else "not loaded"
            if at in self._absent:
                note = "not available (session changed?)"
            index = at if self._index_known else None
            return [*strips, *render_placeholder(index, width, note)]
        return [*strips, *self._message_strips(at, msg, width)]

    def _message_strips(self, at: int, msg: StoredMessage, width: int) -> list[Strip]:
        expanded, selected = at in self._expanded, at == self._selected
        key = (at, width, expanded, selected, self._terms, self._index_known)
        cached = self._strips.get(key)
        if cached is not None and cached[0] is msg:
            return cached[1]
        strips = render_message(
            msg,
            width,
            expanded=expanded,
            selected=selected,
            highlight=self._terms,
            known_index=self._index_known,
        )
        self._strips.set(key, (msg, strips))
        return strips

    def _skipped_at(self, at: int, width: int) -> list[Strip]:
        strips = self._skipped_strips.get((at, width))
        if strips is None:
            strips = [strip for line in self._skipped[at] for strip in render_skipped(line, width)]
            self._skipped_strips[(at, width)] = strips
        return strips

    def _anchor_bottom(self, last: int, width: int, height: int, missing: list[int]) -> None:
        """Anchor so that the end of item ``last`` is on the bottom line."""
        remaining = height
        for at in range(last, -1, -1):
            size = len(self._item(at, width, missing))
            if size >= remaining:
                self._top, self._top_line = at, size - remaining
                return
            remaining -= size
        self._top, self._top_line = 0, 0

    def _fill(self, width: int, height: int, missing: list[int]) -> bool:
        """Lay out the viewport from the anchor; True if the end of the session is on screen."""
        lines: list[Strip] = []
        owners: list[int] = []
        at, skip = self._top, self._top_line
        at_bottom = False
        while True:
            if at > self._last_item():
                at_bottom = True
                break
            rest = self._item(at, width, missing)[skip:]
            room = height - len(lines)
            lines.extend(rest[:room])
            owners.extend([at] * min(room, len(rest)))
            if len(rest) > room:
                break
            at, skip = at + 1, 0
        self._lines, self._owners = lines, owners
        return at_bottom

    def _relayout(self) -> None:
        """Recompute the visible lines from the anchor, fetch what is missing, sync the bar."""
        width, height = self._viewport()
        if width <= 0 or height <= 0 or not self.is_mounted:
            return
        missing: list[int] = []
        if self._follow:
            self._anchor_bottom(self._last_item(), width, height, missing)
        self._clamp_anchor(width)
        self._at_bottom = self._fill(width, height, missing)
        if self._at_bottom and len(self._lines) < height and (self._top or self._top_line):
            self._anchor_bottom(self._last_item(), width, height, missing)
            self._fill(width, height, missing)
        self._overlay(width, height)
        self._request(missing)
        self._sync_scrollbar(width, height)
        self.refresh()

    def _clamp_anchor(self, width: int) -> None:
        self._top = max(0, min(self._top, self._last_item()))
        size = len(self._item(self._top, width, []))
        self._top_line = max(0, min(self._top_line, size - 1))

    def _overlay(self, width: int, height: int) -> None:
        """Status lines drawn over the viewport: errors, loading, the new-messages marker."""
        if self._error is not None:
            self._put_line(0, f"⚠ could not read the session: {self._error}", Style(color="red"))
        elif not self._opened and self._key is not None:
            self._put_line(0, "reading session…", Style(dim=True, italic=True))
        elif self._index_known and not self._count and not self._skipped:
            self._put_line(0, "no messages in this session", Style(dim=True, italic=True))
        if not self._follow and self._pending:
            plural = "s" if self._pending != 1 else ""
            note = f" {self._pending:,} new message{plural} ↓ (G) "
            style = Style(color="black", bgcolor="bright_yellow", bold=True)
            self._put_line(height - 1, note, style, centered=True)

    def _put_line(self, y: int, note: str, style: Style, *, centered: bool = False) -> None:
        width, height = self._viewport()
        text = Text(note, no_wrap=True, overflow="ellipsis", end="")
        text.truncate(width)
        text.stylize(style)  # a span: Text.render drops a Text's own base style
        pad = (width - text.cell_len) // 2 if centered else 0
        strip = Strip([Segment(" " * pad), *text.render(self.app.console)]).adjust_cell_length(
            width
        )
        while len(self._lines) < height:
            self._lines.append(Strip.blank(width))
            self._owners.append(-1)
        self._lines[y] = strip
        self._owners[y] = -1

    # --- scrollbar --------------------------------------------------------------------------

    def _scroll_position(self) -> float:
        """Where the scrollbar should be: the anchor's position, or the end at the bottom."""
        if self._at_bottom:
            return float(self.max_scroll_y)
        return float(min(self._top, self.max_scroll_y))

    def _sync_scrollbar(self, width: int, height: int) -> None:
        virtual = self._count + height if self._index_known and self._count else height
        self._syncing_scroll = True
        try:
            if self.virtual_size != Size(width, virtual):
                self.virtual_size = Size(width, virtual)
            position = self._scroll_position()
            self.scroll_target_y = position
            self.scroll_y = position
        finally:
            self._syncing_scroll = False
