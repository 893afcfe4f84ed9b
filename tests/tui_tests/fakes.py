"""Test doubles for the transcript: a session source that makes messages up from their index."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import TypeVar

from textual.app import App, ComposeResult
from textual.message import Message
from textual.pilot import Pilot
from textual.widgets import Footer

from storage.models import SkippedLine, StoredMessage, Tail
from tui.widgets.transcript import Transcript

M = TypeVar("M", bound=Message)


def made_up_message(index: int) -> StoredMessage:
    """Message ``index`` of a fake session: every 7th is long enough to be collapsed."""
    role = "user" if index % 2 == 0 else "assistant"
    if index % 7 == 3:
        content = "\n".join(f"message {index} line {n}" for n in range(30))
    else:
        content = f"message {index}"
    return StoredMessage(index=index, role=role, content=content)


class FakeSource:
    """An in-memory ``TranscriptSource`` of ``count`` messages, none of them stored.

    Records what was asked of it so tests can check the transcript read a bounded amount.
    ``index_known=False`` behaves like a JSONL tail read before the index is built;
    ``count_gate`` holds ``count_messages`` until it is set.
    """

    def __init__(
        self,
        count: int,
        *,
        index_known: bool = True,
        skipped: Iterable[SkippedLine] = (),
        make: Callable[[int], StoredMessage] = made_up_message,
        count_gate: threading.Event | None = None,
        fail: Exception | None = None,
        fail_ranges: Exception | None = None,
    ) -> None:
        self.count = count
        self.index_known = index_known
        self.skipped = list(skipped)
        self.make = make
        self.count_gate = count_gate
        self.fail = fail
        self.fail_ranges = fail_ranges
        self.served = 0
        self.calls: list[tuple[str, int, int]] = []
        self._lock = threading.Lock()

    def _serve(self, name: str, start: int, stop: int) -> list[StoredMessage]:
        if self.fail is not None:
            raise self.fail
        stop = min(stop, self.count)
        with self._lock:
            self.calls.append((name, start, stop))
            self.served += max(0, stop - start)
        return [self.make(i) for i in range(max(0, start), stop)]

    def read_tail(self, key: str, n: int) -> Tail:
        start = max(0, self.count - n)
        messages = self._serve("read_tail", start, self.count)
        return Tail(
            messages=tuple(messages),
            skipped=tuple(line for line in self.skipped if (line.before_index or 0) >= start),
            first_index=start if self.index_known else None,
            cursor=self.count,
        )

    def read_range(self, key: str, start: int, stop: int) -> list[StoredMessage]:
        if self.fail_ranges is not None:
            with self._lock:
                self.calls.append(("read_range failed", start, stop))
            raise self.fail_ranges
        return self._serve("read_range", start, stop)

    def count_messages(self, key: str) -> int:
        if self.count_gate is not None:
            self.count_gate.wait(10)
        with self._lock:
            self.calls.append(("count_messages", 0, self.count))
        return self.count

    def skipped_lines(self, key: str) -> list[SkippedLine]:
        return list(self.skipped)

    def grow(self, n: int) -> list[StoredMessage]:
        """Append ``n`` messages to the fake session and return them (as a change feed would)."""
        start = self.count
        self.count += n
        return [self.make(i) for i in range(start, self.count)]


class TranscriptApp(App[None]):
    """A tiny app hosting one transcript, recording the messages it posts."""

    def __init__(self, source: FakeSource | None, *, auto_count: bool = True) -> None:
        super().__init__()
        self.source = source
        self.auto_count = auto_count
        self.posted: list[Message] = []

    def compose(self) -> ComposeResult:
        key = None if self.source is None else "session"
        yield Transcript(self.source, key, auto_count=self.auto_count)
        yield Footer()

    @property
    def transcript(self) -> Transcript:
        return self.query_one(Transcript)

    def record(self, message: Message) -> None:
        """``run_test(message_hook=...)``: sees a bubbling message once per node; keep one."""
        mine = type(message).__qualname__.startswith("Transcript.")
        if mine and not any(message is seen for seen in self.posted):
            self.posted.append(message)

    def posted_of(self, kind: type[M]) -> list[M]:
        return [message for message in self.posted if isinstance(message, kind)]


async def settle(pilot: Pilot[None]) -> None:
    """Let workers finish and their results be applied."""
    for _ in range(6):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


def screen_lines(transcript: Transcript) -> list[str]:
    """The plain text of every line the transcript shows now."""
    height = transcript.scrollable_content_region.height
    return [transcript.render_line(y).text for y in range(height)]
