"""Headless access to ZeroClaw session stores. Never imports textual."""

from storage.backend import SessionBackend
from storage.errors import ReadOnlyError, SessionChangedError, SessionNotFound, StorageError
from storage.models import (
    ChatMessage,
    EditReport,
    RemovedMessage,
    SearchHit,
    SessionMetadata,
    SessionState,
    SkippedLine,
    StoredMessage,
)

__all__ = [
    "ChatMessage",
    "EditReport",
    "ReadOnlyError",
    "RemovedMessage",
    "SearchHit",
    "SessionBackend",
    "SessionChangedError",
    "SessionMetadata",
    "SessionNotFound",
    "SessionState",
    "SkippedLine",
    "StorageError",
    "StoredMessage",
]
