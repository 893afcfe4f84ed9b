"""The store abstraction: ZeroClaw's ``SessionBackend`` trait plus what a browser needs.

Every method is synchronous and safe to call from a worker thread; the browser never calls one
on its UI thread. Keys are the keys as listed (for JSONL the unsanitized form is accepted too).
Every edit raises ``ReadOnlyError`` in read-only mode, writes what it removes to the undo journal
before it removes it, and returns an ``EditReport``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable

from storage.models import (
    BackendName,
    Changes,
    ChatMessage,
    EditReport,
    SearchHit,
    SessionMetadata,
    SessionState,
    SkippedLine,
    StoredMessage,
    Tail,
)


@runtime_checkable
class SessionBackend(Protocol):
    backend_name: BackendName
    sessions_dir: Path
    read_only: bool

    # --- ZeroClaw's trait -------------------------------------------------------------------
    def load(self, key: str) -> list[ChatMessage]: ...

    def load_with_timestamps(self, key: str) -> list[StoredMessage]: ...

    def append(self, key: str, message: ChatMessage) -> None: ...

    def remove_last(self, key: str) -> EditReport: ...

    def update_last(self, key: str, message: ChatMessage) -> EditReport: ...

    def list_sessions(self) -> list[str]: ...

    def list_sessions_with_metadata(self) -> list[SessionMetadata]: ...

    def list_one(self, key: str) -> SessionMetadata | None:
        """What the listing says of ``key`` (a listed key), without counting its messages;
        None when it does not exist."""
        ...

    def list_newest(self, n: int) -> tuple[list[SessionMetadata], int]:
        """The ``n`` sessions with the latest activity, and how many sessions there are in
        all: a first screen of the list without building every row."""
        ...

    def get_session_metadata(self, key: str) -> SessionMetadata | None: ...

    def session_exists(self, key: str) -> bool: ...

    def compact(self, key: str, *, dry_run: bool = False) -> EditReport: ...

    def clear_messages(self, key: str) -> EditReport: ...

    def delete_session(self, key: str) -> EditReport: ...

    def cleanup_stale(self, ttl_hours: float) -> list[str]: ...

    def search(self, query: str, limit: int = 50) -> list[SessionMetadata]:
        """ZeroClaw's own search: sessions (not messages) matching any word."""
        ...

    def set_session_name(self, key: str, name: str) -> None: ...

    def get_session_name(self, key: str) -> str | None: ...

    def set_session_state(
        self, key: str, state: SessionState, turn_id: str | None = None
    ) -> None: ...

    def get_session_state(self, key: str) -> SessionState | None: ...

    def list_running_sessions(self) -> list[SessionMetadata]: ...

    def list_stuck_sessions(self, threshold_secs: float) -> list[SessionMetadata]: ...

    # --- what the browser adds --------------------------------------------------------------
    def resolve_key(self, key: str) -> str:
        """The listed key for ``key``; raises ``SessionNotFound``."""
        ...

    def count_messages(self, key: str) -> int:
        """ZeroClaw's message count (JSONL: valid lines; may scan the file once, then cached)."""
        ...

    def read_tail(self, key: str, n: int) -> Tail:
        """The last ``n`` messages, without parsing the rest of the session."""
        ...

    def read_range(self, key: str, start: int, stop: int) -> list[StoredMessage]:
        """Messages with ``start <= index < stop``."""
        ...

    def skipped_lines(self, key: str) -> list[SkippedLine]:
        """Every line ZeroClaw's reader skips (always empty for SQLite)."""
        ...

    def rollback(
        self, key: str, to_index: int, *, dry_run: bool = False, expected: int | None = None
    ) -> EditReport:
        """Remove message ``to_index`` and every message after it.

        With ``expected``, refuse (``SessionChangedError``) unless exactly that many messages
        would go: the browser passes the count its confirm dialog showed.
        """
        ...

    def search_messages(
        self,
        query: str,
        *,
        key: str | None = None,
        limit: int = 200,
        cancel: threading.Event | None = None,
    ) -> Iterator[SearchHit]:
        """Message-level search, newest first; stops early when ``cancel`` is set."""
        ...

    def cursor(self, key: str) -> int:
        """Change-feed position: byte offset (JSONL) or last row id (SQLite)."""
        ...

    def changes_since(self, key: str, cursor: int) -> Changes: ...

    def restore(self, journal_id: str) -> EditReport:
        """Undo a journalled edit of this store."""
        ...

    def close(self) -> None: ...
