"""What the browser opens before Textual is even imported.

Importing Textual takes a few hundred milliseconds. Before that import, the workspace is opened,
and the end of the session asked for (--session) and the first page of the list are read: the
newest sessions and how many there are. The app paints those at once and lists the rest
right after its first paint, so 10,000 sessions start about as fast as one. Nothing here
imports Textual.
"""

from __future__ import annotations

import gc
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from storage.models import BackendName, SessionMetadata, Tail
from storage.workspace import BackendChoice, Workspace, discover_sessions_dir, open_workspace

if TYPE_CHECKING:
    from storage.backend import SessionBackend
    from storage.journal import Journal
    from tui.demo import DemoWriter

TAIL_SIZE = 64  # messages read at the end of the session opened first (the transcript's too)
NO_WORKSPACE_NOTE = "No ZeroClaw workspace found: this is a generated demo (see --workspace)."


@contextmanager
def no_gc() -> Iterator[None]:
    """No cyclic garbage collection while a batch of objects is built (it is not garbage)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


FIRST_PAGE = 200  # sessions listed before the first paint; the rest come right after it
# The newest sessions and how many there are; or (with --session) that session alone, and None.
FirstPage = tuple[list[SessionMetadata], int | None]


def return_big_buffers_to_the_os() -> None:
    """Have glibc's malloc serve every buffer of 128 KB or more from its own mapping, given
    back to the system when freed.

    By default glibc raises that threshold as big blocks are freed, then serves them from the
    heap, which a long-lived process never shrinks: reading a 250 MB session in 256 KB blocks
    left ~80 MB of freed heap in the browser's resident memory. Elsewhere this does nothing.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (or no C library to ask)
        return
    m_mmap_threshold = -3  # from glibc's malloc.h
    mallopt(ctypes.c_int(m_mmap_threshold), ctypes.c_int(128 * 1024))


def first_page(workspace: Workspace) -> FirstPage:
    """The newest sessions of every open store, and how many there are."""
    metas: list[SessionMetadata] = []
    total = 0
    for backend in workspace.backends:
        newest, count = backend.list_newest(FIRST_PAGE)
        metas += newest
        total += count
    return metas, total


@dataclass
class Launch:
    """An opened workspace (a demo one with its writer and temp folder, or the user's), the
    undo journal, and what was read before the app started (each a result or its error)."""

    workspace: Workspace
    journal: Journal
    writer: DemoWriter | None = None
    folder: Path | None = None
    listing: Future[FirstPage] = field(default_factory=Future)
    # With --session: (store, key, its last messages), read before Textual is imported.
    tail: Future[tuple[BackendName, str, Tail]] | None = None

    def start(self, session: str | None) -> None:
        """Read the end of ``session`` and its row of the list, else the list's first page;
        what fails is handed to the app, which reports it.

        With ``session`` the list is not read here: the transcript is what the user asked for,
        and sorting 10,000 sessions by activity takes 10,000 ``stat`` calls. Not in a thread
        beside the import of Textual either: those calls hand the GIL back and forth with the
        import, and the first page took 350 ms instead of 45."""
        if session is not None:
            self.tail = Future()
        found = self._read_tail(session) if session is not None else None
        try:
            one = found[0].list_one(found[1]) if found is not None else None
            page = ([one], None) if one is not None else first_page(self.workspace)
            self.listing.set_result(page)
        except BaseException as err:  # handed to the app's listing worker, which reports it
            self.listing.set_exception(err)

    def _read_tail(self, session: str) -> tuple[SessionBackend, str] | None:
        """The store and listed key of ``session`` (None if it is not found), its tail kept."""
        assert self.tail is not None
        try:
            backend, key = self.workspace.find(session)
            self.tail.set_result((backend.backend_name, key, backend.read_tail(key, TAIL_SIZE)))
            return backend, key
        except BaseException as err:  # the app reads it again, and reports what fails
            self.tail.set_exception(err)
            return None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.stop()
        self.workspace.close()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def _open_demo(read_only: bool, backend: BackendChoice) -> Launch:
    """A demo workspace in a temp folder (undo journal included) and its running writer."""
    from storage.journal import Journal
    from tui.demo import DemoWriter, make_demo_workspace

    folder = Path(tempfile.mkdtemp(prefix="zc-sessions-demo-"))
    sessions_dir = make_demo_workspace(folder)
    journal = Journal(root=folder / "state")
    ws = open_workspace(folder, backend=backend, read_only=read_only, journal=journal)
    ws.demo = True
    writer = DemoWriter(sessions_dir)  # it plays ZeroClaw: it writes even in read-only mode
    writer.start()
    return Launch(ws, journal, writer, folder)


def open_launch(
    workspace: Path | None = None,
    backend: BackendChoice = "auto",
    read_only: bool = False,
    demo: bool = False,
    session: str | None = None,
) -> Launch:
    """Open the workspace (a demo when asked, or when none is found) and start listing it (and
    reading the end of ``session``).

    Raises StorageError or OSError with a one-line message when it cannot be opened.
    """
    from storage.journal import Journal

    return_big_buffers_to_the_os()
    found = demo or workspace is not None or discover_sessions_dir() is not None
    if demo or not found:
        launch = _open_demo(read_only, backend)
        if not found:
            launch.workspace.notes.append(NO_WORKSPACE_NOTE)
    else:
        journal = Journal()
        ws = open_workspace(workspace, backend=backend, read_only=read_only, journal=journal)
        launch = Launch(ws, journal)
    launch.start(session)
    return launch
