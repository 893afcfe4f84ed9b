"""Messages the app's workers send back to the UI thread, and the session identity they share.

Workers never touch widgets: they post one of these and the app hands the data down.
Widget-specific messages live in their widget (``SessionList.Highlighted``).
"""

from __future__ import annotations

from typing import NamedTuple

from textual.message import Message

from storage.models import (
    BackendName,
    Changes,
    EditReport,
    SearchHit,
    SessionMetadata,
)


class SessionRef(NamedTuple):
    """A session is a key in one store: both stores may hold the same key."""

    backend: BackendName
    key: str


def ref_of(meta: SessionMetadata) -> SessionRef:
    return SessionRef(meta.backend, meta.key)


class SessionsListed(Message):
    """Metadata of every session of ``backends`` (a full listing: others of theirs are gone).

    ``partial``: only the first sessions (of ``total``, when known); the rest are being listed.
    """

    def __init__(
        self,
        backends: frozenset[BackendName],
        metas: list[SessionMetadata],
        *,
        partial: bool = False,
        total: int | None = None,
    ) -> None:
        super().__init__()
        self.backends = backends
        self.metas = metas
        self.partial = partial
        self.total = total


class SessionsUpdated(Message):
    """Fresh metadata for some sessions, and sessions that no longer exist."""

    def __init__(self, metas: list[SessionMetadata], gone: list[SessionRef]) -> None:
        super().__init__()
        self.metas = metas
        self.gone = gone


class CountsFilled(Message):
    """Message counts (and whether unreadable lines were seen) found by the counting worker."""

    def __init__(self, counts: dict[SessionRef, int], unreadable: dict[SessionRef, bool]) -> None:
        super().__init__()
        self.counts = counts
        self.unreadable = unreadable


class SessionChanged(Message):
    """What the change feed found in the open session since ``from_cursor``."""

    def __init__(self, ref: SessionRef, from_cursor: int, changes: Changes) -> None:
        super().__init__()
        self.ref = ref
        self.from_cursor = from_cursor
        self.changes = changes


class SearchHitsFound(Message):
    """A batch of hits for search number ``generation``; ``done`` after the last batch."""

    def __init__(self, generation: int, hits: list[SearchHit], done: bool) -> None:
        super().__init__()
        self.generation = generation
        self.hits = hits
        self.done = done


class PlanReady(Message):
    """A dry run of an edit, to show in the confirm dialog before anything is written."""

    def __init__(
        self,
        action: str,
        ref: SessionRef,
        plan: EditReport,
        start: int | None,
        meta: SessionMetadata | None,
        selected: int | None = None,
    ) -> None:
        super().__init__()
        self.action = action
        self.ref = ref
        self.plan = plan
        self.start = start
        self.meta = meta
        self.selected = selected  # the message the user picked, if any (else: the last turn)


class EditFinished(Message):
    """An edit (or undo) was written; ``summary`` is one line for a notification."""

    def __init__(self, ref: SessionRef | None, summary: str, reload: bool = True) -> None:
        super().__init__()
        self.ref = ref
        self.summary = summary
        self.reload = reload


class Notice(Message):
    """A one-line notification from a worker (``severity``: information, warning or error)."""

    def __init__(self, text: str, severity: str = "information") -> None:
        super().__init__()
        self.text = text
        self.severity = severity
