"""Data exchanged between the stores, the command line and the browser."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

BackendName = Literal["jsonl", "sqlite"]


class ChatMessage(BaseModel):
    """A message as ZeroClaw stores it. Unknown fields from the file are kept."""

    model_config = ConfigDict(extra="allow", frozen=True)

    role: str
    content: str


class StoredMessage(BaseModel):
    """A message at its place in a session.

    ``index`` is ZeroClaw's index: the N-th valid line (JSONL) or the N-th row by id (SQLite).
    ``offset``/``length``/``line`` locate a JSONL line (``length`` includes the newline);
    ``row_id`` locates a SQLite row.
    """

    model_config = ConfigDict(frozen=True)

    index: int
    role: str
    content: str
    created_at: str | None = None
    offset: int | None = None
    length: int | None = None
    line: int | None = None
    row_id: int | None = None
    extra: dict[str, Any] = Field(default_factory=dict)


class SkippedLine(BaseModel):
    """A JSONL line ZeroClaw's reader skips without a word.

    ``recovered`` holds the messages found in glued objects (``{...}{...}``): ZeroClaw does not
    see them, so they are shown flagged, never mixed in with the session silently.
    ``line`` is 1-based; ``before_index`` is the index of the next valid message, to place the
    warning in a transcript. Both are None where the lines in front were not counted yet.
    """

    model_config = ConfigDict(frozen=True)

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


class SessionMetadata(BaseModel):
    """Everything ZeroClaw knows about a session, plus which store it came from."""

    model_config = ConfigDict(extra="allow", frozen=True)

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


class SearchHit(BaseModel):
    """One message that matches a query. ``spans`` are (start, end) offsets into ``snippet``."""

    model_config = ConfigDict(frozen=True)

    key: str
    index: int
    role: str
    snippet: str
    spans: tuple[tuple[int, int], ...] = ()
    backend: BackendName
    created_at: str | None = None
    row_id: int | None = None


class RemovedMessage(BaseModel):
    model_config = ConfigDict(frozen=True)

    index: int
    role: str
    content: str
    created_at: str | None = None


class EditReport(BaseModel):
    """What an edit did. ``removed`` lists every message it took out; nothing else left."""

    model_config = ConfigDict(frozen=True)

    action: str
    key: str
    backend: BackendName
    removed: tuple[RemovedMessage, ...] = ()
    removed_lines: tuple[SkippedLine, ...] = ()
    journal_id: str | None = None
    dry_run: bool = False
    warnings: tuple[str, ...] = ()
    retries: int = 0


class Tail(BaseModel):
    """The last messages of a session, read without parsing the rest of it.

    ``first_index`` is the index of ``messages[0]`` when known; a JSONL tail is read before the
    lines in front of it are counted, so it is None until the session's index is built.
    """

    model_config = ConfigDict(frozen=True)

    messages: tuple[StoredMessage, ...]
    skipped: tuple[SkippedLine, ...] = ()
    first_index: int | None = None
    cursor: int = 0


class Changes(BaseModel):
    """What a change feed returned since a cursor.

    ``reset`` means the session was replaced or shrunk: drop what you have and read again.
    """

    model_config = ConfigDict(frozen=True)

    messages: tuple[StoredMessage, ...] = ()
    skipped: tuple[SkippedLine, ...] = ()
    cursor: int
    reset: bool = False
