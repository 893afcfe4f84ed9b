"""The line index: its fast validity check agrees with parse_line, and it grows incrementally."""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage import lineindex
from storage.jsonl import JsonlBackend
from storage.lineindex import (
    LineIndex,
    bad_lines,
    fast_accepts,
    iter_blocks_backward,
    iter_lines_backward,
    last_line_end,
    lines_of,
)
from storage.models import ChatMessage
from storage.zcformat import parse_line
from tests.unit_storage.conftest import JsonlKit

# Lines near ZeroClaw's layout, with the damage that makes parse_line say no.
_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=12)
_canonical = st.builds(
    lambda r, c: json.dumps({"role": r, "content": c}, ensure_ascii=False, separators=(",", ":")),
    _text,
    _text,
)
_escaped = st.builds(lambda r, c: json.dumps({"role": r, "content": c}), _text, _text)
_fragments = st.sampled_from(
    [
        '{"role":"user","content":"a"}',
        '{"role":"user","content":"a","extra":1}',
        '{"content":"a","role":"user"}',
        '{"role":"user","role":"x","content":"a"}',
        '{"role":"user","content":null}',
        '{"role":"user","content":"\\ud800"}',
        '{"role":"user","content":"\\ud83d\\ude00"}',
        '{"role":"user","content":"\\u0041\\/\\b"}',
        '{"role":"user","content":"a\\x"}',
        '["user","a"]',
        " \t",
        "",
        "{not json",
        '{"role":"user","content":"a"}{"role":"user","content":"b"}',
        '{"role":"user","content":"a"} ',
        '{"role":"user","content":"a"}\r',
        '{"role":"user","content":"a"}\r\r',
        '{"role":"user","content":"tab\there"}',
        '{"role":"user","content":"a\x7f\u0085\u2028"}',
    ]
)
_line = st.one_of(_canonical, _escaped, _fragments).map(lambda s: s.encode("utf-8"))
_raw_line = st.one_of(
    _line,
    st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")),
    _line.map(lambda b: b[: len(b) // 2]),
    _line.map(lambda b: b.replace(b"a", b"\xff", 1)),
)


def accepted(raw: bytes) -> bool:
    return isinstance(parse_line(raw), ChatMessage)


@settings(max_examples=600, deadline=None)
@given(_raw_line)
def test_fast_path_accepts_only_what_parse_line_accepts(raw: bytes) -> None:
    if fast_accepts(raw):
        assert accepted(raw)


@settings(max_examples=300, deadline=None)
@given(st.lists(_raw_line, max_size=30))
def test_bad_lines_are_exactly_parse_line_rejects(lines: list[bytes]) -> None:
    block = b"".join(raw + b"\n" for raw in lines)
    assert bad_lines(block) == [n for n, raw in enumerate(lines) if not accepted(raw)]


def test_fast_path_takes_zeroclaw_lines() -> None:
    assert fast_accepts(b'{"role":"assistant","content":"a\\n\\"b\\" \\u00e9 caf\xc3\xa9"}')
    assert not fast_accepts(b'{"role":"user","content":"\\ud800"}')
    assert not fast_accepts(b'{"role":"user","content":"\xff"}')


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=300), max_size=40))
def test_backward_blocks_cover_the_file_in_reverse(
    tmp_path_factory: pytest.TempPathFactory, sizes: list[int]
) -> None:
    data = b"".join(b"x" * n + b"\n" for n in sizes)
    path = tmp_path_factory.mktemp("back") / "f"
    path.write_bytes(data + b"torn")
    fd = os.open(path, os.O_RDONLY)
    try:
        old = lineindex.BACK_BLOCK
        lineindex.BACK_BLOCK = 64  # lines longer than a block must still come whole
        try:
            end = last_line_end(fd, len(data) + 4)
            blocks = list(iter_blocks_backward(fd, end))
            lines = list(iter_lines_backward(fd, end))
        finally:
            lineindex.BACK_BLOCK = old
    finally:
        os.close(fd)
    assert end == len(data)
    assert b"".join(b for _, b in reversed(blocks)) == data
    assert all(b.endswith(b"\n") for _, b in blocks)
    forward = [(off, raw) for off, raw, _ in lines_of(data)]
    assert lines == forward[::-1]


def open_index(path: Path) -> tuple[int, LineIndex]:
    fd = os.open(path, os.O_RDONLY)
    st = os.fstat(fd)
    return fd, LineIndex(st.st_dev, st.st_ino)


def test_index_grows_from_the_new_bytes_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kit = JsonlKit(tmp_path)
    path = kit.write("s", kit.lines(100) + b"{bad\n" + kit.line("half").rstrip(b"\n"))
    fd, idx = open_index(path)
    try:
        assert idx.extend(fd, os.fstat(fd).st_size)
        assert (idx.lines, idx.count, list(idx.bad)) == (101, 100, [100])
        assert idx.end == path.stat().st_size - len(kit.line("half")) + 1
        with path.open("ab") as f:
            f.write(b"\n" + kit.lines(5, start=100))
        reads: list[int] = []
        real = os.pread

        def pread(f: int, n: int, offset: int) -> bytes:
            reads.append(offset)
            return real(f, n, offset)

        monkeypatch.setattr(os, "pread", pread)
        st = os.fstat(fd)
        size = st.st_size
        assert idx.fits(fd, st.st_dev, st.st_ino, size)
        assert idx.extend(fd, size)
        assert min(reads) >= idx.starts[101] - 64  # only the signature and the new lines
        assert (idx.lines, idx.count, idx.end) == (107, 106, size)
        assert idx.message_line(100) == 101 and idx.messages_before(102) == 101
    finally:
        os.close(fd)


def test_cached_index_is_dropped_on_shrink_or_new_inode(kit: JsonlKit) -> None:
    backend = JsonlBackend(kit.sessions, journal=None)
    kit.write("s", kit.lines(10))
    assert backend.count_messages("s") == 10
    kit.write("s", kit.lines(3, prefix="x"))  # same inode, shrunk
    assert backend.count_messages("s") == 3
    assert [m.content for m in backend.read_range("s", 0, 3)] == ["x0", "x1", "x2"]
    tmp = kit.sessions / "new"
    tmp.write_bytes(kit.lines(4, prefix="y"))
    os.replace(tmp, kit.path("s"))  # a rename: new inode, same size class
    assert [m.content for m in backend.read_range("s", 0, 9)] == ["y0", "y1", "y2", "y3"]


def test_rewrite_in_place_to_a_longer_file_is_noticed(kit: JsonlKit) -> None:
    backend = JsonlBackend(kit.sessions, journal=None)
    kit.write("s", kit.lines(10, prefix="a"))
    assert backend.count_messages("s") == 10
    with kit.path("s").open("r+b") as f:  # old ZeroClaw: truncate in place, write all again
        f.truncate(0)
        f.write(kit.lines(12, prefix="b"))
    assert [m.content for m in backend.read_range("s", 0, 2)] == ["b0", "b1"]


def test_build_index_reports_progress_and_stops_on_cancel(
    kit: JsonlKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lineindex, "CHUNK", 4096)
    kit.write("big", kit.lines(2000))
    backend = JsonlBackend(kit.sessions, journal=None)
    seen: list[tuple[int, int]] = []
    cancel = threading.Event()

    def progress(done: int, total: int) -> None:
        seen.append((done, total))
        if len(seen) == 3:
            cancel.set()

    assert backend.build_index("big", progress, cancel) is None
    assert len(seen) == 3 and seen[0][0] < seen[2][0] < seen[2][1]
    seen.clear()
    assert backend.build_index("big", progress) == 2000
    assert seen[0][0] > 3 * 4096 - 200  # went on from where the cancelled build stopped
    assert seen[-1][0] == seen[-1][1] == kit.path("big").stat().st_size


# --- slices: no check looks at more than SLICE bytes, and the boundaries change no verdict ------

# Long strings with what can straddle a slice boundary: multi-byte characters, escapes (the
# \uXXXX ones too), and damage: a lone surrogate escape, a bad escape, a byte that is not UTF-8.
_long_text = st.text(
    alphabet=st.sampled_from(["a", " ", "é", "€", "😀", '"', "\\", "\n", "\x01", "\u2028"]),
    max_size=120,
)
_long_line = st.builds(
    lambda r, c, ascii_only: json.dumps(
        {"role": r, "content": c}, ensure_ascii=ascii_only, separators=(",", ":")
    ).encode("utf-8"),
    st.sampled_from(["user", "assistant", "tool"]),
    _long_text,
    st.booleans(),
)
_damage = st.sampled_from([b"\xff", b"\xe2\x82", b"\\ud800", b"\\x", b'"', b"\x00", b"\r"])


@st.composite
def _maybe_damaged(draw: st.DrawFn) -> bytes:
    raw = draw(_long_line)
    if draw(st.booleans()):
        at = draw(st.integers(min_value=0, max_value=len(raw)))
        raw = raw[:at] + draw(_damage) + raw[at:]
    return raw


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(_maybe_damaged(), _raw_line), max_size=12), st.integers(8, 64))
def test_bad_lines_agree_with_parse_line_whatever_the_slice_size(
    lines: list[bytes], slice_size: int
) -> None:
    block = b"".join(raw + b"\n" for raw in lines)
    expected = [n for n, raw in enumerate(lines) if not accepted(raw)]
    old = lineindex.SLICE
    lineindex.SLICE = slice_size  # lines up to 15x a slice: most take the long-line path
    try:
        assert bad_lines(block) == expected
    finally:
        lineindex.SLICE = old


SLICE = lineindex.SLICE


def filler(n: int) -> bytes:
    """Whole ZeroClaw lines of ``n`` bytes in all (n >= 29), none longer than 1000."""
    empty = b'{"role":"user","content":""}\n'
    k = -(-n // 1000)
    sizes = [n // k + (i < n % k) for i in range(k)]
    data = b"".join(empty[:-3] + b"x" * (size - len(empty)) + empty[-3:] for size in sizes)
    assert len(data) == n and all(accepted(raw) for raw in data.split(b"\n")[:-1])
    return data


def line_around(at: int, piece: bytes, before: int) -> bytes:
    """A user line that holds ``piece`` starting ``before`` bytes after its own start, to be
    placed at offset ``at - before`` of a block."""
    head = b'{"role":"user","content":"'
    return head + b"y" * (before - len(head)) + piece + b'z"}\n'


def test_a_character_across_the_slice_boundary_is_not_split() -> None:
    """The slice ends at a newline: the line around the boundary is checked whole."""
    euro = "€".encode()  # 3 bytes; its second byte sits exactly at offset SLICE
    lead = filler(SLICE - 500)
    block = lead + line_around(SLICE - 1, euro, 499) + filler(2000)
    assert block[SLICE - 1 : SLICE + 2] == euro
    assert bad_lines(block) == []
    broken = lead + line_around(SLICE, b"\xff", 500) + filler(2000)  # invalid byte at SLICE
    assert broken[SLICE] == 0xFF
    assert bad_lines(broken) == [lead.count(b"\n")]


def long_line(content: bytes) -> bytes:
    return b'{"role":"tool","content":"' + content + b'"}\n'


@pytest.mark.parametrize(
    ("piece", "good", "fast"),
    [
        ("€".encode(), True, True),  # a character split by the window
        ("😀".encode(), True, True),
        (b"\\u00e9", True, True),  # an escape split by the window
        (b'\\"', True, True),
        (b"\\ud83d\\ude00", True, False),  # the fast path leaves surrogates to parse_line
        (b"\xff", False, False),  # not UTF-8, right at the window's edge
        (b"\xe2\x82", False, False),  # a character cut short
        (b"\\ud800", False, False),  # a lone surrogate escape
        (b"\\x", False, False),
        (b"\x1f", False, False),
    ],
)
def test_a_line_longer_than_a_slice_is_checked_across_its_windows(
    piece: bytes, good: bool, fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``piece`` is placed across the edge of the first window at every offset: the windows
    of the UTF-8 check start at the line, those of the string match where the content starts
    (26 bytes on). A line in ZeroClaw's layout with plain escapes never goes whole to
    parse_line."""
    parsed = watch_parse_line(monkeypatch)
    edges = (SLICE - 26, SLICE)  # content bytes in front of each kind of window edge
    for before in (edge + shift for edge in edges for shift in range(-len(piece) - 6, 2)):
        content = b"a" * before + piece + b"b" * (SLICE + 100)
        raw = long_line(content)
        assert len(raw) > 2 * SLICE
        block = filler(3000) + raw + filler(3000) + b"{bad\n"
        first = filler(3000).count(b"\n")
        want = ([] if good else [first]) + [first * 2 + 1]
        assert accepted(raw[:-1]) == good
        parsed.clear()
        assert bad_lines(block) == want, (piece, before)
        assert max(parsed) <= SLICE if fast else max(parsed) == len(raw) - 1


def watch_parse_line(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The lengths of the lines the index hands to parse_line."""
    seen: list[int] = []

    def parse(raw: bytes) -> Any:
        seen.append(len(raw))
        return parse_line(raw)

    monkeypatch.setattr(lineindex, "parse_line", parse)
    return seen


def test_a_long_line_in_another_layout_goes_to_parse_line() -> None:
    content = b"\xc3\xa9" * SLICE  # 2 slices of 2-byte characters
    extra = b'{"role":"user","content":"' + content + b'","extra":1}\n'
    glued = b'{"role":"user","content":"' + content + b'"}{"role":"user","content":"b"}\n'
    braces = long_line(content)[:-1] + b"}\n"
    block = extra + glued + long_line(content) + braces + b"{bad\n"
    assert bad_lines(block) == [1, 3, 4]


class _Watched:
    """A compiled pattern that records how many bytes each match call may look at."""

    def __init__(self, pattern: re.Pattern[bytes], seen: list[int]) -> None:
        self.pattern, self.seen = pattern, seen

    def match(self, data: bytes, pos: int = 0, endpos: int | None = None) -> re.Match[bytes] | None:
        stop = len(data) if endpos is None else min(endpos, len(data))
        self.seen.append(stop - pos)
        return self.pattern.match(data, pos, stop)


def test_no_check_looks_at_more_than_a_slice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    monkeypatch.setattr(lineindex, "_GOOD_RUN", _Watched(lineindex._GOOD_RUN, seen))
    monkeypatch.setattr(lineindex, "_STRING", _Watched(lineindex._STRING, seen))
    real_utf8 = lineindex._is_utf8

    def is_utf8(data: bytes) -> bool:
        seen.append(len(data))
        return real_utf8(data)

    monkeypatch.setattr(lineindex, "_is_utf8", is_utf8)
    parsed = watch_parse_line(monkeypatch)
    real_pread = os.pread

    def pread(fd: int, n: int, offset: int) -> bytes:
        seen.append(n)
        return real_pread(fd, n, offset)

    kit = JsonlKit(tmp_path)
    big = long_line("é".encode() * (3 * SLICE // 2))
    path = kit.write("s", kit.lines(40000) + big + kit.lines(20000, "é") + b"{bad\n")
    assert path.stat().st_size > 8 * SLICE
    fd, idx = open_index(path)
    monkeypatch.setattr(os, "pread", pread)
    try:
        assert idx.extend(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)
    assert (idx.lines, idx.count, list(idx.bad)) == (60002, 60001, [60001])
    assert seen and max(seen) <= SLICE and parsed == [4]
