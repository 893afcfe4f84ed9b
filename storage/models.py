"""Data exchanged between the stores, the command line and the browser.

Plain frozen dataclasses: what comes from disk is checked where it is parsed (``zcformat``, the
SQLite row readers, the journal), so these models never validate and cost nothing to import.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from enum import StrEnum
from typing import Any, Literal

BackendName = Literal["jsonl", "sqlite"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatMessage:
    """A message as ZeroClaw stores it. Unknown fields from the file are kept in ``extra``."""

    role: str
    content: str
    extra: dict[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredMessage:
    """A message at its place in a session.

    ``index`` is ZeroClaw's index: the N-th valid line (JSONL) or the N-th row by id (SQLite).
    ``offset``/``length``/``line`` locate a JSONL line (``length`` includes the newline);
    ``row_id`` locates a SQLite row.
    """

    index: int
    role: str
    content: str
    created_at: str | None = None
    offset: int | None = None
    length: int | None = None
    line: int | None = None
    row_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class SkippedLine:
    """A JSONL line ZeroClaw's reader skips without a word.

    ``recovered`` holds the messages found in glued objects (``{...}{...}``): ZeroClaw does not
    see them, so they are shown flagged, never mixed in with the session silently.
    ``line`` is 1-based; ``before_index`` is the index of the next valid message, to place the
    warning in a transcript. Both are None where the lines in front were not counted yet.
    """

    line: int | None
    offset: int
    length: int
    reason: str
    preview: str
    before_index: int | None = None
    recovered: tuple[ChatMessage, ...] = ()


class SessionState(StrEnum):
    idle = "idle"
    running = "running"
    error = "error"


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionMetadata:
    """Everything ZeroClaw knows about a session, plus which store it came from."""

    key: str
    backend: BackendName
    created_at: str | None = None
    last_activity: str | None = None
    message_count: int | None = None
    name: str | None = None
    state: str | None = None
    turn_id: str | None = None
    turn_started_at: str | None = None
    agent_alias: str | None = None
    channel_id: str | None = None
    room_id: str | None = None
    sender_id: str | None = None
    # What the browser adds: file size (JSONL) and whether unreadable lines were seen.
    size: int | None = None
    has_unreadable: bool | None = None
    # Columns of a newer ZeroClaw, by name (``db_<name>`` where a name is one of the above).
    extra: dict[str, Any] = field(default_factory=dict, hash=False)

    @classmethod
    def with_extra(cls, **values: Any) -> SessionMetadata:
        """A session from named values: the fields above by name, any other name to ``extra``."""
        known = {k: values.pop(k) for k in SESSION_FIELDS & values.keys()}
        return cls(**known, extra=values)


# The field names of SessionMetadata; a newer ZeroClaw's column of the same name is kept as
# ``db_<name>`` in ``extra`` (see ``_metadata`` in sqlite.py).
SESSION_FIELDS = frozenset(f.name for f in fields(SessionMetadata)) - {"extra"}


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchHit:
    """One message that matches a query. ``spans`` are (start, end) offsets into ``snippet``."""

    key: str
    index: int
    role: str
    snippet: str
    spans: tuple[tuple[int, int], ...] = ()
    backend: BackendName
    created_at: str | None = None
    row_id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RemovedMessage:
    index: int
    role: str
    content: str
    created_at: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EditReport:
    """What an edit did. ``removed`` lists every message it took out; nothing else left."""

    action: str
    key: str
    backend: BackendName
    removed: tuple[RemovedMessage, ...] = ()
    removed_lines: tuple[SkippedLine, ...] = ()
    journal_id: str | None = None
    dry_run: bool = False
    warnings: tuple[str, ...] = ()
    retries: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Tail:
    """The last messages of a session, read without parsing the rest of it.

    ``first_index`` is the index of ``messages[0]`` when known; a JSONL tail is read before the
    lines in front of it are counted, so it is None until the session's index is built.
    """

    messages: tuple[StoredMessage, ...]
    skipped: tuple[SkippedLine, ...] = ()
    first_index: int | None = None
    cursor: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Changes:
    """What a change feed returned since a cursor.

    ``reset`` means the session was replaced or shrunk: drop what you have and read again.
    """

    messages: tuple[StoredMessage, ...] = ()
    skipped: tuple[SkippedLine, ...] = ()
    cursor: int
    reset: bool = False


def to_dict(value: Any) -> dict[str, Any]:
    """A model as plain data, nested models included: field names to values, in order."""
    return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return to_dict(value)
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
