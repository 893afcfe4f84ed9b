"""Edit plans shared by the command line and the browser: which messages an action removes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal, Protocol, runtime_checkable

from storage.backend import SessionBackend
from storage.errors import StorageError
from storage.models import EditReport, SessionMetadata, StoredMessage
from storage.zcformat import parse_rfc3339

RollbackMode = Literal["turn", "messages", "to"]
_CHUNK = 256


@runtime_checkable
class RollsBackFromEnd(Protocol):
    """A store that finds the last turn or the last messages from the end of a session, without
    counting the messages in front (JSONL: see ``JsonlBackend.rollback_last``)."""

    def rollback_last(
        self,
        key: str,
        mode: Literal["turn", "messages"],
        n: int = 1,
        *,
        dry_run: bool = False,
        expected: int | None = None,
    ) -> EditReport: ...


def last_user_index(backend: SessionBackend, key: str, count: int | None = None) -> int | None:
    """Index of the last user message, reading backwards from the tail in chunks."""
    stop = backend.count_messages(key) if count is None else count
    while stop > 0:
        start = max(0, stop - _CHUNK)
        for msg in reversed(backend.read_range(key, start, stop)):
            if msg.role == "user":
                return msg.index
        stop = start
    return None


def rollback_start(backend: SessionBackend, key: str, mode: RollbackMode, value: int = 0) -> int:
    """The first index a rollback removes: the last turn, the last ``value`` messages, or from
    index ``value``."""
    count = backend.count_messages(key)
    if mode == "turn":
        start = last_user_index(backend, key, count)
        if start is None:
            raise StorageError(f"session {key!r} has no user message to roll back to")
        return start
    if mode == "messages":
        if value < 1:
            raise StorageError("--messages needs a number of messages of 1 or more")
        return max(0, count - value)
    if not 0 <= value < count:
        raise StorageError(f"index {value} is not in session {key!r} (it has {count} messages)")
    return value


def run_rollback(
    backend: SessionBackend,
    key: str,
    mode: RollbackMode,
    value: int = 0,
    *,
    dry_run: bool = False,
    expected: int | None = None,
) -> EditReport:
    """Plan (``dry_run``) or make a rollback of the last turn, the last ``value`` messages, or
    every message from index ``value`` on; ``expected`` as in ``SessionBackend.rollback``.

    Where the store can, the last turn or messages are found from the end of the session:
    the messages in front are not counted (a JSONL session of a million lines is not read).
    """
    if mode == "messages" and value < 1:
        raise StorageError("--messages needs a number of messages of 1 or more")
    if mode != "to" and isinstance(backend, RollsBackFromEnd):
        last: Literal["turn", "messages"] = mode
        n = value if mode == "messages" else 1
        return backend.rollback_last(key, last, n, dry_run=dry_run, expected=expected)
    start = rollback_start(backend, key, mode, value)
    return backend.rollback(key, start, dry_run=dry_run, expected=expected)


def messages_from(backend: SessionBackend, key: str, start: int) -> list[StoredMessage]:
    return backend.read_range(key, start, backend.count_messages(key))


def is_stuck(meta: SessionMetadata, stuck_after: float, now: datetime | None = None) -> bool:
    """Running, with a turn that started more than ``stuck_after`` seconds ago."""
    if meta.state != "running" or not meta.turn_started_at:
        return False
    started = parse_rfc3339(meta.turn_started_at)
    if started is None:
        return False
    now = now or datetime.now(UTC)
    return (now - started).total_seconds() > stuck_after
