"""Where each line of a JSONL session starts, and which lines ZeroClaw's reader keeps.

A session can be a 250 MB file with a million lines. Files are read with ``os.pread`` in
blocks, never whole and never through mmap: ZeroClaw before v0.8.5 rewrote files by truncating
them in place, and touching an mmap past the new end kills the process with SIGBUS.

The index is built from reads of SLICE (256 KB) with one regex call per run of well-formed
lines, so a million-line file takes about a second, and it is extended later from the appended
bytes only. The browser builds it in a worker thread while its UI thread paints, so no check
that holds the interpreter lock looks at more than a slice (about a millisecond): a longer line
is checked a slice at a time when it is in ZeroClaw's own layout, else whole by parse_line.
"""

from __future__ import annotations

import bisect
import codecs
import os
import re
import threading
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from storage.models import ChatMessage
from storage.zcformat import parse_line

CHUNK = 8 << 20
SLICE = 256 << 10
BACK_BLOCK = 64 << 10
_SIG_LEN = 64

Progress = Callable[[int, int], None]

# A run of lines in ZeroClaw's own layout ({"role":"..","content":".."}) with plain JSON escapes.
# Every line it matches is one parse_line accepts, once the bytes are known to be UTF-8: the
# strings hold no control character, no lone surrogate escape, and the object nothing else.
# Lines it stops at go through parse_line, so the verdict is always parse_line's.
_ESC = rb'\\(?:["\\/bfnrt]|u(?![dD][89a-fA-F])[0-9a-fA-F]{4})'
_STR = rb'[^"\\\x00-\x1f]*+(?:' + _ESC + rb'[^"\\\x00-\x1f]*+)*+'
_GOOD_RUN = re.compile(rb'(?:\{"role":"' + _STR + rb'","content":"' + _STR + rb'"\}\r?\n)*+')
_NEWLINE = re.compile(rb"\n")
_STRING = re.compile(_STR)
_ESC_LEN = 6  # the longest escape, \uXXXX
_LINE_HEAD = (b'{"role":"', b'","content":"')
_LINE_ENDS = (b'"}\n', b'"}\r\n')


def read_at(fd: int, offset: int, length: int) -> bytes:
    """``length`` bytes at ``offset``, fewer only at end of file."""
    parts: list[bytes] = []
    while length > 0:
        data = os.pread(fd, min(length, CHUNK), offset)
        if not data:
            break
        parts.append(data)
        offset += len(data)
        length -= len(data)
    return b"".join(parts)


def fast_accepts(raw: bytes) -> bool:
    """The fast path alone: True only for lines parse_line accepts (``raw`` has no newline)."""
    line = raw + b"\n"
    return _good_end(line, 0) == len(line) and _is_utf8(raw)


def _good_end(block: bytes, pos: int) -> int:
    """Where the run of well-formed lines that starts at ``pos`` ends."""
    m = _GOOD_RUN.match(block, pos)
    return pos if m is None else m.end()


def _is_utf8(data: bytes) -> bool:
    if data.isascii():
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def bad_lines(block: bytes) -> list[int]:
    """Numbers (0-based) of the lines of ``block`` that ZeroClaw skips.

    ``block`` holds complete lines, each ending with a newline. It is checked a slice at a time
    (see ``_slices``); lines are counted only up to the last slice that holds a bad line.
    """
    bad: list[int] = []
    line = counted = 0  # ``line`` is the number of the line that starts at ``counted``
    for start, stop in _slices(block):
        if stop - start > SLICE:
            found = [] if _long_line_good(block, start, stop) else [0]
        else:
            found = _bad_in(block[start:stop])
        if found:
            line += _count_lines(block, counted, start)
            counted = start
            bad += [line + n for n in found]
    return bad


def _slices(block: bytes) -> Iterator[tuple[int, int]]:
    """[start, stop) spans of whole lines that cover ``block`` in order: each at most SLICE
    bytes, or a single line that is longer. Newlines are looked for SLICE bytes at a time."""
    start, size = 0, len(block)
    while start < size:
        if size - start <= SLICE:
            yield start, size
            return
        stop = block.rfind(b"\n", start, start + SLICE) + 1
        probe = start + SLICE
        while not stop:  # one line longer than SLICE: find its end
            if probe >= size:
                stop = size
                break
            stop = block.find(b"\n", probe, probe + SLICE) + 1
            probe += SLICE
        yield start, stop
        start = stop


def _count_lines(block: bytes, start: int, stop: int) -> int:
    """Newlines in [start, stop), counted SLICE bytes at a time."""
    return sum(block.count(b"\n", pos, min(stop, pos + SLICE)) for pos in range(start, stop, SLICE))


def _long_line_good(block: bytes, start: int, stop: int) -> bool:
    """Whether ZeroClaw reads the line ``block[start:stop]`` (newline included), which is
    longer than a slice: the fast path's checks made SLICE bytes at a time, else parse_line."""
    pos = start
    for head in _LINE_HEAD:
        if not block.startswith(head, pos):
            break
        pos = _string_end(block, pos + len(head), stop)
    else:
        if stop - pos <= 4 and block[pos:stop] in _LINE_ENDS and _utf8_between(block, start, stop):
            return True
    return isinstance(parse_line(block[start : stop - 1]), ChatMessage)


def _string_end(block: bytes, pos: int, stop: int) -> int:
    """Where the run of plain characters and escapes of a JSON string that starts at ``pos``
    ends, matched SLICE bytes at a time. A match that stops within an escape's length of its
    window's end may have stopped at an escape the window cut: it goes on from there."""
    while True:
        end = min(stop, pos + SLICE)
        m = _STRING.match(block, pos, end)
        got = pos if m is None else m.end()
        if end == stop or got + _ESC_LEN <= end:
            return got
        pos = got


def _utf8_between(block: bytes, start: int, stop: int) -> bool:
    """``block[start:stop]`` is UTF-8, decoded SLICE bytes at a time (a character may span
    two slices)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        for pos in range(start, stop, SLICE):
            decoder.decode(block[pos : min(stop, pos + SLICE)])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _bad_in(block: bytes) -> list[int]:
    """``bad_lines`` of a block of at most a slice: one regex call per run of good lines."""
    utf8 = _is_utf8(block)
    bad: list[int] = []
    pos = line = 0  # ``line`` is the number of the line that starts at ``pos``
    while True:
        good_end = _good_end(block, pos)
        if not utf8:
            bad += _undecodable(block[pos:good_end], line)
        if good_end >= len(block):
            return bad
        line += block.count(b"\n", pos, good_end)
        pos = block.index(b"\n", good_end) + 1
        if not isinstance(parse_line(block[good_end : pos - 1]), ChatMessage):
            bad.append(line)
        line += 1


def _undecodable(lines: bytes, first_line: int) -> list[int]:
    pieces = lines.split(b"\n")[:-1]
    return [first_line + n for n, raw in enumerate(pieces) if not _is_utf8(raw)]


def iter_blocks(
    fd: int, start: int, stop: int, read: int | None = None
) -> Iterator[tuple[int, bytes]]:
    """(offset, bytes) of [start, stop) in blocks of whole lines, from reads of ``read`` bytes
    (CHUNK by default): a block is one read's whole lines and the line that ran into it.

    Only the last block may lack a final newline: it is then the unterminated last line.
    """
    take = CHUNK if read is None else read
    pos = start
    carry: list[bytes] = []  # the pieces of a line that began before ``pos``
    while pos < stop:
        data = os.pread(fd, min(take, stop - pos), pos)
        if not data:
            break
        begin = pos - sum(map(len, carry))
        pos += len(data)
        cut = data.rfind(b"\n") + 1
        if not cut:
            carry.append(data)
            continue
        # one copy at most, of the whole lines only
        whole = data if cut == len(data) else memoryview(data)[:cut]
        yield begin, b"".join([*carry, whole]) if carry or whole is not data else data
        carry = [data[cut:]] if cut < len(data) else []
    if carry:
        rest = b"".join(carry)
        yield pos - len(rest), rest


def lines_of(block: bytes, base: int = 0) -> Iterator[tuple[int, bytes, bool]]:
    """(offset, line without newline, terminated) for each line of ``block``.

    Nothing is yielded for the empty piece after a final newline.
    """
    pos = 0
    for m in _NEWLINE.finditer(block):
        yield base + pos, block[pos : m.start()], True
        pos = m.end()
    if pos < len(block):
        yield base + pos, block[pos:], False


def iter_lines(fd: int, start: int, stop: int) -> Iterator[tuple[int, bytes, bool]]:
    """(offset, line without newline, terminated) for every line in [start, stop)."""
    for base, block in iter_blocks(fd, start, stop):
        yield from lines_of(block, base)


def iter_blocks_backward(
    fd: int, end: int, block: int | None = None
) -> Iterator[tuple[int, bytes]]:
    """(offset, bytes) of [0, end) in blocks of whole lines, last block first.

    ``end`` must be a line boundary: 0 or just after a newline. Blocks are about ``block``
    bytes (BACK_BLOCK by default), more where a line is longer.
    """
    first = BACK_BLOCK if block is None else block
    pos, carry, size = end, b"", first
    while pos > 0:
        take = min(size, pos)
        pos -= take
        data = read_at(fd, pos, take) + carry
        if pos == 0:
            yield 0, data
            return
        # The first line of ``data`` may have begun before ``pos``: keep it for the next read.
        cut = data.find(b"\n") + 1
        if cut == len(data):
            carry, size = data, min(size * 2, CHUNK)
            continue
        yield pos + cut, data[cut:]
        carry, size = data[:cut], first


def iter_lines_backward(fd: int, end: int) -> Iterator[tuple[int, bytes]]:
    """(offset, line without newline) for every line in [0, end), last line first."""
    for base, block in iter_blocks_backward(fd, end):
        for offset, raw, _ in reversed(list(lines_of(block, base))):
            yield offset, raw


def last_line_end(fd: int, size: int) -> int:
    """The offset just after the last newline before ``size`` (0 when there is none)."""
    pos = size
    while pos > 0:
        take = min(BACK_BLOCK, pos)
        pos -= take
        nl = read_at(fd, pos, take).rfind(b"\n")
        if nl >= 0:
            return pos + nl + 1
    return 0


@dataclass(eq=False)
class LineIndex:
    """Line starts of the complete lines of one file (by device and inode) up to ``end``.

    ``bad`` holds the numbers of the lines ZeroClaw skips; message N is the N-th other line.
    ``sig`` holds the bytes just before ``end``: when they change, the file was rewritten in
    place, and the index is worthless. ``lock`` serializes building, extending and cutting.
    """

    dev: int
    ino: int
    end: int = 0
    starts: array[int] = field(default_factory=lambda: array("Q"))
    bad: array[int] = field(default_factory=lambda: array("Q"))
    sig: bytes = b""
    lock: threading.Lock = field(default_factory=threading.Lock)
    # bad[j] - j: how many messages come before bad line j (non-decreasing, for bisect).
    _bad_key: array[int] = field(default_factory=lambda: array("Q"))

    @property
    def lines(self) -> int:
        return len(self.starts)

    @property
    def count(self) -> int:
        return len(self.starts) - len(self.bad)

    def fits(self, fd: int, dev: int, ino: int, size: int) -> bool:
        """The file is the one indexed, grown or not, and not rewritten."""
        if (dev, ino) != (self.dev, self.ino) or size < self.end:
            return False
        return read_at(fd, self.end - len(self.sig), len(self.sig)) == self.sig

    def line_span(self, line: int) -> tuple[int, int]:
        stop = self.starts[line + 1] if line + 1 < len(self.starts) else self.end
        return self.starts[line], stop

    def message_line(self, index: int) -> int:
        return index + bisect.bisect_right(self._bad_key, index)

    def messages_before(self, line: int) -> int:
        return line - bisect.bisect_left(self.bad, line)

    def line_at(self, offset: int) -> int:
        """The line that contains ``offset`` (``lines`` when it is at or past ``end``)."""
        if offset >= self.end:
            return len(self.starts)
        return bisect.bisect_right(self.starts, offset) - 1

    def reset(self) -> None:
        self.end = 0
        self.sig = b""
        del self.starts[:], self.bad[:], self._bad_key[:]

    def bad_between(self, first: int, stop: int) -> list[int]:
        """Bad line numbers ``n`` with ``first <= n < stop``."""
        lo = bisect.bisect_left(self.bad, first)
        return list(self.bad[lo : bisect.bisect_left(self.bad, stop, lo)])

    def extend(
        self,
        fd: int,
        size: int,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> bool:
        """Index the complete lines in [end, size). False when cancelled (what is done stays).

        The file is read a slice at a time. ``progress(done, size)`` is called whenever
        another CHUNK bytes are indexed, and once at the end.
        """
        reported = self.end
        for base, block in iter_blocks(fd, self.end, size, min(CHUNK, SLICE)):
            if cancel is not None and cancel.is_set():
                self._sign(fd)
                return False
            if not block.endswith(b"\n"):
                break
            self._add_block(base, block)
            if progress is not None and self.end - reported >= CHUNK:
                reported = self.end
                progress(self.end, size)
        if progress is not None and self.end > reported:
            progress(self.end, size)
        self._sign(fd)
        return True

    def _add_block(self, base: int, block: bytes) -> None:
        first = len(self.starts)
        self.starts.append(base)
        self.starts.extend([base + m.end() for m in _NEWLINE.finditer(block, 0, len(block) - 1)])
        for n in bad_lines(block):
            self._bad_key.append(first + n - len(self.bad))
            self.bad.append(first + n)
        self.end = base + len(block)

    def cut(self, line: int, fd: int) -> None:
        """Forget line ``line`` and every line after it (the file was cut there)."""
        if line >= len(self.starts):
            return
        self.end = self.starts[line]
        del self.starts[line:]
        keep = bisect.bisect_left(self.bad, line)
        del self.bad[keep:]
        del self._bad_key[keep:]
        self._sign(fd)

    def _sign(self, fd: int) -> None:
        n = min(_SIG_LEN, self.end)
        self.sig = read_at(fd, self.end - n, n)
