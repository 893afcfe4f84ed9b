"""Rolling back the last turn or the last N messages of a JSONL session from its end.

The cut is found by reading backwards, with ZeroClaw's parse rules, so that the messages in
front are never counted; every safety step of ``rollback`` stays (journal first, re-check under
a lease, ftruncate). Where the front is not counted, the removed messages are numbered back from
the end. Each case is checked against the forward path (the full index, then ``rollback``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage import jsonl as jsonl_module
from storage.errors import ReadOnlyError, SessionChangedError, StorageError
from storage.journal import Journal
from storage.jsonl import FROM_END_NOTE, JsonlBackend
from storage.lineindex import BACK_BLOCK
from storage.models import EditReport
from storage.ops import rollback_start, run_rollback
from tests.unit_storage.conftest import JsonlKit
from tests.unit_storage.test_jsonl_edits import append_raw, daemon_during_journal_write

Mode = Literal["turn", "messages"]
CALL = '{"content": "", "tool_calls": [{"id": "c1", "function": {"name": "memory_recall"}}]}'
GLUED = b'{"role":"user","content":"a"}{"role":"user","content":"b"}\n'
SURROGATE = b'{"role":"user","content":"\\ud800"}\n'


def last_turn(kit: JsonlKit) -> bytes:
    """A turn with a tool call, as ZeroClaw writes it: user, assistant, tool, assistant."""
    return (
        kit.line("last question")
        + kit.line(CALL, "assistant")
        + kit.line("3 items recalled", "tool")
        + kit.line("the answer", "assistant")
    )


@pytest.fixture
def front_not_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every session is too big to index on the way: as a 250 MB one is."""
    monkeypatch.setattr(jsonl_module, "QUICK_GAP", 0)


def forward(jsonl: JsonlBackend, key: str, mode: Mode, n: int = 1) -> EditReport:
    """The plan of the forward path: the whole index, the start index, ``rollback``."""
    return jsonl.rollback(key, rollback_start(jsonl, key, mode, n), dry_run=True)


def removed(report: EditReport) -> list[tuple[int, str, str]]:
    return [(m.index, m.role, m.content) for m in report.removed]


def lines(report: EditReport) -> list[tuple[int | None, int, str, int | None]]:
    return [(s.line, s.offset, s.reason, s.before_index) for s in report.removed_lines]


def test_turn_with_tool_messages(jsonl: JsonlBackend, kit: JsonlKit) -> None:
    head = kit.lines(6)
    path = kit.write("s", head + last_turn(kit))
    before = path.read_bytes()
    report = jsonl.rollback_last("s", "turn")
    assert removed(report) == [
        (6, "user", "last question"),
        (7, "assistant", CALL),
        (8, "tool", "3 items recalled"),
        (9, "assistant", "the answer"),
    ]
    assert report.warnings == () and not report.dry_run
    assert path.read_bytes() == head
    assert report.journal_id is not None
    entry = jsonl.journal.get(report.journal_id)
    assert entry.status == "done" and entry.action == "rollback"
    assert entry.removed == report.removed
    assert jsonl.journal.blob(entry) == last_turn(kit)
    assert entry.payload["offset"] == len(head) and entry.payload["size"] == len(before)
    jsonl.restore(report.journal_id)
    assert path.read_bytes() == before


def test_messages_are_numbered_from_the_end_when_the_front_is_not_counted(
    jsonl: JsonlBackend, kit: JsonlKit, front_not_counted: None
) -> None:
    head = kit.lines(6)
    question, *rest = last_turn(kit).splitlines(keepends=True)
    path = kit.write("s", head + question + b"{corrupt\n" + b"".join(rest))
    report = jsonl.rollback_last("s", "turn", dry_run=True)
    assert [m.index for m in report.removed] == [-4, -3, -2, -1]
    assert report.warnings == (FROM_END_NOTE,)
    assert lines(report) == [(None, len(head + question), "not JSON", -3)]
    # with the session indexed (as the browser has it), the numbers are the real ones
    assert jsonl.count_messages("s") == 10
    report = jsonl.rollback_last("s", "turn")
    assert [m.index for m in report.removed] == [6, 7, 8, 9] and report.warnings == ()
    assert path.read_bytes() == head


def test_unreadable_lines_near_the_end(jsonl: JsonlBackend, kit: JsonlKit) -> None:
    """Lines that look like user messages but that ZeroClaw skips start no turn; the ones behind
    the cut go with it and are reported, the ones in front stay."""
    head = kit.lines(4) + b"{in front\n"
    tail = kit.line("q") + GLUED + kit.line("a", "assistant") + SURROGATE + b"\n" + b"  \r\n"
    path = kit.write("s", head + tail + b'{"role":"user","content":"torn')
    report = jsonl.rollback_last("s", "turn", dry_run=True)
    assert removed(report) == [(4, "user", "q"), (5, "assistant", "a")]
    reasons = [s.reason for s in report.removed_lines]
    assert reasons[0].startswith("glued objects") and reasons[-1] == "torn last line"
    assert len(reasons) == 5
    assert lines(report) == lines(forward(jsonl, "s", "turn"))
    report = jsonl.rollback_last("s", "messages", 1)
    assert removed(report) == [(5, "assistant", "a")]
    assert path.read_bytes() == head + kit.line("q") + GLUED


def test_no_trailing_newline(jsonl: JsonlBackend, kit: JsonlKit) -> None:
    """An unterminated last line is a message when ZeroClaw reads it, and no turn otherwise."""
    head = kit.lines(4)
    path = kit.write("s", head + kit.line("no newline").rstrip(b"\n"))
    report = jsonl.rollback_last("s", "turn", dry_run=True)
    assert removed(report) == [(4, "user", "no newline")]
    report = jsonl.rollback_last("s", "messages", 2)
    assert removed(report) == [(3, "assistant", "m3"), (4, "user", "no newline")]
    assert path.read_bytes() == kit.lines(3)
    torn = kit.write("t", head + b'{"role":"user","content":"half')
    report = jsonl.rollback_last("t", "turn", dry_run=True)
    assert removed(report) == [(2, "user", "m2"), (3, "assistant", "m3")]
    assert [s.reason for s in report.removed_lines] == ["torn last line"]
    jsonl.rollback_last("t", "messages", 1)
    assert torn.read_bytes() == kit.lines(3)


def test_more_messages_than_the_session_has(jsonl: JsonlBackend, kit: JsonlKit) -> None:
    """All messages go; unreadable lines in front of the first one stay, as with --to 0."""
    path = kit.write("s", b"{junk\n\n" + kit.lines(3))
    report = jsonl.rollback_last("s", "messages", 10)
    assert [m.index for m in report.removed] == [0, 1, 2]
    assert path.read_bytes() == b"{junk\n\n"


def test_nothing_to_roll_back(jsonl: JsonlBackend, kit: JsonlKit, sessions: Path) -> None:
    kit.write("s", b"{junk\n" + kit.line("only answers", "assistant") + GLUED)
    with pytest.raises(StorageError, match="has no user message to roll back to"):
        jsonl.rollback_last("s", "turn")
    kit.write("e", b"{junk\n\n")
    with pytest.raises(StorageError, match="has no message to roll back"):
        jsonl.rollback_last("e", "messages", 2)
    with pytest.raises(StorageError, match="cannot roll back 0 messages"):
        jsonl.rollback_last("s", "messages", 0)
    read_only = JsonlBackend(sessions, read_only=True)
    assert read_only.rollback_last("s", "messages", 1, dry_run=True).removed
    with pytest.raises(ReadOnlyError):
        read_only.rollback_last("s", "messages", 1)
    assert jsonl.journal.entries() == []


def test_only_the_end_of_the_file_is_read(
    jsonl: JsonlBackend, kit: JsonlKit, front_not_counted: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = kit.write("s", kit.lines(20000) + last_turn(kit))
    size = path.stat().st_size
    assert size > 8 * BACK_BLOCK
    offsets: list[int] = []
    real = os.pread

    def pread(fd: int, n: int, offset: int) -> bytes:
        offsets.append(offset)
        return real(fd, n, offset)

    monkeypatch.setattr(os, "pread", pread)
    report = jsonl.rollback_last("s", "turn")
    assert [m.index for m in report.removed] == [-4, -3, -2, -1]
    assert offsets and min(offsets) >= size - 2 * BACK_BLOCK
    assert path.read_bytes() == kit.lines(20000)


def test_an_index_that_is_behind_is_not_used_but_kept_right(
    jsonl: JsonlBackend, kit: JsonlKit, front_not_counted: None
) -> None:
    """An index that does not reach the end numbers nothing, but is cut with the file."""
    path = kit.write("s", kit.lines(16))
    assert jsonl.count_messages("s") == 16
    append_raw(path, kit.lines(2, start=16))
    report = jsonl.rollback_last("s", "messages", 6)
    assert [m.index for m in report.removed] == [-6, -5, -4, -3, -2, -1]
    # cut at line 12, the index covers the file again: the numbers are the real ones
    report = jsonl.rollback_last("s", "messages", 2)
    assert [m.index for m in report.removed] == [10, 11] and report.warnings == ()
    assert path.read_bytes() == kit.lines(10)
    # an index that ends in front of the cut stays as it is, and goes on from there
    path = kit.write("t", kit.lines(4))
    assert jsonl.count_messages("t") == 4
    append_raw(path, kit.lines(4, start=4))
    assert [m.index for m in jsonl.rollback_last("t", "messages", 2).removed] == [-2, -1]
    assert jsonl.count_messages("t") == 6
    assert [m.content for m in jsonl.read_range("t", 3, 6)] == ["m3", "m4", "m5"]


# --- a daemon that appends between the plan and the cut --------------------------------------


def test_what_the_daemon_appends_meanwhile_goes_too(
    jsonl: JsonlBackend, kit: JsonlKit, monkeypatch: pytest.MonkeyPatch, front_not_counted: None
) -> None:
    head = kit.lines(6)
    path = kit.write("s", head + last_turn(kit))
    before = path.read_bytes()
    late = kit.line("late", "assistant")
    daemon_during_journal_write(jsonl, monkeypatch, lambda n: append_raw(path, late))
    report = jsonl.rollback_last("s", "turn")
    assert [(m.index, m.content) for m in report.removed][-2:] == [(-2, "the answer"), (-1, "late")]
    assert len(report.removed) == 5 and report.retries == 0
    assert path.read_bytes() == head
    assert report.journal_id is not None
    entry = jsonl.journal.get(report.journal_id)
    assert entry.removed == report.removed
    assert jsonl.journal.blob(entry) == last_turn(kit) + late
    jsonl.restore(report.journal_id)
    assert path.read_bytes() == before + late


def test_a_planned_count_refuses_after_growth(
    jsonl: JsonlBackend, kit: JsonlKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = kit.write("s", kit.lines(6) + last_turn(kit))
    late = kit.line("late", "assistant")
    daemon_during_journal_write(jsonl, monkeypatch, lambda n: append_raw(path, late))
    with pytest.raises(SessionChangedError, match="would now remove 5 messages, not 4"):
        jsonl.rollback_last("s", "turn", expected=4)
    assert path.read_bytes() == kit.lines(6) + last_turn(kit) + late
    assert jsonl.journal.entries() == []


@pytest.mark.parametrize("mode", ["turn", "messages"])
def test_a_planned_count_never_takes_other_messages(
    jsonl: JsonlBackend, kit: JsonlKit, monkeypatch: pytest.MonkeyPatch, mode: Mode
) -> None:
    """A whole new turn of the same size arrives during the cut: the last turn (or the last 4
    messages) is now another one, with the count the caller planned. Refused, not taken."""
    before = kit.lines(6) + last_turn(kit)
    path = kit.write("s", before)
    late = last_turn(kit).replace(b"last question", b"a new question")
    daemon_during_journal_write(
        jsonl, monkeypatch, lambda n: append_raw(path, late) if n == 0 else None
    )
    with pytest.raises(SessionChangedError, match="no longer start where they did"):
        jsonl.rollback_last("s", mode, 4, expected=4)
    assert path.read_bytes() == before + late
    assert jsonl.journal.entries() == []


def test_a_replaced_file_is_planned_again(
    jsonl: JsonlBackend, kit: JsonlKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = kit.write("s", kit.lines(6) + last_turn(kit))

    def replace_once(n: int) -> None:
        if n == 0:
            tmp = path.with_name("tmp")
            tmp.write_bytes(path.read_bytes())
            os.replace(tmp, path)

    daemon_during_journal_write(jsonl, monkeypatch, replace_once)
    report = jsonl.rollback_last("s", "turn", expected=4)
    assert report.retries == 1 and len(report.removed) == 4
    assert path.read_bytes() == kit.lines(6)
    assert len(jsonl.journal.entries()) == 1  # the first attempt's entry was discarded


# --- the same cut as the forward path, on any mix of lines -------------------------------------

_lines = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["user", "assistant", "tool"]), st.sampled_from(["a", "é", ""])),
        st.sampled_from(
            [b"{corrupt", b"", b"  ", GLUED[:-1], SURROGATE[:-1], b'["user","x"]', b"\xff"]
        ),
    ),
    max_size=14,
)
_ends = st.sampled_from([b"", b'{"role":"user","content":"unterminated"}', b'{"role":"us'])


def build(items: list[tuple[str, str] | bytes], end: bytes) -> bytes:
    out = []
    for i, item in enumerate(items):
        if isinstance(item, tuple):
            role, text = item
            line = JsonlKit.line(f"{text}{i}", role)
            out.append(line if i % 3 else line.replace(b"\n", b"\r\n"))
        else:
            out.append(item + b"\n")
    return b"".join(out) + end


@settings(max_examples=300, deadline=None)
@given(_lines, _ends, st.sampled_from(["turn", "messages"]), st.integers(1, 6), st.booleans())
def test_the_cut_is_the_forward_paths(
    tmp_path_factory: pytest.TempPathFactory,
    items: list[tuple[str, str] | bytes],
    end: bytes,
    mode: Mode,
    n: int,
    counted: bool,
) -> None:
    sessions = tmp_path_factory.mktemp("s")
    data = build(items, end)
    (sessions / "s.jsonl").write_bytes(data)
    journal = Journal(tmp_path_factory.mktemp("state"))
    ahead = JsonlBackend(sessions, journal=journal)
    try:
        want = forward(JsonlBackend(sessions, journal=journal), "s", mode, n)
    except StorageError:
        with pytest.raises(StorageError):
            ahead.rollback_last("s", mode, n, dry_run=True)
        return
    old = jsonl_module.QUICK_GAP
    jsonl_module.QUICK_GAP = old if counted else 0
    try:
        got = ahead.rollback_last("s", mode, n, dry_run=True)
    finally:
        jsonl_module.QUICK_GAP = old
    if counted:
        assert (removed(got), lines(got), got.warnings) == (removed(want), lines(want), ())
    else:
        total = want.removed[-1].index + 1 if want.removed else 0
        shifted = [(i - total, role, text) for i, role, text in removed(want)]
        assert removed(got) == shifted and got.warnings == (FROM_END_NOTE,)
        assert [(s.offset, s.reason) for s in got.removed_lines] == [
            (s.offset, s.reason) for s in want.removed_lines
        ]
        assert all(s.line is None for s in got.removed_lines)
    assert (sessions / "s.jsonl").read_bytes() == data


# --- what the command line calls ---------------------------------------------------------------


def test_run_rollback_goes_from_the_end_except_for_an_index(
    jsonl: JsonlBackend, kit: JsonlKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = kit.write("s", kit.lines(6) + last_turn(kit))
    counted: list[str] = []
    real = JsonlBackend.count_messages

    def count_messages(self: JsonlBackend, key: str) -> int:
        counted.append(key)
        return real(self, key)

    monkeypatch.setattr(JsonlBackend, "count_messages", count_messages)
    assert len(run_rollback(jsonl, "s", "turn", dry_run=True).removed) == 4
    assert len(run_rollback(jsonl, "s", "messages", 2, dry_run=True).removed) == 2
    assert counted == []
    report = run_rollback(jsonl, "s", "to", 7, expected=3)
    assert counted == ["s"] and [m.index for m in report.removed] == [7, 8, 9]
    assert path.read_bytes() == kit.lines(6) + kit.line("last question")
    with pytest.raises(StorageError, match="--messages needs a number"):
        run_rollback(jsonl, "s", "messages", 0)
