"""The browser: session list on the left, transcript on the right, search below it.

The opened ``Workspace`` is injected (``ZcSessionsApp(workspace, ...)``), never global. Every
store call runs in a thread worker and comes back as a message from ``tui.messages``; worker
failures surface in one place (``_worker_state``) as a one-line notification.
Live tail: ``storage.watch.ChangeFeed`` says which sessions changed, then the open session is
read with ``changes_since`` from the cursor of what is shown, and the list metadata refreshed.
"""

from __future__ import annotations

import gc
import hashlib
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

from rich.text import Text
from textual import events, on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Input, Label
from textual.worker import Worker, WorkerState, get_current_worker

from storage.backend import SessionBackend
from storage.cli import export_lines
from storage.errors import ReadOnlyError, SessionChangedError, SessionNotFound, StorageError
from storage.journal import Journal, write_atomic
from storage.journal import prepare as prepare_journal
from storage.models import BackendName, EditReport, SearchHit, SessionMetadata, Tail
from storage.ops import rollback_start
from storage.query import parse_query
from storage.safetext import one_line
from storage.watch import SQLITE, ChangeFeed
from storage.workspace import BackendChoice, Workspace
from storage.zcformat import sanitize_key
from tui.launch import FirstPage, Launch, no_gc, open_launch
from tui.messages import (
    CountsFilled,
    EditFinished,
    Notice,
    PlanReady,
    SearchHitsFound,
    SessionChanged,
    SessionRef,
    SessionsListed,
    SessionsUpdated,
)
from tui.screens.confirm import ConfirmScreen, confirm_plan, undo_blocked_note
from tui.screens.help import HelpScreen, rows_of
from tui.screens.rename import RenameScreen
from tui.widgets.header import HeaderInfo, WorkspaceHeader
from tui.widgets.search_pane import SearchPane
from tui.widgets.session_list import SORT_LABELS, SessionList, source_label
from tui.widgets.transcript import Transcript

Clock = Callable[[], datetime]
EditAction = Literal["rollback", "compact", "delete"]

SEARCH_LIMIT = 200
COUNT_BATCH_SECS = 0.1
EDIT_WARMUP_DELAY = 1.0  # seconds after start, when the first screen is painted
HIGHLIGHT_DELAY = 0.08  # let the cursor settle before reading a session
PROG = "zc-sessions"


def system_clock() -> datetime:
    return datetime.now(UTC)


class ZcSessionsApp(App[int]):
    """``ZcSessionsApp(workspace, session=None, stuck_after=600, clock=...)``."""

    CSS_PATH = "app.tcss"
    TITLE = "zc-sessions"
    HORIZONTAL_BREAKPOINTS = [  # noqa: RUF012 (Textual declares it as a plain attribute)
        (0, "-narrow"),
        (100, "-normal"),
        (160, "-wide"),
    ]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (32, "-tall")]  # noqa: RUF012

    BINDINGS: ClassVar[list[BindingType]] = [
        # Help first: a narrow footer cuts off the end, and "?" is the key a newcomer needs.
        Binding("question_mark", "help", "Help"),
        Binding("slash", "search", "Search"),
        Binding("n", "next_hit", "Next hit", show=False),
        Binding("N", "previous_hit", "Previous hit", show=False),
        Binding("b", "rollback", "Rollback"),
        Binding("r", "rename", "Rename"),
        Binding("c", "compact", "Compact"),
        Binding("d", "delete", "Delete"),
        Binding("ctrl+z", "undo", "Undo"),
        Binding("e", "export", "Export"),
        Binding("y", "copy", "Copy"),
        Binding("ctrl+f", "filter", "Filter", show=False),
        Binding("escape", "to_list", "Back: to the search hits, else the list", show=False),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        workspace: Workspace,
        *,
        session: str | None = None,
        stuck_after: float = 600.0,
        clock: Clock = system_clock,
        journal: Journal | None = None,
        live: bool = True,
        export_dir: Path | None = None,
    ) -> None:
        super().__init__()
        self.workspace = workspace
        self.initial_session = session
        self.stuck_after = stuck_after
        self.clock = clock
        self.journal = journal or Journal()
        self.live = live
        self.export_dir = export_dir
        self.open_ref: SessionRef | None = None
        self.shown_cursor: int | None = None  # change-feed position of what the transcript shows
        self._tail_lock = threading.Lock()
        self._tail_state: tuple[SessionRef, int] | None = None
        self._dirty_lock = threading.Lock()
        self._dirty: set[str] = set()
        self._refreshing = False
        self._count_lock = threading.Lock()
        self._count_queue: deque[SessionRef] = deque()
        self._counting = False
        self._prefetched: Future[FirstPage] | None = None
        self._prefetched_tail: Future[tuple[BackendName, str, Tail]] | None = None
        # The last SQLite listing by key, to post only what a write changed (see _relist_sqlite).
        self._sqlite_seen: dict[str, SessionMetadata] | None = None
        self._search_generation = 0
        self._search_cancel = threading.Event()
        self._feed: ChangeFeed | None = None
        self._open_timer: Timer | None = None
        self.header: WorkspaceHeader
        self.filter_box: Input
        self.sessions: SessionList
        self.list_status: Label
        self.title_bar: Label
        self.transcript: Transcript
        self.search_pane: SearchPane
        self.footer: Footer

    # --- layout ------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        # Widgets are kept as attributes: handlers that run while the app shuts down must not
        # depend on a DOM query finding them.
        ws = self.workspace
        info = HeaderInfo(
            path=str(ws.sessions_dir),
            backends=tuple(b.backend_name for b in ws.backends),
            demo=ws.demo,
            read_only=ws.read_only,
        )
        self.header = WorkspaceHeader(info, id="header")
        self.filter_box = Input(
            placeholder="filter  (ctrl+f)", id="filter", compact=True, select_on_focus=False
        )
        self.sessions = SessionList(clock=self.clock, stuck_after=self.stuck_after, id="sessions")
        self.list_status = Label("", id="list-status")
        self.title_bar = Label("", id="session-title")
        self.transcript = Transcript(id="transcript")
        self.search_pane = SearchPane(id="search")
        self.footer = Footer()
        yield self.header
        with Horizontal(id="body"):
            with Vertical(id="sidebar"):
                yield self.filter_box
                yield self.sessions
                yield self.list_status
            with Vertical(id="main"):
                yield self.title_bar
                yield self.transcript
                yield self.search_pane
        yield self.footer

    def on_resize(self, event: events.Resize) -> None:
        # ``event.size``: this handler runs before App's own, so ``self.size`` is still the old.
        self._fit_footer(event.size.width)

    def _fit_footer(self, width: int) -> None:
        self.footer.compact = width < 130  # below it, every key fits only without padding

    def on_mount(self) -> None:
        self._fit_footer(self.size.width)
        both = len(self.workspace.backends) > 1
        self.sessions.show_backend = both
        self.search_pane.show_backend = both
        self.sessions.focus()
        self._update_list_status()
        self._list_sessions()
        if self.live:
            self._follow_changes()
        self.set_interval(30, self.sessions.refresh_times)
        if not self.workspace.read_only:
            self.set_timer(EDIT_WARMUP_DELAY, self._prepare_edits)
        for note in self.workspace.notes:
            self.notify(one_line(note, 300), timeout=8)

    @work(thread=True, exit_on_error=False, group="warmup")
    def _prepare_edits(self) -> None:
        """Once the app is up and idle: load what reading undo journal entries needs (pydantic
        checks them), so the first undo is as quick as the next ones."""
        prepare_journal()

    # --- worker failures: the one place ------------------------------------------------------

    @on(Worker.StateChanged)
    def _worker_state(self, event: Worker.StateChanged) -> None:
        if event.state != WorkerState.ERROR:
            return
        error = event.worker.error
        if event.worker.group == "search":
            self.search_pane.finish(error=one_line(str(error), 200))
        self.notify(describe_error(error), severity="error", timeout=8)

    @on(Notice)
    def _notice(self, message: Notice) -> None:
        severity = message.severity if message.severity in ("warning", "error") else "information"
        self.notify(one_line(message.text, 500), severity=severity)  # type: ignore[arg-type]

    # --- listing -----------------------------------------------------------------------------

    def backend_for(self, name: BackendName) -> SessionBackend:
        backend = self.workspace.backend(name)
        if backend is None:
            raise StorageError(f"the {name} store is not open")
        return backend

    def use_launch(self, launch: Launch) -> None:
        """Take what launch read before Textual was imported: the first page of the list (or,
        with --session, that session's row) and the end of that session."""
        self._prefetched = launch.listing
        self._prefetched_tail = launch.tail

    def _take_prefetched_tail(self, ref: SessionRef) -> Tail | None:
        """The tail launch read for ``ref``, if it is ready (never waits for it)."""
        future, self._prefetched_tail = self._prefetched_tail, None
        if future is None or not future.done() or future.exception() is not None:
            return None
        backend, key, tail = future.result()
        return tail if ref == (backend, key) else None

    @work(thread=True, exclusive=True, exit_on_error=False, group="listing")
    def _list_sessions(self, only: BackendName | None = None) -> None:
        """Every session's metadata, without counting anything."""
        backends = [b for b in self.workspace.backends if only is None or b.backend_name == only]
        names = frozenset(b.backend_name for b in backends)
        prefetched, self._prefetched = self._prefetched, None
        if prefetched is not None and only is None:
            metas, total = prefetched.result()  # the first page, read at launch
            partial = total is None or total > len(metas)
            self.post_message(SessionsListed(names, metas, partial=partial, total=total))
            return
        with no_gc():
            metas = [m for b in backends for m in b.list_sessions_with_metadata()]
        self.post_message(SessionsListed(names, metas))

    @on(SessionsListed)
    def _listed(self, message: SessionsListed) -> None:
        complete = not message.partial
        if complete and "sqlite" in message.backends:
            self._sqlite_seen = {m.key: m for m in message.metas if m.backend == "sqlite"}
        self.sessions.set_sessions(
            message.metas, message.backends, partial=message.partial, total=message.total
        )
        self._after_list_change()
        if self.initial_session is not None and self._open_initial(
            self.initial_session, complete
        ):
            self.initial_session = None
        if not complete:
            self.call_after_refresh(self._list_sessions)  # the rest, once the first page shows

    @on(SessionsUpdated)
    def _updated(self, message: SessionsUpdated) -> None:
        self.sessions.upsert(message.metas, message.gone)
        self._after_list_change()
        if self.open_ref is not None and self.open_ref in message.gone:
            self._show_title()

    def _after_list_change(self) -> None:
        # Counts are not read here: the list asks for the rows it paints (CountsWanted).
        self.header.sessions = self.sessions.total if self.sessions.total_known else None
        self._update_list_status()
        self._show_title()

    def _update_list_status(self) -> None:
        lst = self.sessions
        shown, total = lst.shown, lst.total
        if not lst.total_known:
            self.list_status.update(Text(" listing sessions…"))
            return
        count = f"{shown}/{total}" if lst.filter_text else str(total)
        text = f" {count} session{'s' if total != 1 else ''} · by {lst.sort_mode}"
        self.list_status.update(Text(text))

    @on(SessionList.CountsWanted)
    def _counts_wanted(self, message: SessionList.CountsWanted) -> None:
        with self._count_lock:
            if message.urgent:  # rows on screen now go before older requests
                self._count_queue.extendleft(reversed(message.refs))
            else:
                self._count_queue.extend(message.refs)
            start = not self._counting
            self._counting = True
        if start:
            self._fill_counts()

    def _next_to_count(self) -> SessionRef | None:
        with self._count_lock:
            if self._count_queue:
                return self._count_queue.popleft()
            self._counting = False
            return None

    @work(thread=True, exit_on_error=False, group="counts")
    def _fill_counts(self) -> None:
        """Count the sessions asked for (newest request first), posting batches as they come."""
        worker = get_current_worker()
        counts: dict[SessionRef, int] = {}
        unreadable: dict[SessionRef, bool] = {}
        flushed = time.monotonic()
        try:
            while (ref := self._next_to_count()) is not None:
                if worker.is_cancelled:
                    return
                self._count_into(ref, counts, unreadable)
                if time.monotonic() - flushed > COUNT_BATCH_SECS:
                    self.post_message(CountsFilled(counts, unreadable))
                    counts, unreadable, flushed = {}, {}, time.monotonic()
        finally:
            if worker.is_cancelled:
                with self._count_lock:
                    self._counting = False
        if counts:
            self.post_message(CountsFilled(counts, unreadable))

    def _count_into(
        self, ref: SessionRef, counts: dict[SessionRef, int], unreadable: dict[SessionRef, bool]
    ) -> None:
        if ref == self.open_ref:
            return  # the transcript indexes it (with progress) and hands the count over
        found = self._count_one(ref)
        if found is not None:
            counts[ref] = found[0]
            if found[1] is not None:
                unreadable[ref] = found[1]

    def _count_one(self, ref: SessionRef) -> tuple[int, bool | None] | None:
        """(message count, has unreadable lines) of one session; None if it is gone."""
        backend = self.backend_for(ref.backend)
        try:
            meta = backend.get_session_metadata(ref.key)
            if meta is None:
                return None
            count = meta.message_count
            return (
                backend.count_messages(ref.key) if count is None else count
            ), meta.has_unreadable
        except StorageError:
            return None  # unreadable now: the next listing says so

    @on(CountsFilled)
    def _counted(self, message: CountsFilled) -> None:
        self.sessions.set_counts(message.counts, message.unreadable)
        if self.open_ref in message.counts:
            self._show_title()

    # --- the filter and sort -------------------------------------------------------------------

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.sessions.set_filter(event.value)
        self._update_list_status()

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        self.sessions.focus()

    @on(SessionList.TypedToFilter)
    def _typed_to_filter(self, message: SessionList.TypedToFilter) -> None:
        box = self.filter_box
        box.focus()
        box.insert_text_at_cursor(message.character)

    def action_filter(self) -> None:
        self.filter_box.focus()

    def action_to_list(self) -> None:
        """Escape: leave (and clear) the filter, or go from the transcript back to where the
        user came from: the search hits while the search pane is open, else the list.

        In the list itself, escape clears a filter that is still applied.
        """
        pane = self.search_pane
        if self.focused is self.transcript and pane.has_class("-open"):
            pane.focus_results()
            return
        box = self.filter_box
        if self.focused is box or (self.focused is self.sessions and box.value):
            box.value = ""
        self.sessions.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """While typing in a text box, "/" and ctrl+z are the box's: keep them out of the footer
        (and ctrl+z from undoing a store edit when the user meant to undo typing)."""
        return not (action in ("search", "undo") and isinstance(self.focused, Input))

    def action_cycle_sort(self) -> None:
        mode = self.sessions.cycle_sort()
        self._update_list_status()
        self.notify(f"sorted by {SORT_LABELS[mode]}", timeout=2)

    # --- opening a session ---------------------------------------------------------------------

    @on(SessionList.Highlighted)
    def _highlighted(self, message: SessionList.Highlighted) -> None:
        if self._open_timer is not None:
            self._open_timer.stop()
        ref = message.ref
        if ref is None or ref == self.open_ref:
            return
        self._open_timer = self.set_timer(HIGHLIGHT_DELAY, lambda: self._open_highlighted(ref))

    def _open_highlighted(self, ref: SessionRef) -> None:
        """The cursor rested on ``ref``: show it (unless the cursor moved on meanwhile)."""
        if self.sessions.highlighted == ref and ref != self.open_ref:
            self.open_session(ref)

    @on(SessionList.Opened)
    def _opened(self, message: SessionList.Opened) -> None:
        if message.ref != self.open_ref:
            self.open_session(message.ref)
        self.transcript.focus()

    def open_session(
        self, ref: SessionRef, focus_index: int | None = None, tail: Tail | None = None
    ) -> None:
        """Show ``ref`` in the transcript (scrolled to ``focus_index`` when given; starting
        from ``tail`` when its end was read already)."""
        if self.open_ref is not None and self.open_ref != ref:
            self.sessions.recount(self.open_ref)  # its count was left to the transcript
        self.open_ref = ref
        with self._tail_lock:
            self._tail_state = None
        self.shown_cursor = None
        try:
            backend = self.backend_for(ref.backend)
        except StorageError as err:
            self._show_title()
            self.notify(describe_error(err), severity="error")
            return
        self.transcript.open(backend, ref.key, tail)
        self._show_title()  # after open: the count shown is this session's, not the last one's
        if focus_index is not None:
            self.transcript.scroll_to_index(focus_index, select=True, terms=self._hit_terms())

    def _open_initial(self, wanted: str, complete: bool = True) -> bool:
        """Open --session ``wanted``; False while it may still be in the rest of the list."""
        for ref in self.sessions.refs:
            if wanted in (ref.key, sanitize_key(ref.key)) or sanitize_key(wanted) == ref.key:
                self.sessions.select(ref)
                self.open_session(ref, tail=self._take_prefetched_tail(ref))
                return True
        if complete:
            self.notify(f"no session {one_line(wanted, 80)!r}", severity="warning")
        return complete

    @on(Transcript.Opened)
    def _transcript_opened(self, message: Transcript.Opened) -> None:
        """The tail is on screen: follow changes from its cursor (and catch up at once)."""
        ref = self.open_ref
        if ref is None or message.key != ref.key:
            return
        with self._tail_lock:
            self._tail_state = (ref, message.cursor)
        self.shown_cursor = message.cursor
        self._show_title()
        if self.live:
            self._pull_changes()

    @on(Transcript.LoadFailed)
    def _transcript_failed(self, message: Transcript.LoadFailed) -> None:
        self.notify(one_line(message.error, 300), severity="error")

    @on(Transcript.CountChanged)
    @on(Transcript.FollowChanged)
    @on(Transcript.IndexProgress)
    def _transcript_status(self) -> None:
        t, ref = self.transcript, self.open_ref
        row = self.sessions.row(ref) if ref is not None and t.index_known else None
        if ref is not None and row is not None and (row.count != t.count or row.stale):
            self.sessions.set_counts({ref: t.count})  # the transcript counted it: list it
        self._show_title()

    def _show_title(self) -> None:
        label = self.title_bar
        ref = self.open_ref
        row = self.sessions.row(ref) if ref is not None else None
        if ref is None:
            label.update(Text(" no session open", "dim"))
        elif row is None:
            label.update(Text(f" {one_line(ref.key, 200)} (gone)", "dim"))
        else:
            t = self.transcript
            count = t.count if t.index_known else row.count
            indexing = t.indexing if count is None or t.jump_pending else None
            label.update(
                session_title(
                    row.meta,
                    count,
                    t.follow,
                    t.pending_new,
                    indexing=indexing,
                    jump_waits=t.jump_pending,
                )
            )

    # --- live tail -------------------------------------------------------------------------------

    @work(exclusive=True, exit_on_error=False, group="feed", description="follow file changes")
    async def _follow_changes(self) -> None:
        self._feed = ChangeFeed(self.workspace.sessions_dir)
        header = self.header
        header.live = "● live"
        async for changed in self._feed:
            header.live = "● live" if self._feed.mode == "watching" else "◌ polling"
            self.note_changes(changed)

    def note_changes(self, changed: Iterable[str]) -> None:
        """React to the change feed: refresh list metadata and pull the open session."""
        changed = set(changed)
        with self._dirty_lock:
            self._dirty |= changed
            start = not self._refreshing
            self._refreshing = True
        ref = self.open_ref
        if ref is not None and (ref.key if ref.backend == "jsonl" else SQLITE) in changed:
            self._pull_changes()  # first: the open transcript is what the user watches
        if start:
            self._refresh_changed()

    def _take_dirty(self) -> set[str]:
        with self._dirty_lock:
            batch, self._dirty = self._dirty, set()
            if not batch:
                self._refreshing = False
            return batch

    @work(thread=True, exit_on_error=False, group="refresh")
    def _refresh_changed(self) -> None:
        try:
            while batch := self._take_dirty():
                self._refresh_batch(batch)
        except BaseException:
            with self._dirty_lock:
                self._refreshing = False
            raise

    def _refresh_batch(self, batch: set[str]) -> None:
        sqlite = self.workspace.backend("sqlite")
        if SQLITE in batch and sqlite is not None:
            self._relist_sqlite(sqlite)
        jsonl = self.workspace.backend("jsonl")
        stems = sorted(batch - {SQLITE})
        if jsonl is None or not stems:
            return
        metas: list[SessionMetadata] = []
        gone: list[SessionRef] = []
        for stem in stems:
            meta = _metadata_or_none(jsonl, stem)
            if meta is None:
                gone.append(SessionRef("jsonl", stem))
            else:
                metas.append(meta)
        self.post_message(SessionsUpdated(metas, gone))

    def _relist_sqlite(self, sqlite: SessionBackend) -> None:
        """A write to ``sessions.db``: list again, and post only the sessions that changed.

        The store hands back the same object for a row that did not change, so telling the
        changed rows apart costs a pass of identity checks, not a rebuild of 10,000 rows."""
        fresh = {m.key: m for m in sqlite.list_sessions_with_metadata()}
        seen, self._sqlite_seen = self._sqlite_seen, fresh
        if seen is None:
            self.post_message(SessionsListed(frozenset({"sqlite"}), list(fresh.values())))
            return
        changed = [m for key, m in fresh.items() if seen.get(key) is not m]
        gone = [SessionRef("sqlite", key) for key in seen.keys() - fresh.keys()]
        if changed or gone:
            self.post_message(SessionsUpdated(changed, gone))

    @work(thread=True, exit_on_error=False, group="tail")
    def _pull_changes(self) -> None:
        with self._tail_lock:
            if self._tail_state is None:
                return
            ref, cursor = self._tail_state
            try:
                changes = self.backend_for(ref.backend).changes_since(ref.key, cursor)
            except SessionNotFound:
                return  # deleted: the listing refresh shows it as gone

            if changes.cursor == cursor and not changes.messages and not changes.reset:
                return
            self._tail_state = (ref, changes.cursor)
            self.post_message(SessionChanged(ref, cursor, changes))

    @on(SessionChanged)
    def _changed(self, message: SessionChanged) -> None:
        if message.ref != self.open_ref or self.shown_cursor is None:
            return  # another session, or this one is (re)loading and will catch up itself
        if message.changes.reset or message.from_cursor != self.shown_cursor:
            self.open_session(message.ref)
            return
        self.shown_cursor = message.changes.cursor
        self.transcript.apply_changes(message.changes)

    # --- search ------------------------------------------------------------------------------

    def action_search(self) -> None:
        pane = self.search_pane
        pane.add_class("-open")
        pane.focus_input()

    @on(SearchPane.Closed)
    def _search_closed(self) -> None:
        self._search_cancel.set()
        self.search_pane.remove_class("-open")
        if self.open_ref is not None:
            self.transcript.focus()
        else:
            self.sessions.focus()

    @on(SearchPane.QueryChanged)
    def _query_changed(self, message: SearchPane.QueryChanged) -> None:
        self._search_cancel.set()
        self._search_cancel = threading.Event()
        self._search_generation += 1
        self.search_pane.start(message.query)
        if not message.query.strip():
            self.search_pane.finish()
            return
        scope = self.open_ref if message.scoped else None
        if message.scoped and scope is None:
            self.search_pane.finish(error="open a session to search only in it")
            return
        self._search(message.query, scope, self._search_generation, self._search_cancel)

    @work(thread=True, exclusive=True, exit_on_error=False, group="search")
    def _search(
        self, query: str, scope: SessionRef | None, generation: int, cancel: threading.Event
    ) -> None:
        batch: list[SearchHit] = []
        flushed = time.monotonic()
        for hit in self._iter_hits(query, scope, cancel):
            batch.append(hit)
            if time.monotonic() - flushed > 0.05 or len(batch) >= 50:
                self.post_message(SearchHitsFound(generation, batch, done=False))
                batch, flushed = [], time.monotonic()
        if not cancel.is_set():
            self.post_message(SearchHitsFound(generation, batch, done=True))

    def _iter_hits(
        self, query: str, scope: SessionRef | None, cancel: threading.Event
    ) -> Iterator[SearchHit]:
        left = SEARCH_LIMIT
        targets = [scope.backend] if scope else [b.backend_name for b in self.workspace.backends]
        for name in targets:
            if cancel.is_set():
                return
            key = scope.key if scope else None
            backend = self.backend_for(name)
            for hit in backend.search_messages(query, key=key, limit=left, cancel=cancel):
                if cancel.is_set():
                    return
                yield hit
                left -= 1
                if left <= 0:
                    return

    @on(SearchHitsFound)
    def _hits_found(self, message: SearchHitsFound) -> None:
        if message.generation != self._search_generation:
            return
        if message.hits:
            self.search_pane.add_hits(message.hits)
        if message.done:
            self.search_pane.finish()

    @on(SearchPane.HitChosen)
    def _hit_chosen(self, message: SearchPane.HitChosen) -> None:
        self.show_hit(message.hit)
        self.transcript.focus()

    def show_hit(self, hit: SearchHit) -> None:
        """Open the hit's session scrolled to the hit's message, selected and marked."""
        ref = SessionRef(hit.backend, hit.key)
        if not self.sessions.select(ref) and self.sessions.filter_text:
            # The filter hides the hit's session: clear it, or the list cursor (and what
            # the edit keys act on next) would sit on another session than the one shown.
            self.filter_box.value = ""
            self.sessions.set_filter("")
            self._update_list_status()
            self.sessions.select(ref)
        if ref == self.open_ref and self.shown_cursor is not None:
            self.transcript.scroll_to_index(hit.index, select=True, terms=self._hit_terms())
            return
        self.open_session(ref, hit.index)

    def _hit_terms(self) -> list[str]:
        query = parse_query(self.search_pane.query_text)
        return [word for term in query.terms for word in term.words]

    def action_next_hit(self) -> None:
        self._step_hit(1)

    def action_previous_hit(self) -> None:
        self._step_hit(-1)

    def _step_hit(self, delta: int) -> None:
        hit = self.search_pane.move(delta)
        if hit is None:
            self.notify("no search hits: press / to search", severity="warning", timeout=3)
            return
        self.show_hit(hit)

    # --- edits -------------------------------------------------------------------------------

    def _editable(self, action: str) -> SessionRef | None:
        """The open session if ``action`` may run on it; otherwise say why not."""
        if self.workspace.read_only:
            self.notify(str(ReadOnlyError(action)), severity="warning")
            return None
        if self.open_ref is None:
            self.notify(f"{action}: open a session first", severity="warning")
            return None
        return self.open_ref

    def action_rollback(self) -> None:
        """From the list: the last turn. From the transcript: the selected message and after."""
        if (ref := self._editable("rollback")) is not None:
            in_transcript = self.focused is self.transcript
            self._plan("rollback", ref, self.transcript.selected_index if in_transcript else None)

    def action_compact(self) -> None:
        if (ref := self._editable("compact")) is not None:
            self._plan("compact", ref, None)

    def action_delete(self) -> None:
        if (ref := self._editable("delete")) is not None:
            self._plan("delete", ref, None)

    @work(thread=True, exclusive=True, exit_on_error=False, group="plan")
    def _plan(self, action: EditAction, ref: SessionRef, selected: int | None) -> None:
        """The dry run for the confirm dialog; nothing is written."""
        backend = self.backend_for(ref.backend)
        start: int | None = None
        if action == "rollback":
            # By index, so that the edit removes exactly these messages or refuses: a turn
            # found again from the end at confirm time could be a newer one of the same size.
            start = selected if selected is not None else rollback_start(backend, ref.key, "turn")
            report = backend.rollback(ref.key, start, dry_run=True)
        elif action == "compact":
            report = backend.compact(ref.key, dry_run=True)
        else:
            report = delete_plan(backend, ref.key)
        meta = backend.get_session_metadata(ref.key)
        self.post_message(PlanReady(action, ref, report, start, meta, selected))

    @on(PlanReady)
    def _plan_ready(self, message: PlanReady) -> None:
        plan = confirm_plan(
            message.action,
            message.ref.key,
            message.plan,
            meta=message.meta,
            now=self.clock(),
            start=message.start,
            undo_blocked=undo_blocked_note(
                message.action, message.ref.backend, self.workspace.sessions_dir
            ),
        )
        if message.action == "rollback" and not message.plan.removed:
            self.notify("rollback: nothing to remove", severity="warning")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                expected = len(message.plan.removed)
                self._edit(message.action, message.ref, message.start, expected, message.selected)

        self.push_screen(ConfirmScreen(plan), answered)

    @work(thread=True, exclusive=True, exit_on_error=False, group="edit")
    def _edit(
        self,
        action: EditAction,
        ref: SessionRef,
        start: int | None,
        expected: int,
        selected: int | None,
    ) -> None:
        backend = self.backend_for(ref.backend)
        if action == "rollback":
            assert start is not None
            try:
                report = backend.rollback(ref.key, start, expected=expected)
            except SessionChangedError as err:
                self.post_message(Notice(f"{err} — showing the new plan", "warning"))
                self.call_from_thread(self._plan, "rollback", ref, selected)
                return
        elif action == "compact":
            report = backend.compact(ref.key)
        else:
            report = backend.delete_session(ref.key)
        # A deleted session is not reloaded: the list moves on to its neighbour.
        self.post_message(EditFinished(ref, edit_summary(report), reload=action != "delete"))

    def action_rename(self) -> None:
        ref = self._editable("rename")
        if ref is None:
            return
        row = self.sessions.row(ref)

        def answered(name: str | None) -> None:
            if name is not None:
                self._rename(ref, name)

        self.push_screen(RenameScreen(ref.key, row.meta.name if row else None), answered)

    @work(thread=True, exclusive=True, exit_on_error=False, group="edit")
    def _rename(self, ref: SessionRef, name: str) -> None:
        self.backend_for(ref.backend).set_session_name(ref.key, name)
        done = f"renamed {one_line(ref.key, 60)} to {one_line(name, 60)!r} — ctrl+z undoes it"
        cleared = f"cleared the name of {one_line(ref.key, 60)} — ctrl+z undoes it"
        self.post_message(EditFinished(ref, done if name else cleared, reload=False))

    def action_undo(self) -> None:
        if self.workspace.read_only:
            self.notify(str(ReadOnlyError("undo")), severity="warning")
            return
        self._undo()

    @work(thread=True, exclusive=True, exit_on_error=False, group="edit")
    def _undo(self) -> None:
        entry = self.journal.latest_undoable(self.workspace.sessions_dir)
        if entry is None:
            self.post_message(Notice("nothing to undo", "warning"))
            return
        report = self.backend_for(entry.backend).restore(entry.id)
        summary = (
            f"undid {human_action(entry.action)} of {one_line(entry.key, 60)} [{entry.backend}]"
        )
        if report.warnings:
            summary += " — " + one_line(" ".join(report.warnings), 200)
        self.post_message(EditFinished(SessionRef(entry.backend, entry.key), summary))

    @on(EditFinished)
    def _edit_finished(self, message: EditFinished) -> None:
        self.notify(message.summary)
        ref = message.ref
        if ref is None:
            return
        self._refresh_row(ref)
        if message.reload and self.open_ref in (ref, None):
            self.open_session(ref)

    @work(thread=True, exit_on_error=False, group="refresh")
    def _refresh_row(self, ref: SessionRef) -> None:
        """After an edit: read the one session's metadata again, not the whole listing."""
        meta = _metadata_or_none(self.backend_for(ref.backend), ref.key)
        self.post_message(SessionsUpdated([meta] if meta else [], [] if meta else [ref]))

    # --- export and copy ---------------------------------------------------------------------

    def action_export(self) -> None:
        if self.open_ref is None:
            self.notify("export: open a session first", severity="warning")
            return
        self._export(self.open_ref)

    @work(thread=True, exclusive=True, exit_on_error=False, group="export")
    def _export(self, ref: SessionRef) -> None:
        backend = self.backend_for(ref.backend)
        folder = export_folder(self.workspace.sessions_dir, self.export_dir)
        target = folder / export_name(ref.key, self.clock())
        write_atomic(target, "".join(export_lines(backend, ref.key, "markdown")).encode(), 0o644)
        self.post_message(Notice(f"exported {one_line(ref.key, 60)} to {target}"))

    def action_copy(self) -> None:
        message = self.transcript.selected_message
        if message is None:
            self.notify("copy: select a message in the transcript first", severity="warning")
            return
        self.copy_to_clipboard(message.content)
        self.notify(f"copied message #{message.index} ({len(message.content)} characters)")

    # --- help and command palette ------------------------------------------------------------

    def action_help(self) -> None:
        sections = [
            ("Everywhere", [*rows_of(self.BINDINGS), ("ctrl+p", "Command palette")]),
            ("Session list", rows_of(SessionList.BINDINGS) + LIST_EXTRA_KEYS),
            ("Transcript", rows_of(Transcript.BINDINGS)),
            ("Search pane", rows_of(SearchPane.BINDINGS) + SEARCH_EXTRA_KEYS),
            ("Dialogs", rows_of(ConfirmScreen.BINDINGS)),
        ]
        self.push_screen(HelpScreen(sections, HELP_NOTES))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for title, help_text, action in PALETTE_COMMANDS:
            yield SystemCommand(title, help_text, getattr(self, f"action_{action}"))

    # --- shutdown ----------------------------------------------------------------------------

    async def action_quit(self) -> None:
        self._search_cancel.set()
        if self._feed is not None:
            self._feed.stop()
        self.exit(0)


# --- small pure helpers --------------------------------------------------------------------------

LIST_EXTRA_KEYS = [
    ("ctrl+f", "Filter the list (or just start typing a key no command uses)"),
]
SEARCH_EXTRA_KEYS = [
    ("enter", "Open the session at the hit"),
    ("n N", "Next / previous hit (outside the query box)"),
]
HELP_NOTES = (
    "Edits (rollback, compact, delete, rename) ask first and show exactly what goes; "
    "ctrl+z undoes the last one from the undo journal.",
    "A running ZeroClaw daemon keeps its in-memory history until it restarts.",
    "Started with --read-only, every edit is refused.",
)
PALETTE_COMMANDS: list[tuple[str, str, str]] = [
    ("Rollback", "Remove the last turn (or the selected message and after) — b", "rollback"),
    ("Rename session", "Give the open session a name — r", "rename"),
    ("Compact session", "Drop unreadable lines / repair the index — c", "compact"),
    ("Delete session", "Delete the open session (undo brings it back) — d", "delete"),
    ("Undo last edit", "Restore what the last edit removed — ctrl+z", "undo"),
    ("Export to markdown", "Write the open session to a .md file — e", "export"),
    ("Copy message", "Copy the selected message to the clipboard — y", "copy"),
    ("Search messages", "Search every session — /", "search"),
    ("Cycle sort order", "Sort by activity, name or count — s", "cycle_sort"),
    ("Help", "Every key — ?", "help"),
]


def describe_error(error: BaseException | None) -> str:
    """One line for a notification, never a traceback."""
    if isinstance(error, StorageError):
        return one_line(str(error), 500)
    if isinstance(error, OSError):
        return one_line(f"{error.strerror or error}: {error.filename or ''}", 500)
    return one_line(f"unexpected {type(error).__name__}: {error}", 500)


def session_title(
    meta: SessionMetadata,
    count: int | None,
    follow: bool = True,
    pending: int = 0,
    *,
    indexing: float | None = None,
    jump_waits: bool = False,
) -> Text:
    """The line above the transcript: who, its state, whether it follows, then where from."""
    text = Text(" ")
    text.append(one_line(meta.name or meta.key, 120), "bold")
    if meta.state and meta.state != "idle":
        text.append(f"  {meta.state}", "bold")
    if follow:
        text.append("  ⇣ following", "green")
    else:
        text.append(f"  ‖ paused{f' · {pending} new' if pending else ''} (f)", "yellow")
    details = [one_line(meta.key, 80)] if meta.name else []
    details += [one_line(source_label(meta), 40), meta.backend]
    if count is not None:
        details.append(f"{count} msgs")
    text.append("  " + " · ".join(details), "dim")
    if indexing is not None:
        waits = " — jumps when done" if jump_waits else ""
        text.append(f"  indexing… {min(99, int(indexing * 100))}%{waits}", "yellow")
    return text


def delete_plan(backend: SessionBackend, key: str) -> EditReport:
    """What deleting ``key`` removes: every message (a dry-run rollback to 0) and bad line."""
    if backend.count_messages(key) > 0:
        report = backend.rollback(key, 0, dry_run=True)
    else:
        report = EditReport(action="delete", key=key, backend=backend.backend_name, dry_run=True)
    skipped = tuple(backend.skipped_lines(key))
    return replace(report, action="delete", removed_lines=skipped)


def human_action(action: str) -> str:
    """``delete_session`` -> ``delete``: store method names as a user says them."""
    return action.removesuffix("_session").replace("_", " ")


def edit_summary(report: EditReport) -> str:
    n = len(report.removed)
    lines = f" and {len(report.removed_lines)} unreadable line(s)" if report.removed_lines else ""
    undo = " — ctrl+z undoes it" if report.journal_id else ""
    what = f"{human_action(report.action)} {one_line(report.key, 60)}"
    return f"{what}: removed {n} message(s){lines}{undo}"


def export_name(key: str, moment: datetime) -> str:
    """``KEY-YYYYmmdd-HHMMSS.md``; a long key is cut (and told apart by a short hash) so the
    name stays well under the 255 bytes a file name may have."""
    stem = sanitize_key(key)
    if len(stem) > 80:
        stem = f"{stem[:64]}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"
    return f"{stem}-{moment:%Y%m%d-%H%M%S}.md"


def _metadata_or_none(backend: SessionBackend, key: str) -> SessionMetadata | None:
    try:
        return backend.get_session_metadata(key)
    except StorageError:
        return None


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def export_folder(sessions_dir: Path, preferred: Path | None = None) -> Path:
    """Where exports go: ``preferred``, the current folder, or $HOME; never inside sessions/."""
    for folder in (preferred, Path.cwd(), Path.home()):
        if folder is None or _inside(folder, sessions_dir):
            continue
        if os.access(folder, os.W_OK):
            return folder
    raise StorageError("no writable folder for the export (current folder and $HOME are not)")


# --- the entry point -----------------------------------------------------------------------


def _exit_on_hangup(app: App[int]) -> None:
    """A closed terminal (SIGHUP) or a polite kill (SIGTERM) quits like ``q`` does, so the
    clean-up below runs (the demo's temp folder, the change feed, connections)."""

    def quit_app(signum: int, _frame: object) -> None:
        app.exit(return_code=128 + signum)

    for signum in (signal.SIGHUP, signal.SIGTERM):
        signal.signal(signum, quit_app)


def run_app(
    workspace: Path | None = None,
    backend: BackendChoice = "auto",
    read_only: bool = False,
    session: str | None = None,
    demo: bool = False,
    stuck_after: float = 600.0,
    launch: Launch | None = None,
) -> int:
    """Run the browser on ``launch`` (else open the workspace, or a demo, now); 1 with one line
    on stderr when it cannot be opened."""
    if launch is None:
        try:
            launch = open_launch(workspace, backend, read_only, demo, session)
        except (StorageError, OSError) as err:
            sys.stderr.write(f"{PROG}: error: {describe_error(err)}\n")
            return 1
    try:
        app = ZcSessionsApp(
            launch.workspace, session=session, stuck_after=stuck_after, journal=launch.journal
        )
        app.use_launch(launch)
        # What is loaded by now lives as long as the app: keep it out of every collection.
        gc.freeze()
        _exit_on_hangup(app)
        app.run()
        return app.return_code or 0
    finally:
        launch.close()
