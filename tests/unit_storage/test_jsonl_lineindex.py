"""The line index: its fast validity check agrees with parse_line, and it grows incrementally."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

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
