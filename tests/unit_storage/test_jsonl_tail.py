"""Opening a big session at its tail, and following it as ZeroClaw appends."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from storage.jsonl import QUICK_GAP, JsonlBackend
from storage.models import ChatMessage
from tests.unit_storage.conftest import JsonlKit

PAD = "x" * 60
N = 100_000


@pytest.fixture
def big(kit: JsonlKit) -> Path:
    """~100k lines (8 MB: too big to index on the spot), one corrupt line near the end."""
    lines = [kit.line(f"m{i} {PAD}", ("user", "assistant")[i % 2]) for i in range(N)]
    lines.insert(N - 10, b"{corrupt\n")
    path = kit.write("big", b"".join(lines))
    assert path.stat().st_size > QUICK_GAP
    return path


def count_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    sizes: list[int] = []
    real = os.pread

    def pread(fd: int, n: int, offset: int) -> bytes:
        data = real(fd, n, offset)
        sizes.append(len(data))
        return data

    monkeypatch.setattr(os, "pread", pread)
    return sizes


def test_tail_without_index_reads_only_the_end(
    jsonl: JsonlBackend, big: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = count_reads(monkeypatch)
    tail = jsonl.read_tail("big", 50)
    assert sum(reads) < 256 * 1024
    assert tail.first_index is None
    assert [m.index for m in tail.messages] == list(range(-50, 0))
    assert [m.content for m in tail.messages] == [f"m{i} {PAD}" for i in range(N - 50, N)]
    assert all(m.line is None for m in tail.messages)
    [corrupt] = tail.skipped
    assert corrupt.reason == "not JSON" and corrupt.before_index == -10
    assert tail.cursor == big.stat().st_size


def test_tail_after_build_index_has_absolute_numbers(jsonl: JsonlBackend, big: Path) -> None:
    assert jsonl.build_index("big") == N
    tail = jsonl.read_tail("big", 3)
    assert tail.first_index == N - 3
    assert [(m.index, m.line) for m in tail.messages] == [
        (N - 3, N - 1),
        (N - 2, N),
        (N - 1, N + 1),
    ]
    got = jsonl.read_range("big", 5000, 5003)
    assert [(m.index, m.content) for m in got] == [(i, f"m{i} {PAD}") for i in range(5000, 5003)]


def test_feed_numbers_on_from_a_tail_without_index(
    jsonl: JsonlBackend, big: Path, kit: JsonlKit
) -> None:
    tail = jsonl.read_tail("big", 5)
    with big.open("ab") as f:
        f.write(kit.line("new one") + kit.line("new two"))
    changes = jsonl.changes_since("big", tail.cursor)
    assert [(m.index, m.content) for m in changes.messages] == [(0, "new one"), (1, "new two")]
    with big.open("ab") as f:
        f.write(kit.line("new three"))
    later = jsonl.changes_since("big", changes.cursor)
    assert [(m.index, m.content) for m in later.messages] == [(2, "new three")]


def test_small_session_tail_is_indexed_at_once(jsonl: JsonlBackend) -> None:
    tail = jsonl.read_tail("gw_a1b2c3", 2)
    assert tail.first_index == 29
    assert [m.index for m in tail.messages] == [29, 30]
    assert [s.reason for s in tail.skipped] == ["torn last line"]
    assert tail.cursor == tail.skipped[0].offset


def test_torn_line_waits_until_its_newline(jsonl: JsonlBackend, kit: JsonlKit) -> None:
    path = kit.write("live", kit.lines(3))
    cursor = jsonl.cursor("live")
    assert cursor == path.stat().st_size
    with path.open("ab") as f:
        f.write(kit.line("second half").rstrip(b"\n"))
    waiting = jsonl.changes_since("live", cursor)
    assert (waiting.messages, waiting.cursor, waiting.reset) == ((), cursor, False)
    with path.open("ab") as f:
        f.write(b"\n" + kit.line("then more"))
    done = jsonl.changes_since("live", waiting.cursor)
    assert [(m.index, m.content, m.line) for m in done.messages] == [
        (3, "second half", 4),
        (4, "then more", 5),
    ]
    assert done.cursor == path.stat().st_size


def test_feed_reports_unreadable_lines_in_place(jsonl: JsonlBackend, kit: JsonlKit) -> None:
    path = kit.write("live", kit.lines(2))
    cursor = jsonl.cursor("live")
    with path.open("ab") as f:
        f.write(b"garbage\n" + kit.line("after"))
    changes = jsonl.changes_since("live", cursor)
    assert [m.index for m in changes.messages] == [2]
    assert [(s.line, s.reason, s.before_index) for s in changes.skipped] == [(3, "not JSON", 2)]


def test_replaced_file_resets_the_feed(jsonl: JsonlBackend, kit: JsonlKit) -> None:
    path = kit.write("live", kit.lines(5))
    cursor = jsonl.read_tail("live", 10).cursor
    tmp = kit.sessions / ".tmp-new"
    tmp.write_bytes(kit.lines(8, prefix="n"))  # longer, so only the inode tells
    os.replace(tmp, path)
    changes = jsonl.changes_since("live", cursor)
    assert changes.reset and changes.messages == ()
    assert changes.cursor == path.stat().st_size


def test_shrunk_file_resets_the_feed(jsonl: JsonlBackend, kit: JsonlKit) -> None:
    path = kit.write("live", kit.lines(5))
    cursor = jsonl.cursor("live")
    with path.open("r+b") as f:
        f.truncate(len(kit.lines(2)))
    assert jsonl.changes_since("live", cursor).reset


def test_cursor_inside_a_line_resets(jsonl: JsonlBackend, kit: JsonlKit) -> None:
    kit.write("live", kit.lines(5))
    assert jsonl.changes_since("live", 7).reset


def test_append_is_zeroclaw_style_and_seen_by_the_feed(jsonl: JsonlBackend, kit: JsonlKit) -> None:
    cursor = jsonl.cursor("discord_guild42_ch7_erin")
    jsonl.append("discord_guild42_ch7_erin", ChatMessage(role="user", content='é \u2028 "q"'))
    path = kit.path("discord_guild42_ch7_erin")
    assert path.read_bytes().endswith('{"role":"user","content":"é \u2028 \\"q\\""}\n'.encode())
    changes = jsonl.changes_since("discord_guild42_ch7_erin", cursor)
    assert [(m.index, m.content) for m in changes.messages] == [(7, 'é \u2028 "q"')]
