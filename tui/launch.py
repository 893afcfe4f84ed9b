"""What the browser opens before Textual is even imported.

Importing Textual takes a few hundred milliseconds. The workspace is opened, and the listing of
every session started in a thread, before that import, so that with 10,000 sessions the listing
is done (or nearly) by the time the app mounts. Nothing here imports Textual.
"""

from __future__ import annotations

import gc
import shutil
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from storage.models import BackendName, SessionMetadata, Tail
from storage.workspace import BackendChoice, Workspace, discover_sessions_dir, open_workspace

if TYPE_CHECKING:
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


def list_all(workspace: Workspace) -> list[SessionMetadata]:
    """Every session of every open store, without counting anything."""
    with no_gc():
        return [m for b in workspace.backends for m in b.list_sessions_with_metadata()]


@dataclass
class Launch:
    """An opened workspace (a demo one with its writer and temp folder, or the user's), the
    undo journal, and the session listing already under way."""

    workspace: Workspace
    journal: Journal
    writer: DemoWriter | None = None
    folder: Path | None = None
    listing: Future[list[SessionMetadata]] = field(default_factory=Future)
    # With --session: (store, key, its last messages), read while Textual is imported.
    tail: Future[tuple[BackendName, str, Tail]] | None = None

    def start_listing(self) -> None:
        def job() -> None:
            try:
                self.listing.set_result(list_all(self.workspace))
            except BaseException as err:  # handed to the app's listing worker, which reports it
                self.listing.set_exception(err)

        threading.Thread(target=job, name="zc-listing", daemon=True).start()

    def start_tail(self, session: str) -> None:
        future = self.tail = Future()

        def job() -> None:
            try:
                backend, key = self.workspace.find(session)
                future.set_result((backend.backend_name, key, backend.read_tail(key, TAIL_SIZE)))
            except BaseException as err:  # the app reads it again, and reports what fails
                future.set_exception(err)

        threading.Thread(target=job, name="zc-tail", daemon=True).start()

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

    found = demo or workspace is not None or discover_sessions_dir() is not None
    if demo or not found:
        launch = _open_demo(read_only, backend)
        if not found:
            launch.workspace.notes.append(NO_WORKSPACE_NOTE)
    else:
        journal = Journal()
        ws = open_workspace(workspace, backend=backend, read_only=read_only, journal=journal)
        launch = Launch(ws, journal)
    launch.start_listing()
    if session is not None:
        launch.start_tail(session)
    return launch
