"""ZeroClaw's JSONL store: one append-only file per session in ``sessions/``.

Reading follows ZeroClaw's reader line for line (message N is the N-th line ``parse_line``
accepts) and also reports the lines that reader skips without a word.

Edits never take ZeroClaw's path of rewriting a file from its valid messages, which deletes
every line it cannot read. A rollback cuts the file with ftruncate, so every byte in front of
the cut stays as it was. Only compact, and an undo that has to put lines back in the middle,
write a new file, byte for byte from the old one, and rename it over the old one. Nothing
coordinates with the ZeroClaw daemon, which may append at any moment: every edit re-checks the
file right before it changes it, and a rename carries over what the daemon appended to the old
file meanwhile.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import hashlib
import heapq
import itertools
import json
import os
import re
import secrets
import signal
import sqlite3
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, ParamSpec, TypeVar

from storage.errors import ReadOnlyError, SessionChangedError, SessionNotFound, StorageError
from storage.journal import Journal, JournalEntry, fsync_dir, write_atomic
from storage.lineindex import (
    CHUNK,
    LineIndex,
    Progress,
    iter_blocks_backward,
    iter_lines,
    iter_lines_backward,
    last_line_end,
    lines_of,
    read_at,
)
from storage.models import (
    BackendName,
    Changes,
    ChatMessage,
    EditReport,
    RemovedMessage,
    SearchHit,
    SessionMetadata,
    SessionState,
    SkippedLine,
    StoredMessage,
    Tail,
)
from storage.query import Prefilter, Query, make_snippet, parse_query, zeroclaw_fts5
from storage.zcformat import (
    RUST_WHITESPACE,
    LineProblem,
    encode_message,
    now_rfc3339,
    parse_line,
    preview,
    sanitize_key,
)

SUFFIX = ".jsonl"
NAMES_FILE = ".zc-sessions-names.json"
DB_NAME = "sessions.db"
# An unterminated last line younger than this may be the daemon between its two writes.
RECENT_SECS = 5.0
# read_tail and changes_since use the index only when this little is left to scan (~15 ms).
QUICK_GAP = 4 << 20
MAX_INDEXES = 128
# Search reads bigger blocks than a tail: fewer calls per MB, still a quick first hit.
SEARCH_BLOCK = 1 << 20
RETRIES = 3
# How long a rename waits for a writer that still has the old file open (see _carry_over).
CARRY_WAIT = 5.0
# How long an edit waits for the daemon to close the file, so that it can take a lease.
LEASE_WAIT = 2.0
_BEFORE_LEN = 4096
FROM_END_NOTE = (
    "message numbers count back from the end of the session (-1 was the last message): the "
    "messages in front of the cut were not counted"
)
_RUST_WORDS = re.compile(f"[^{re.escape(RUST_WHITESPACE)}]+")

P = ParamSpec("P")
R = TypeVar("R")
Piece = tuple[int, int] | bytes  # a byte range of the old file, or bytes to write as they are
Parsed = ChatMessage | LineProblem


class _Changed(Exception):
    """The file changed under an edit before it was touched: read it again and retry."""


def _storage_errors(action: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Let no OSError or UnicodeError out of a public method: one line for the user instead."""

    def wrap(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def inner(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return func(*args, **kwargs)
            except OSError as err:
                raise _os_error(action, err) from err
            except UnicodeError as err:
                raise StorageError(f"cannot {action}: {err}") from err

        return inner

    return wrap


def _os_error(action: str, err: OSError) -> StorageError:
    name = os.path.basename(os.fsdecode(err.filename)) if err.filename else ""
    where = f" {name}" if name else ""
    return StorageError(f"cannot {action}{where}: {err.strerror or err}")


@contextmanager
def _open(path: Path, key: str, flags: int = os.O_RDONLY) -> Iterator[tuple[int, os.stat_result]]:
    """An fd on a session file and its stat; O_NONBLOCK so that a FIFO cannot hang us."""
    try:
        fd = os.open(path, flags | os.O_NONBLOCK)
    except FileNotFoundError:
        raise SessionNotFound(key) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise StorageError(f"{path.name} is not a regular file")
        yield fd, st
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _unchanged(fd: int, path: Path, st: os.stat_result) -> bool:
    """The path still names the file read, with the same size and mtime.

    The fstat comes last, so that the window before the edit's own syscall stays as short as
    possible: ZeroClaw takes no lock, and an append landing in that window would be lost.
    """
    now = os.stat(path)
    if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
        return False
    cur = os.fstat(fd)
    return cur.st_size == st.st_size and cur.st_mtime_ns == st.st_mtime_ns


@contextmanager
def _appends_held_off(fd: int) -> Iterator[bool]:
    """Hold a Linux write lease on ``fd``: while it lasts, anyone's open() of the file waits.

    ZeroClaw appends with open, write, write, close, so under the lease a final check and the
    edit right after it cannot race with an append: without it, an append landing between the
    two is cut off with the rest. A lease is only granted while nobody else has the file open,
    so a busy daemon is waited for, up to LEASE_WAIT: on a loaded machine the daemon can sit
    between its open and its close for tens of milliseconds. Yields False where no lease can be
    had (no F_SETLEASE, someone else's file, a filesystem without leases, a file held open all
    along): the check then races for the microseconds before the edit, as it must without a lock.
    """
    held = False
    deadline = time.monotonic() + LEASE_WAIT
    while hasattr(fcntl, "F_SETLEASE") and time.monotonic() < deadline:
        try:
            # The lease-break notice is SIGIO by default, whose default action kills us.
            fcntl.fcntl(fd, fcntl.F_SETSIG, signal.SIGURG)
            fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_WRLCK)
        except OSError as err:
            if err.errno != errno.EAGAIN:
                break
            time.sleep(0.001)
            continue
        held = True
        break
    try:
        yield held
    finally:
        if held:
            with suppress(OSError):
                fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)


def _stem_of(name: str) -> str | None:
    """The key ZeroClaw lists for a file name (Rust's file_stem where the extension is jsonl)."""
    if not name.endswith(SUFFIX) or len(name) == len(SUFFIX):
        return None
    try:
        name.encode("utf-8")  # ZeroClaw skips names that are not UTF-8; so do we
    except UnicodeEncodeError:
        return None
    return name[: -len(SUFFIX)]


def _plain_name(key: str) -> bool:
    return bool(key) and "/" not in key and "\x00" not in key and _stem_of(key + SUFFIX) == key


def _sqlite_ro(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=0.5)


def _has_import_receipts(db: Path) -> bool:
    if not db.exists():
        return False
    try:
        con = _sqlite_ro(db)
        try:
            row = con.execute("SELECT 1 FROM jsonl_import_receipts LIMIT 1").fetchone()
        finally:
            con.close()
    except sqlite3.Error:
        return False
    return row is not None


def _sqlite_in_use(db: Path) -> bool:
    """sessions.db is open now (WAL files beside it) or holds sessions; unreadable counts too."""
    if not db.exists():
        return False
    if any(db.with_name(db.name + s).exists() for s in ("-wal", "-shm")):
        return True
    try:
        con = _sqlite_ro(db)
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
            return any(
                con.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone() is not None
                for t in ("sessions", "session_metadata")
                if t in tables
            )
        finally:
            con.close()
    except sqlite3.Error:
        return True


def _message(
    index: int, line: int | None, offset: int, raw: bytes, term: bool, msg: ChatMessage
) -> StoredMessage:
    return StoredMessage(
        index=index,
        role=msg.role,
        content=msg.content,
        offset=offset,
        length=len(raw) + term,
        line=None if line is None else line + 1,
        extra=dict(msg.extra),
    )


def _skipped(
    line: int | None, offset: int, raw: bytes, term: bool, problem: LineProblem, before: int | None
) -> SkippedLine:
    torn = not term and problem.reason != "blank"
    return SkippedLine(
        line=None if line is None else line + 1,
        offset=offset,
        length=len(raw) + term,
        reason="torn last line" if torn else problem.reason,
        preview=preview(raw),
        before_index=before,
        recovered=problem.recovered,
    )


def _number(
    lines: Iterable[tuple[int, bytes, bool, Parsed]], first_index: int, first_line: int | None
) -> tuple[list[StoredMessage], list[SkippedLine]]:
    """Parsed lines as messages numbered from ``first_index`` and the lines ZeroClaw skips."""
    messages: list[StoredMessage] = []
    skipped: list[SkippedLine] = []
    index, line = first_index, first_line
    for offset, raw, term, got in lines:
        if isinstance(got, ChatMessage):
            messages.append(_message(index, line, offset, raw, term, got))
            index += 1
        else:
            skipped.append(_skipped(line, offset, raw, term, got, index))
        if line is not None:
            line += 1
    return messages, skipped


def _parsed(lines: Iterable[tuple[int, bytes, bool]]) -> Iterator[tuple[int, bytes, bool, Parsed]]:
    for offset, raw, term in lines:
        yield offset, raw, term, parse_line(raw)


def _removed(messages: Sequence[StoredMessage]) -> tuple[RemovedMessage, ...]:
    return tuple(RemovedMessage(index=m.index, role=m.role, content=m.content) for m in messages)


@dataclass(frozen=True)
class _Mark:
    """Where a change feed on a session stands: the file, the cursor, the next index there."""

    dev: int
    ino: int
    cursor: int
    next_index: int


@dataclass(frozen=True)
class _CompactPlan:
    pieces: tuple[tuple[int, int], ...]  # (offset, length) of every line to drop
    dropped: tuple[SkippedLine, ...]
    warnings: tuple[str, ...]


class JsonlBackend:
    """The ``SessionBackend`` for ``sessions/*.jsonl``."""

    backend_name: BackendName = "jsonl"

    def __init__(
        self, sessions_dir: Path, *, read_only: bool = False, journal: Journal | None = None
    ) -> None:
        self.sessions_dir = Path(sessions_dir)
        self.read_only = read_only
        self.journal = journal if journal is not None else Journal()
        self._indexes: OrderedDict[str, LineIndex] = OrderedDict()
        self._marks: dict[str, _Mark] = {}
        self._lock = threading.Lock()
        self._names_lock = threading.Lock()

    # --- files and keys -----------------------------------------------------------------

    def _inside(self, path: Path) -> bool:
        root = os.path.realpath(self.sessions_dir)
        return os.path.realpath(path).startswith(root + os.sep)

    def _file(self, stem: str) -> Path | None:
        """The regular file behind a stem (a symlink's target when it stays inside), or None."""
        path = self.sessions_dir / (stem + SUFFIX)
        try:
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                if not self._inside(path):
                    return None
                path = Path(os.path.realpath(path))
                st = os.stat(path)
        except (OSError, ValueError):
            return None
        return path if stat.S_ISREG(st.st_mode) else None

    def _stem(self, key: str) -> str | None:
        """The listed key for ``key``: itself when a file has that stem, else its sanitized form."""
        if _plain_name(key) and self._file(key) is not None:
            return key
        stem = sanitize_key(key)
        return stem if stem and self._file(stem) is not None else None

    def _found(self, key: str) -> tuple[str, Path] | None:
        """The stem and file of ``key``, or None when there is no such session."""
        stem = self._stem(key)
        path = None if stem is None else self._file(stem)
        return None if stem is None or path is None else (stem, path)

    def _path(self, key: str) -> tuple[str, Path]:
        found = self._found(key)
        if found is None:
            raise SessionNotFound(key)
        return found

    def _scan(self) -> list[tuple[str, os.stat_result]]:
        """(stem, stat) of every session file, by stem. Stat only: nothing is read."""
        found: list[tuple[str, os.stat_result]] = []
        try:
            with os.scandir(self.sessions_dir) as it:
                entries = list(it)
        except FileNotFoundError:
            return found
        for entry in entries:
            stem = _stem_of(entry.name)
            st = None if stem is None else self._entry_stat(entry)
            if stem is not None and st is not None:
                found.append((stem, st))
        return sorted(found, key=lambda item: item[0])

    def _entry_stat(self, entry: os.DirEntry[str]) -> os.stat_result | None:
        try:
            if entry.is_symlink():
                if not self._inside(Path(entry.path)):
                    return None
                st = os.stat(entry.path)
            else:
                st = entry.stat(follow_symlinks=False)
        except OSError:
            return None
        return st if stat.S_ISREG(st.st_mode) else None

    def _db(self) -> Path:
        return self.sessions_dir / DB_NAME

    def _check_writable(self, action: str) -> None:
        if self.read_only:
            raise ReadOnlyError(action)
        if _has_import_receipts(self._db()):
            raise StorageError(
                f"{action} refused: ZeroClaw imported these JSONL sessions into {DB_NAME} "
                "(it has jsonl_import_receipts), and its JSONL store refuses every write since"
            )

    def _check_new_file(self, path: Path) -> None:
        if _sqlite_in_use(self._db()):
            raise StorageError(
                f"will not create {path.name}: {DB_NAME} beside it is in use, and ZeroClaw may "
                "refuse to open its store when a new .jsonl file appears there"
            )

    # --- the session index --------------------------------------------------------------

    def _slot(self, stem: str, st: os.stat_result) -> LineIndex:
        with self._lock:
            idx = self._indexes.get(stem)
            if idx is None or (idx.dev, idx.ino) != (st.st_dev, st.st_ino):
                idx = self._indexes[stem] = LineIndex(st.st_dev, st.st_ino)
            self._indexes.move_to_end(stem)
            while len(self._indexes) > MAX_INDEXES:
                self._indexes.popitem(last=False)
            return idx

    def _forget(self, stem: str) -> None:
        """Drop the index; the feed mark stays, so that changes_since sees the new inode."""
        with self._lock:
            self._indexes.pop(stem, None)

    @contextmanager
    def _indexed(
        self,
        stem: str,
        fd: int,
        st: os.stat_result,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[LineIndex | None]:
        """This file's index up to its last newline, held locked; None when cancelled."""
        idx = self._slot(stem, st)
        with idx.lock:
            if not idx.fits(fd, st.st_dev, st.st_ino, st.st_size):
                idx.reset()
            yield idx if idx.extend(fd, st.st_size, progress, cancel) else None

    @contextmanager
    def _index(self, stem: str, fd: int, st: os.stat_result) -> Iterator[LineIndex]:
        with self._indexed(stem, fd, st) as idx:
            if idx is None:  # only a cancel event stops a build, and none was given
                raise StorageError(f"indexing {stem!r} stopped")
            yield idx

    @contextmanager
    def _quick_index(self, stem: str, fd: int, st: os.stat_result) -> Iterator[LineIndex | None]:
        """The index, if at most QUICK_GAP bytes are left to scan and no build holds it; else None.

        Small sessions get an index at once; a big one only after build_index ran.
        """
        idx = self._slot(stem, st)
        if not idx.lock.acquire(blocking=False):
            yield None
            return
        try:
            if not idx.fits(fd, st.st_dev, st.st_ino, st.st_size):
                idx.reset()
            ready = st.st_size - idx.end <= QUICK_GAP and idx.extend(fd, st.st_size)
            yield idx if ready else None
        finally:
            idx.lock.release()

    @staticmethod
    def _last_piece(fd: int, idx: LineIndex, st: os.stat_result) -> tuple[bytes, Parsed] | None:
        """The unterminated last line, if any, and what ZeroClaw makes of it."""
        if st.st_size <= idx.end:
            return None
        raw = read_at(fd, idx.end, st.st_size - idx.end)
        return raw, parse_line(raw)

    def _total(self, fd: int, idx: LineIndex, st: os.stat_result) -> int:
        piece = self._last_piece(fd, idx, st)
        return idx.count + (piece is not None and isinstance(piece[1], ChatMessage))

    def _indexed_messages(
        self, idx: LineIndex, fd: int, start: int, stop: int
    ) -> list[StoredMessage]:
        """Messages ``start <= index < stop`` of the indexed lines, in one read."""
        if start >= stop:
            return []
        first, last = idx.message_line(start), idx.message_line(stop - 1)
        begin, end = idx.starts[first], idx.line_span(last)[1]
        bad = set(idx.bad_between(first, last + 1))
        found: list[StoredMessage] = []
        data = read_at(fd, begin, end - begin)
        for line, (offset, raw, term) in enumerate(lines_of(data, begin), first):
            got = None if line in bad else parse_line(raw)
            if isinstance(got, ChatMessage):
                found.append(_message(start + len(found), line, offset, raw, term, got))
        return found

    def _index_of(
        self, stem: str, fd: int, st: os.stat_result, offset: int, cancel: threading.Event | None
    ) -> int | None:
        """The index of the message on the line at ``offset``; None when cancelled.

        The session's index is extended only as far as that line, SEARCH_BLOCK at a time, so
        that a cancel is seen within a block, also while another thread holds the index.
        """
        idx = self._slot(stem, st)
        while not idx.lock.acquire(timeout=0.005):
            if cancel is not None and cancel.is_set():
                return None
        try:
            if not idx.fits(fd, st.st_dev, st.st_ino, st.st_size):
                idx.reset()
            step = SEARCH_BLOCK
            while idx.end <= offset and idx.end < st.st_size:
                if cancel is not None and cancel.is_set():
                    return None
                was, stop = idx.end, min(st.st_size, idx.end + step)
                if not idx.extend(fd, stop, None, cancel):
                    return None
                if idx.end == was:  # no newline in [was, stop): a long line, or the last one
                    if stop == st.st_size:
                        break
                    step *= 2
            return idx.messages_before(idx.line_at(offset))
        finally:
            idx.lock.release()

    # --- ZeroClaw's reader --------------------------------------------------------------

    @_storage_errors("read the session")
    def load(self, key: str) -> list[ChatMessage]:
        stem, path = self._path(key)
        with _open(path, stem) as (fd, st):
            parsed = (parse_line(raw) for _, raw, _ in iter_lines(fd, 0, st.st_size))
            return [m for m in parsed if isinstance(m, ChatMessage)]

    @_storage_errors("read the session")
    def load_with_timestamps(self, key: str) -> list[StoredMessage]:
        """Every message; JSONL has no timestamps, so ``created_at`` is None."""
        stem, path = self._path(key)
        with _open(path, stem) as (fd, st):
            return _number(_parsed(iter_lines(fd, 0, st.st_size)), 0, 0)[0]

    @_storage_errors("list the sessions")
    def list_sessions(self) -> list[str]:
        return [stem for stem, _ in self._scan()]

    @_storage_errors("list the sessions")
    def list_sessions_with_metadata(self) -> list[SessionMetadata]:
        """Stat only, as ZeroClaw does: both times are the mtime; messages are not counted."""
        names = self._names()
        return [self._meta(stem, st, names) for stem, st in self._scan()]

    @_storage_errors("list the sessions")
    def list_one(self, key: str) -> SessionMetadata | None:
        if (found := self._found(key)) is None:
            return None
        stem, path = found
        return self._meta(stem, path.stat(), self._names())

    @_storage_errors("list the sessions")
    def list_newest(self, n: int) -> tuple[list[SessionMetadata], int]:
        names, scanned = self._names(), self._scan()
        newest = heapq.nlargest(n, scanned, key=lambda item: item[1].st_mtime_ns)
        return [self._meta(stem, st, names) for stem, st in newest], len(scanned)

    def _meta(
        self,
        stem: str,
        st: os.stat_result,
        names: dict[str, str],
        count: int | None = None,
        unreadable: bool | None = None,
    ) -> SessionMetadata:
        when = now_rfc3339(st.st_mtime_ns)
        return SessionMetadata(
            key=stem,
            backend="jsonl",
            created_at=when,
            last_activity=when,
            message_count=count,
            name=names.get(stem),
            size=st.st_size,
            has_unreadable=unreadable,
        )

    @_storage_errors("read the session")
    def get_session_metadata(self, key: str) -> SessionMetadata | None:
        """Metadata with the message count (this reads the session once, then it is cached)."""
        if (found := self._found(key)) is None:
            return None
        stem, path = found
        with _open(path, stem) as (fd, st), self._index(stem, fd, st) as idx:
            piece = self._last_piece(fd, idx, st)
            valid = piece is not None and isinstance(piece[1], ChatMessage)
            torn = piece is not None and not valid
            count = idx.count + valid
            return self._meta(stem, st, self._names(), count, bool(idx.bad) or torn)

    def session_exists(self, key: str) -> bool:
        return self._stem(key) is not None

    def resolve_key(self, key: str) -> str:
        return self._path(key)[0]

    @_storage_errors("read the session")
    def count_messages(self, key: str) -> int:
        """ZeroClaw's count: the lines its reader accepts. The index is built once and cached."""
        stem, path = self._path(key)
        with _open(path, stem) as (fd, st), self._index(stem, fd, st) as idx:
            return self._total(fd, idx, st)

    @_storage_errors("index the session")
    def build_index(
        self,
        key: str,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> int | None:
        """Index the session (for a worker thread): its message count, or None when cancelled.

        ``progress(done_bytes, total_bytes)`` is called after every 8 MB. A cancelled build
        keeps what it did, and the next one goes on from there.
        """
        stem, path = self._path(key)
        with _open(path, stem) as (fd, st), self._indexed(stem, fd, st, progress, cancel) as idx:
            return None if idx is None else self._total(fd, idx, st)

    @_storage_errors("read the session")
    def read_range(self, key: str, start: int, stop: int) -> list[StoredMessage]:
        """Messages ``start <= index < stop``, read with pread from the (cached) index."""
        stem, path = self._path(key)
        with _open(path, stem) as (fd, st), self._index(stem, fd, st) as idx:
            start, stop = max(0, start), min(stop, self._total(fd, idx, st))
            found = self._indexed_messages(idx, fd, start, min(stop, idx.count))
            piece = self._last_piece(fd, idx, st)
            # the unterminated last line, when it is a message whose index is in range
            raw, got = piece if piece is not None else (b"", None)
            if isinstance(got, ChatMessage) and start <= idx.count < stop:
                found.append(_message(idx.count, idx.lines, idx.end, raw, False, got))
            return found

    @_storage_errors("read the session")
    def skipped_lines(self, key: str) -> list[SkippedLine]:
        """Every line ZeroClaw's reader skips, with its line number, offset and reason."""
        stem, path = self._path(key)
        with _open(path, stem) as (fd, st), self._index(stem, fd, st) as idx:
            found = [self._bad_line(idx, fd, n) for n in idx.bad]
            torn = self._torn(fd, idx.end, st.st_size, idx.lines, idx.count)
            return found if torn is None else [*found, torn]

    @staticmethod
    def _bad_line(idx: LineIndex, fd: int, line: int) -> SkippedLine:
        start, stop = idx.line_span(line)
        raw = read_at(fd, start, stop - start)[:-1]
        got = parse_line(raw)
        problem = got if isinstance(got, LineProblem) else LineProblem("changed while read")
        return _skipped(line, start, raw, True, problem, idx.messages_before(line))

    @staticmethod
    def _torn(
        fd: int, start: int, size: int, line: int | None, before: int | None
    ) -> SkippedLine | None:
        """The unterminated last line when ZeroClaw's reader skips it."""
        if size <= start:
            return None
        raw = read_at(fd, start, size - start)
        got = parse_line(raw)
        return (
            None if isinstance(got, ChatMessage) else _skipped(line, start, raw, False, got, before)
        )

    # --- the tail and the change feed ---------------------------------------------------

    @_storage_errors("read the session")
    def read_tail(self, key: str, n: int) -> Tail:
        """The last ``n`` messages of the complete lines, read backwards from the end.

        A session with at most QUICK_GAP bytes left to index gets exact numbers. A bigger one
        (until build_index ran) is read from the end only: ``first_index`` and ``line`` are
        None, the messages are numbered back from the cursor (-n .. -1), and changes_since goes
        on from it 0, 1, 2... An unterminated last line is no message here until its newline
        arrives (changes_since reports it then); when it does not parse, it is in ``skipped``
        as the torn last line.
        """
        stem, path = self._path(key)
        with _open(path, stem) as (fd, st):
            cursor = last_line_end(fd, st.st_size)
            with self._quick_index(stem, fd, st) as idx:
                if idx is not None:
                    tail = self._tail_indexed(idx, fd, st, max(0, n))
                    self._mark(stem, st, cursor, idx.count)
                    return tail
            tail = self._tail_scan(fd, st, max(0, n), cursor)
            self._mark(stem, st, cursor, 0)
            return tail

    def _tail_indexed(self, idx: LineIndex, fd: int, st: os.stat_result, n: int) -> Tail:
        start = max(0, idx.count - n)
        first = idx.message_line(start) if start < idx.count else idx.lines
        begin = idx.starts[first] if first < idx.lines else idx.end
        lines = lines_of(read_at(fd, begin, idx.end - begin), begin)
        messages, skipped = _number(_parsed(lines), start, first)
        torn = self._torn(fd, idx.end, st.st_size, idx.lines, idx.count)
        skipped += [torn] if torn is not None else []
        first_index = start if messages else None
        return Tail(
            messages=tuple(messages),
            skipped=tuple(skipped),
            first_index=first_index,
            cursor=idx.end,
        )

    def _tail_scan(self, fd: int, st: os.stat_result, n: int, cursor: int) -> Tail:
        picked: list[tuple[int, bytes, bool, Parsed]] = []
        found = 0
        for offset, raw in iter_lines_backward(fd, cursor) if n else ():
            got = parse_line(raw)
            picked.append((offset, raw, True, got))
            found += isinstance(got, ChatMessage)
            if found == n:
                break
        messages, skipped = _number(reversed(picked), -found, None)
        torn = self._torn(fd, cursor, st.st_size, None, None)
        skipped += [torn] if torn is not None else []
        return Tail(messages=tuple(messages), skipped=tuple(skipped), cursor=cursor)

    def _mark(self, stem: str, st: os.stat_result, cursor: int, next_index: int) -> None:
        with self._lock:
            self._marks[stem] = _Mark(st.st_dev, st.st_ino, cursor, next_index)

    @_storage_errors("read the session")
    def cursor(self, key: str) -> int:
        """The offset just after the last complete line."""
        stem, path = self._path(key)
        with _open(path, stem) as (fd, st):
            cursor = last_line_end(fd, st.st_size)
            with self._quick_index(stem, fd, st) as idx:
                self._mark(stem, st, cursor, 0 if idx is None else idx.count)
            return cursor

    @_storage_errors("read the session")
    def changes_since(self, key: str, cursor: int) -> Changes:
        """Complete lines after ``cursor``; ``reset`` when the file was replaced or shrank.

        Only the bytes after the cursor are read. A torn last line waits: the cursor stays in
        front of it until its newline arrives.
        """
        stem, path = self._path(key)
        with _open(path, stem) as (fd, st):
            mark = self._marks.get(stem)
            if self._was_replaced(fd, st, cursor, mark):
                new = last_line_end(fd, st.st_size)
                self._mark(stem, st, new, 0)
                return Changes(cursor=new, reset=True)
            data = read_at(fd, cursor, st.st_size - cursor)
            data = data[: data.rfind(b"\n") + 1]
            first_index, first_line = self._numbering(stem, fd, st, cursor, mark)
            messages, skipped = _number(_parsed(lines_of(data, cursor)), first_index, first_line)
            self._mark(stem, st, cursor + len(data), first_index + len(messages))
            return Changes(
                messages=tuple(messages), skipped=tuple(skipped), cursor=cursor + len(data)
            )

    @staticmethod
    def _was_replaced(fd: int, st: os.stat_result, cursor: int, mark: _Mark | None) -> bool:
        if mark is not None and (mark.dev, mark.ino) != (st.st_dev, st.st_ino):
            return True
        if cursor < 0 or st.st_size < cursor:
            return True
        return cursor > 0 and read_at(fd, cursor - 1, 1) != b"\n"

    def _numbering(
        self, stem: str, fd: int, st: os.stat_result, cursor: int, mark: _Mark | None
    ) -> tuple[int, int | None]:
        """(index, line) of the first line at ``cursor``: exact from the index, else carried on."""
        with self._quick_index(stem, fd, st) as idx:
            if idx is not None:
                line = idx.line_at(cursor)
                if line == idx.lines or idx.starts[line] == cursor:
                    return idx.messages_before(line), line
        if mark is not None and mark.cursor == cursor:
            return mark.next_index, None
        return 0, None

    # --- names and states ---------------------------------------------------------------

    def _names_path(self) -> Path:
        return self.sessions_dir / NAMES_FILE

    def _names(self) -> dict[str, str]:
        """The names sidecar; a missing or damaged one reads as no names."""
        try:
            data = json.loads(self._names_path().read_bytes())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str) and v}

    def _write_names(self, names: dict[str, str]) -> None:
        data = json.dumps(names, ensure_ascii=False, indent=1, sort_keys=True).encode()
        write_atomic(self._names_path(), data + b"\n", mode=0o644)

    def _rename(self, stem: str, name: str | None) -> None:
        with self._names_lock:
            names = self._names()
            if name:
                names[stem] = name
            elif stem not in names:
                return
            else:
                del names[stem]
            self._write_names(names)

    @_storage_errors("name the session")
    def set_session_name(self, key: str, name: str) -> None:
        """Names live in one sidecar, ``sessions/.zc-sessions-names.json``; "" clears."""
        self._check_writable("renaming")
        self._rename(self._path(key)[0], name)

    def get_session_name(self, key: str) -> str | None:
        return self._names().get(self._stem(key) or sanitize_key(key))

    def set_session_state(self, key: str, state: SessionState, turn_id: str | None = None) -> None:
        """JSONL sessions have no state in ZeroClaw: nothing to store."""

    def get_session_state(self, key: str) -> SessionState | None:
        return None

    def list_running_sessions(self) -> list[SessionMetadata]:
        return []

    def list_stuck_sessions(self, threshold_secs: float) -> list[SessionMetadata]:
        return []

    # --- appending ----------------------------------------------------------------------

    @_storage_errors("append to the session")
    def append(self, key: str, message: ChatMessage) -> None:
        """As ZeroClaw appends: O_APPEND, the JSON, then the newline, no lock, no fsync."""
        self._check_writable("appending")
        stem = self._stem(key)
        path = None if stem is None else self._file(stem)
        if path is None:
            stem = sanitize_key(key)
            if not stem:
                raise StorageError("an empty session key names no file")
            path = self.sessions_dir / (stem + SUFFIX)
            self._check_new_file(path)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            _write_all(fd, encode_message(message))
            _write_all(fd, b"\n")
        finally:
            os.close(fd)

    # --- cutting the end off --------------------------------------------------------------

    @_storage_errors("roll back the session")
    def rollback(
        self, key: str, to_index: int, *, dry_run: bool = False, expected: int | None = None
    ) -> EditReport:
        """Cut the file where message ``to_index`` starts (ftruncate; nothing is rewritten)."""
        if not dry_run:
            self._check_writable("rollback")
        if to_index < 0:
            raise StorageError(f"index {to_index} is no message index")
        stem, path = self._path(key)

        def cut_at(idx: LineIndex, fd: int, st: os.stat_result) -> int:
            total = self._total(fd, idx, st)
            if to_index >= total:
                raise StorageError(
                    f"index {to_index} is not in session {stem!r} (it has {total} messages)"
                )
            return idx.starts[idx.message_line(to_index)] if to_index < idx.count else idx.end

        return self._cut(stem, path, "rollback", cut_at, dry_run=dry_run, expected=expected)

    @_storage_errors("roll back the session")
    def rollback_last(
        self,
        key: str,
        mode: Literal["turn", "messages"],
        n: int = 1,
        *,
        dry_run: bool = False,
        expected: int | None = None,
    ) -> EditReport:
        """Cut off the last turn (the last user message and all after it) or the last ``n``
        messages, found by reading the file backwards from its end, so that rolling back a big
        session does not count the messages in front of the cut.

        Every step of ``rollback`` is kept: journal first, the re-check under a lease, ftruncate.
        The removed messages carry their indexes where the session is indexed already or small
        enough to index at once (QUICK_GAP); else they are numbered back from the end (-k .. -1,
        as in ``read_tail``) and the report says so. With ``expected``, a retry after the file
        changed refuses when the cut moved: it would remove other messages than those planned.
        """
        if not dry_run:
            self._check_writable("rollback")
        if mode == "messages" and n < 1:
            raise StorageError(f"cannot roll back {n} messages")
        stem, path = self._path(key)
        planned: list[int] = []

        def cut_at(idx: LineIndex, fd: int, st: os.stat_result) -> int:
            cut = _last_start(fd, st.st_size, stem, mode, n)
            if expected is not None and planned and cut != planned[0]:
                what = "turn" if mode == "turn" else f"{n} messages"
                raise SessionChangedError(
                    f"session {stem!r} changed: its last {what} no longer start where they "
                    "did; nothing was removed"
                )
            planned.append(cut)
            return cut

        return self._cut(
            stem, path, "rollback", cut_at, dry_run=dry_run, expected=expected, whole_index=False
        )

    @_storage_errors("remove the last message")
    def remove_last(self, key: str) -> EditReport:
        self._check_writable("remove last")
        stem, path = self._path(key)
        return self._cut(stem, path, "remove_last", self._last_message_start)

    @_storage_errors("update the last message")
    def update_last(self, key: str, message: ChatMessage) -> EditReport:
        """Cut the last message off (journalled) and append ``message`` in its place."""
        self._check_writable("update last")
        stem, path = self._path(key)
        line = encode_message(message) + b"\n"
        return self._cut(stem, path, "update_last", self._last_message_start, then=line)

    @_storage_errors("clear the session")
    def clear_messages(self, key: str) -> EditReport:
        self._check_writable("clear")
        stem, path = self._path(key)
        return self._cut(stem, path, "clear_messages", lambda idx, fd, st: 0)

    def _last_message_start(self, idx: LineIndex, fd: int, st: os.stat_result) -> int | None:
        total = self._total(fd, idx, st)
        if total == 0:
            return None
        return idx.starts[idx.message_line(total - 1)] if total - 1 < idx.count else idx.end

    def _cut(
        self,
        stem: str,
        path: Path,
        action: str,
        cut_at: Callable[[LineIndex, int, os.stat_result], int | None],
        *,
        dry_run: bool = False,
        expected: int | None = None,
        then: bytes | None = None,
        whole_index: bool = True,
    ) -> EditReport:
        """Journal the bytes from the cut on, re-check the file, ftruncate; retry on change.

        What the daemon appends meanwhile is removed too (and journalled), unless the caller's
        count (``expected``) or the meaning of "last" (``then``, remove_last) depends on it.
        Without ``whole_index`` the index is extended only where little is left to scan (see
        ``_edit_index``): ``cut_at`` finds the cut without it, and where it is not complete the
        removed messages are numbered back from the end.
        """
        flags = os.O_RDONLY if dry_run else os.O_RDWR | os.O_APPEND
        strict = expected is not None or action in ("remove_last", "update_last")
        for attempt in range(RETRIES + 1):
            with (
                _open(path, stem, flags) as (fd, st),
                self._edit_index(stem, fd, st, whole_index) as (idx, counted),
            ):
                cut = cut_at(idx, fd, st)
                if cut is None or (cut == st.st_size and then is None):
                    return self._report(action, stem, warnings=("nothing to remove",))
                blob = read_at(fd, cut, st.st_size - cut)
                numbered = idx if counted else None
                report = self._removal(action, stem, numbered, cut, blob, attempt, dry_run)
                if expected is not None and len(report.removed) != expected:
                    raise SessionChangedError(
                        f"session {stem!r} changed: {action} would now remove "
                        f"{len(report.removed)} messages, not {expected}; nothing was removed"
                    )
                if dry_run:
                    return report
                entry = self._journal_cut(action, stem, fd, st, cut, blob, report, then)
                with _appends_held_off(fd):
                    grown = _truncate(fd, path, st, cut, blob, self.journal, entry, not strict)
                    if grown is not None and then is not None:
                        _write_all(fd, then)
                if grown is None:
                    self.journal.discard(entry)
                    continue
                if grown:
                    more = blob + grown
                    report = self._removal(action, stem, numbered, cut, more, attempt, False)
                    self.journal.append_blob(entry, b"", sync=True)
                    # the entry lists what really went, the appended messages too
                    entry = replace(entry, removed=report.removed)
                idx.cut(idx.line_at(cut), fd)
                entry = self.journal.set_status(
                    entry, "done", grown=len(grown), sha256=_sha256(blob + grown)
                )
                return replace(report, journal_id=entry.id)
        raise SessionChangedError(
            f"session {stem!r} kept changing while {action} ran; nothing was removed"
        )

    @contextmanager
    def _edit_index(
        self, stem: str, fd: int, st: os.stat_result, whole: bool
    ) -> Iterator[tuple[LineIndex, bool]]:
        """The file's index, held locked, and whether it counts every complete line.

        ``whole``: built to the end. Else extended only when at most QUICK_GAP bytes are left to
        scan; an index left behind still fits the file, and ``LineIndex.cut`` keeps it right.
        """
        if whole:
            with self._index(stem, fd, st) as idx:
                yield idx, True
            return
        idx = self._slot(stem, st)
        with idx.lock:
            if not idx.fits(fd, st.st_dev, st.st_ino, st.st_size):
                idx.reset()
            yield idx, st.st_size - idx.end <= QUICK_GAP and idx.extend(fd, st.st_size)

    def _journal_cut(
        self,
        action: str,
        stem: str,
        fd: int,
        st: os.stat_result,
        cut: int,
        blob: bytes,
        report: EditReport,
        then: bytes | None,
    ) -> JournalEntry:
        before = read_at(fd, max(0, cut - _BEFORE_LEN), min(cut, _BEFORE_LEN))
        payload: dict[str, Any] = {
            **self._file_facts(st),
            "offset": cut,
            "sha256": _sha256(blob),
            "before_sha256": _sha256(before),
            "before_len": len(before),
        }
        if then is not None:
            payload.update(new_length=len(then), new_sha256=_sha256(then))
        return self.journal.begin(
            store=self.sessions_dir,
            backend="jsonl",
            key=stem,
            action=action,
            removed=report.removed,
            payload=payload,
            blob=blob,
        )

    @staticmethod
    def _file_facts(st: os.stat_result) -> dict[str, int]:
        return {
            "size": st.st_size,
            "inode": st.st_ino,
            "mtime_ns": st.st_mtime_ns,
            "mode": stat.S_IMODE(st.st_mode),
        }

    def _report(self, action: str, stem: str, **fields: Any) -> EditReport:
        return EditReport(action=action, key=stem, backend="jsonl", **fields)

    def _removal(
        self,
        action: str,
        stem: str,
        idx: LineIndex | None,
        cut: int,
        blob: bytes,
        retries: int,
        dry_run: bool,
    ) -> EditReport:
        """What cutting at ``cut`` takes out: messages and the unreadable lines among them.

        Without an index that counts the lines in front, the messages are numbered back from
        the end (-k .. -1) and line numbers are None.
        """
        parsed = list(_parsed(lines_of(blob, cut)))
        if idx is None:
            found = sum(isinstance(got, ChatMessage) for *_, got in parsed)
            messages, skipped = _number(parsed, -found, None)
            warnings: tuple[str, ...] = (FROM_END_NOTE,)
        else:
            line = idx.line_at(cut)
            first_index = idx.messages_before(line) if line < idx.lines else idx.count
            messages, skipped = _number(parsed, first_index, line)
            warnings = ()
        return self._report(
            action,
            stem,
            removed=_removed(messages),
            removed_lines=tuple(skipped),
            retries=retries,
            dry_run=dry_run,
            warnings=warnings,
        )

    # --- rewriting through a temp file --------------------------------------------------

    def _write_temp(
        self, path: Path, stem: str, fd: int, st: os.stat_result, pieces: Sequence[Piece], tag: str
    ) -> tuple[Path, int, str]:
        """A temp file beside ``path`` (no ``.jsonl`` in its name) with the pieces, fsynced,
        with the old file's mode and, where allowed, owner. Returns (path, size, sha256)."""
        tmp = _temp_name(path, stem, f"{tag}-{secrets.token_hex(4)}")
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        digest, size = hashlib.sha256(), 0
        try:
            for data in _piece_chunks(fd, pieces):
                _write_all(out, data)
                digest.update(data)
                size += len(data)
            with suppress(OSError):
                os.fchown(out, st.st_uid, st.st_gid)
            os.fchmod(out, stat.S_IMODE(st.st_mode))
            os.fsync(out)
        except BaseException:
            os.close(out)
            tmp.unlink(missing_ok=True)
            raise
        os.close(out)
        return tmp, size, digest.hexdigest()

    def _swap(self, path: Path, fd: int, st: os.stat_result, tmp: Path, end: bytes) -> int:
        """Rename ``tmp`` over ``path`` unless the file changed other than by appends since
        ``end`` (its last bytes) was read. Returns how many bytes were appended to the old file
        meanwhile: they are carried over to the new one."""
        with _appends_held_off(fd):
            if not _only_grown(fd, path, st, end):
                raise _Changed
            os.replace(tmp, path)
        fsync_dir(path.parent)
        return _carry_over(fd, st.st_size, path)

    def _rewrite(
        self,
        stem: str,
        path: Path,
        fd: int,
        st: os.stat_result,
        pieces: Sequence[Piece],
        entry: JournalEntry | None = None,
    ) -> int:
        """Replace the file by ``pieces`` (no journal: nothing of the old file is dropped).

        With ``entry`` (an undo), the temp file is recorded in the entry before the swap: a
        crash after the rename then leaves the file named by that inode, and the next undo
        sees the work is done instead of doing it twice."""
        end = _end_bytes(fd, st.st_size)
        tag = "restore" if entry is None else f"restore-{entry.id}"
        tmp, size, _ = self._write_temp(path, stem, fd, st, pieces, tag)
        try:
            if entry is not None:
                self._note_restore(entry, tmp, size)
            carried = self._swap(path, fd, st, tmp, end)
        except BaseException as err:
            if entry is not None and not isinstance(err, KeyboardInterrupt):
                self._note_restore(entry, None, 0)  # not swapped: the inode may be reused
            if isinstance(err, _Changed):
                raise SessionChangedError(
                    f"session {stem!r} changed during the undo; nothing was written"
                ) from None
            raise
        finally:
            tmp.unlink(missing_ok=True)
        self._forget(stem)
        return carried

    def _note_restore(self, entry: JournalEntry, tmp: Path | None, size: int) -> None:
        """Record (or, with None, forget) the temp file about to become the session."""
        inode = None if tmp is None else os.stat(tmp).st_ino
        self.journal.set_status(entry, entry.status, restore_inode=inode, restore_size=size)

    def _restored_already(self, entry: JournalEntry, path: Path) -> bool:
        """An undo of ``entry`` was interrupted after its temp file became the session.

        Its temp files (named after the entry) are gone afterwards, whatever the answer."""
        for tmp in path.parent.glob(f".{sanitize_key(entry.key)}.zc-restore-{entry.id}-*.tmp"):
            tmp.unlink(missing_ok=True)
        inode, size = entry.payload.get("restore_inode"), entry.payload.get("restore_size", 0)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return False
        return inode is not None and st.st_ino == inode and st.st_size >= int(size)

    # --- compact ------------------------------------------------------------------------

    @_storage_errors("compact the session")
    def compact(self, key: str, *, dry_run: bool = False) -> EditReport:
        """Drop the lines ZeroClaw cannot read; every other byte stays as it is.

        The kept lines go to a temp file that is renamed over the session. An unterminated
        last line younger than 5 seconds may be the daemon between its two writes: it stays.
        """
        if not dry_run:
            self._check_writable("compact")
        stem, path = self._path(key)
        for attempt in range(RETRIES + 1):
            with _open(path, stem) as (fd, st), self._index(stem, fd, st) as idx:
                plan = self._compact_plan(idx, fd, st)
                report = self._report(
                    "compact",
                    stem,
                    removed_lines=plan.dropped,
                    warnings=plan.warnings,
                    dry_run=dry_run,
                    retries=attempt,
                )
                if dry_run or not plan.pieces:
                    return report
                try:
                    entry = self._compact_swap(stem, path, fd, st, plan)
                except _Changed:
                    continue
            self._forget(stem)
            return replace(report, journal_id=entry.id)
        raise SessionChangedError(f"session {stem!r} kept changing; compact left it as it was")

    def _compact_plan(self, idx: LineIndex, fd: int, st: os.stat_result) -> _CompactPlan:
        dropped = [self._bad_line(idx, fd, n) for n in idx.bad]
        warnings: list[str] = []
        torn = self._torn(fd, idx.end, st.st_size, idx.lines, idx.count)
        if torn is not None:
            age = time.time() - st.st_mtime_ns / 1e9
            if age < RECENT_SECS:
                warnings.append(
                    f"the last line is incomplete and was written {age:.1f} s ago: ZeroClaw may "
                    "still be writing it, so it was left in place"
                )
            else:
                dropped.append(torn)
        pieces = tuple((s.offset, s.length) for s in dropped)
        return _CompactPlan(pieces, tuple(dropped), tuple(warnings))

    def _compact_swap(
        self, stem: str, path: Path, fd: int, st: os.stat_result, plan: _CompactPlan
    ) -> JournalEntry:
        keep = _complement(plan.pieces, st.st_size)
        end = _end_bytes(fd, st.st_size)
        tmp, kept_size, kept_sha = self._write_temp(path, stem, fd, st, keep, "compact")
        try:
            blob = b"".join(read_at(fd, off, n) for off, n in plan.pieces)
            entry = self.journal.begin(
                store=self.sessions_dir,
                backend="jsonl",
                key=stem,
                action="compact",
                payload={
                    **self._file_facts(st),
                    "pieces": [list(p) for p in plan.pieces],
                    "sha256": _sha256(blob),
                    "kept_size": kept_size,
                    "kept_sha256": kept_sha,
                    "tmp": tmp.name,
                },
                blob=blob,
            )
            try:
                carried = self._swap(path, fd, st, tmp, end)
            except _Changed:
                self.journal.discard(entry)
                raise
        finally:
            tmp.unlink(missing_ok=True)
        return self.journal.set_status(entry, "done", carried=carried)

    # --- deleting -----------------------------------------------------------------------

    @_storage_errors("delete the session")
    def delete_session(self, key: str) -> EditReport:
        """Journal the whole file (bytes and mode), then unlink it and drop its name."""
        self._check_writable("delete")
        stem, path = self._path(key)
        report = self._delete(stem, path, None, polls=3)
        if report is None:  # only a staleness limit can skip the delete
            raise SessionChangedError(f"session {stem!r} changed; it was not deleted")
        return report

    def _delete(
        self, stem: str, path: Path, stale_before_ns: int | None, polls: int
    ) -> EditReport | None:
        """Journal, unlink, then carry over what an open blocked by the lease wrote after it."""
        for attempt in range(RETRIES + 1):
            with _open(path, stem) as (fd, st), self._index(stem, fd, st) as idx:
                if stale_before_ns is not None and st.st_mtime_ns >= stale_before_ns:
                    return None
                blob = read_at(fd, 0, st.st_size)
                report = self._removal("delete_session", stem, idx, 0, blob, attempt, False)
                payload = {
                    **self._file_facts(st),
                    "sha256": _sha256(blob),
                    "name": self._names().get(stem),
                }
                entry = self.journal.begin(
                    store=self.sessions_dir,
                    backend="jsonl",
                    key=stem,
                    action="delete_session",
                    removed=report.removed,
                    payload=payload,
                    blob=blob,
                )
                with _appends_held_off(fd):
                    gone = _unchanged(fd, path, st)
                    try:
                        if gone:
                            os.unlink(path)
                    except OSError:
                        self.journal.discard(entry)  # still there: nothing to undo
                        raise
                if not gone:
                    self.journal.discard(entry)
                    continue
                fsync_dir(path.parent)
                carried = _carry_over(fd, st.st_size, path, polls)
            self._forget(stem)
            self._rename(stem, None)
            entry = self.journal.set_status(entry, "done", carried=carried)
            late = f"ZeroClaw wrote {carried} bytes during the delete; they are in a new file"
            warnings = (late,) if carried else ()
            return replace(report, journal_id=entry.id, warnings=warnings)
        raise SessionChangedError(f"session {stem!r} kept changing; it was not deleted")

    @_storage_errors("clean up stale sessions")
    def cleanup_stale(self, ttl_hours: float) -> list[str]:
        """Delete (journalled) every session whose mtime is older than ``ttl_hours``."""
        self._check_writable("cleanup")
        limit = time.time_ns() - int(ttl_hours * 3600e9)
        deleted: list[str] = []
        for stem, st in self._scan():
            path = self._file(stem)
            if st.st_mtime_ns >= limit or path is None:
                continue
            with suppress(SessionNotFound, SessionChangedError):  # written to: not stale
                # Stale files have no writer: one look for late bytes is enough.
                if self._delete(stem, path, limit, polls=1) is not None:
                    deleted.append(stem)
        return deleted

    # --- undo ---------------------------------------------------------------------------

    @_storage_errors("undo")
    def restore(self, journal_id: str) -> EditReport:
        """Undo a journalled edit of this store; a pending entry whose edit never happened is
        discarded."""
        self._check_writable("undo")
        entry = self.journal.get(journal_id)
        if entry.backend != "jsonl" or entry.store != str(self.sessions_dir.resolve()):
            raise StorageError(
                f"journal entry {journal_id} belongs to another store ({entry.store})"
            )
        if entry.status == "undone":
            raise StorageError(f"journal entry {journal_id} was undone already")
        path = self.sessions_dir / (entry.key + SUFFIX)
        undo = self._undoers().get(entry.action)
        if undo is None:
            raise StorageError(f"cannot undo a {entry.action!r} of a JSONL session")
        if self._restored_already(entry, path):
            self.journal.set_status(entry, "undone")
            self._forget(entry.key)
            return self._report(
                "restore",
                entry.key,
                journal_id=entry.id,
                warnings=("an interrupted undo had already put the lines back",),
            )
        if entry.status == "pending" and not self._edit_happened(entry, path):
            self.journal.discard(entry)
            return self._report(
                "restore",
                entry.key,
                journal_id=entry.id,
                warnings=(
                    f"the {entry.action} stopped before it changed anything: nothing to undo",
                ),
            )
        warnings = undo(entry, path)
        self.journal.set_status(entry, "undone")
        self._forget(entry.key)
        return self._report("restore", entry.key, journal_id=entry.id, warnings=tuple(warnings))

    def _undoers(self) -> dict[str, Callable[[JournalEntry, Path], list[str]]]:
        return {
            "rollback": self._undo_cut,
            "remove_last": self._undo_cut,
            "clear_messages": self._undo_cut,
            "update_last": self._undo_cut,
            "compact": self._undo_compact,
            "delete_session": self._undo_delete,
        }

    def _edit_happened(self, entry: JournalEntry, path: Path) -> bool:
        """For a pending entry: did the edit reach the file before the crash?"""
        p = entry.payload
        if entry.action == "compact":
            (path.parent / str(p.get("tmp", ""))).unlink(missing_ok=True)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            return True
        try:
            st = os.fstat(fd)
            if st.st_ino != p["inode"]:
                return True
            if entry.action in ("compact", "delete_session"):
                return False
            blob = self.journal.blob(entry)  # may hold more than payload["sha256"] covers
            return read_at(fd, p["offset"], len(blob)) != blob
        finally:
            os.close(fd)

    def _undo_cut(self, entry: JournalEntry, path: Path) -> list[str]:
        p, blob = entry.payload, self.journal.blob(entry)
        offset, added = int(p["offset"]), int(p.get("new_length", 0))
        with _open(path, entry.key) as (fd, st):
            before = read_at(fd, offset - p["before_len"], p["before_len"])
            if st.st_size < offset + added or _sha256(before) != p["before_sha256"]:
                raise StorageError(
                    f"session {entry.key!r} was changed in front of the cut since the "
                    f"{entry.action}; the removed lines cannot be put back safely"
                )
            if added and _sha256(read_at(fd, offset, added)) != p["new_sha256"]:
                raise StorageError(
                    f"the last message of {entry.key!r} was changed again since; undo refused"
                )
            # Always a new file and a rename, never an append in place: a crash in the middle
            # of writing the lines back would leave part of them, and a second undo would
            # then put them back twice.
            grown = st.st_size - offset - added
            pieces: list[Piece] = [(0, offset), blob, (offset + added, st.st_size)]
            self._rewrite(entry.key, path, fd, st, pieces, entry)
        if not grown:
            return []
        return [
            f"the session grew by {grown} bytes since the {entry.action}: the removed lines "
            "were put back at their old place, in front of what was written since"
        ]

    def _undo_compact(self, entry: JournalEntry, path: Path) -> list[str]:
        p, blob = entry.payload, self.journal.blob(entry)
        with _open(path, entry.key) as (fd, st):
            kept = int(p["kept_size"])
            if st.st_size < kept or _sha256(read_at(fd, 0, kept)) != p["kept_sha256"]:
                raise StorageError(
                    f"session {entry.key!r} was changed since the compact (not only appended "
                    "to); the dropped lines cannot be put back safely"
                )
            pieces = _reinsert(p["pieces"], blob, st.st_size)
            self._rewrite(entry.key, path, fd, st, pieces, entry)
        return []

    def _undo_delete(self, entry: JournalEntry, path: Path) -> list[str]:
        p, blob = entry.payload, self.journal.blob(entry)
        if path.exists():
            with _open(path, entry.key) as (fd, st):
                self._rewrite(entry.key, path, fd, st, [blob, (0, st.st_size)], entry)
            warning = [
                "ZeroClaw wrote to this session since the delete: the old lines went in front"
            ]
        else:
            self._check_new_file(path)
            self._recreate(entry, path, blob, int(p["mode"]))
            warning = []
        if p.get("name"):
            self._rename(entry.key, str(p["name"]))
        return warning

    def _recreate(self, entry: JournalEntry, path: Path, blob: bytes, mode: int) -> None:
        """Bring a deleted file back whole or not at all: a temp file, then a hard link."""
        tmp = _temp_name(path, entry.key, f"restore-{entry.id}-{secrets.token_hex(4)}")
        try:
            _create(tmp, blob, mode)
            self._note_restore(entry, tmp, len(blob))
            try:
                os.link(tmp, path)
            except FileExistsError:
                self._note_restore(entry, None, 0)
                raise SessionChangedError(
                    f"session {entry.key!r} was created again during the undo; try again"
                ) from None
        finally:
            tmp.unlink(missing_ok=True)
        fsync_dir(path.parent)

    # --- search -------------------------------------------------------------------------

    @_storage_errors("search")
    def search(self, query: str, limit: int = 50) -> list[SessionMetadata]:
        """ZeroClaw's search: sessions where any whitespace-separated word occurs (as an
        FTS5 phrase) in a message or in the key. A ``"`` in the query finds nothing, as there."""
        if zeroclaw_fts5(query) is None or limit <= 0:
            return []
        phrases = [
            q for w in _RUST_WORDS.findall(query) if not (q := parse_query(f'"{w}"')).is_empty
        ]
        names = self._names()
        found: list[SessionMetadata] = []
        for stem, st in self._scan():
            if any(q.match(stem) for q in phrases) or self._file_matches(stem, phrases):
                found.append(self._meta(stem, st, names))
                if len(found) >= limit:
                    break
        return found

    def _file_matches(self, stem: str, phrases: list[Query]) -> bool:
        path = self._file(stem)
        if path is None:
            return False
        try:
            with _open(path, stem) as (fd, st):
                return next(self._hits(fd, st, phrases, None), None) is not None
        except (OSError, StorageError):
            return False

    def search_messages(
        self,
        query: str,
        *,
        key: str | None = None,
        limit: int = 200,
        cancel: threading.Event | None = None,
    ) -> Iterator[SearchHit]:
        """Messages matching ``query`` (storage.query), newest first: sessions by mtime, each
        read backwards from its end. Stops when ``cancel`` is set."""
        q = parse_query(query)
        if q.is_empty or limit <= 0:
            return
        try:
            targets = [(self._path(key)[0], False)] if key is not None else self._by_mtime(cancel)
            left = limit
            for stem, plain in targets:
                if cancel is not None and cancel.is_set():
                    return
                for hit in self._search_session(stem, q, cancel, key is None, plain):
                    if cancel is not None and cancel.is_set():
                        return
                    yield hit
                    left -= 1
                    if left <= 0:
                        return
        except OSError as err:
            raise _os_error("search", err) from err

    def _by_mtime(self, cancel: threading.Event | None) -> list[tuple[str, bool]]:
        """The sessions ``_scan`` lists, newest first (then by stem), each with whether it was
        a regular file rather than a symlink; none when ``cancel`` is set meanwhile."""
        try:
            with os.scandir(self.sessions_dir) as it:
                entries = list(it)
        except FileNotFoundError:
            return []
        found: list[tuple[int, str, bool]] = []
        for n, entry in enumerate(entries):
            if n % 512 == 511 and cancel is not None and cancel.is_set():
                return []
            stem = _stem_of(entry.name)
            st = None if stem is None else self._entry_stat(entry)
            if stem is not None and st is not None:
                found.append((-st.st_mtime_ns, stem, not entry.is_symlink()))
        found.sort()
        return [(stem, plain) for _, stem, plain in found]

    def _search_session(
        self, stem: str, q: Query, cancel: threading.Event | None, quiet: bool, plain: bool
    ) -> Iterator[SearchHit]:
        """Hits in one session; ``quiet`` skips one that cannot be read (in a search of all).

        ``plain``: listed as a regular file, so opened at once with O_NOFOLLOW, without the
        lstat of ``_file``; should it be a symlink by now, it is looked up as ``_file`` does.
        """
        path = self.sessions_dir / (stem + SUFFIX) if plain else self._file(stem)
        if path is None:
            return
        try:
            with _open(path, stem, os.O_RDONLY | (os.O_NOFOLLOW if plain else 0)) as (fd, st):
                for offset, msg, spans in self._hits(fd, st, [q], cancel):
                    index = self._index_of(stem, fd, st, offset, cancel)
                    if index is None:
                        return
                    snippet, moved = make_snippet(msg.content, spans)
                    yield SearchHit(
                        key=stem,
                        index=index,
                        role=msg.role,
                        snippet=snippet,
                        spans=moved,
                        backend="jsonl",
                    )
        except (SessionNotFound, FileNotFoundError):
            return
        except OSError as err:
            if plain and err.errno == errno.ELOOP:
                yield from self._search_session(stem, q, cancel, quiet, False)
            elif not quiet:
                raise
        except StorageError:
            if not quiet:
                raise

    def _hits(
        self, fd: int, st: os.stat_result, queries: list[Query], cancel: threading.Event | None
    ) -> Iterator[tuple[int, ChatMessage, tuple[tuple[int, int], ...]]]:
        """(offset, message, spans) of the messages any query matches, last first."""
        filters = [q.prefilter for q in queries]
        blocks: Iterable[tuple[int, bytes]]
        if st.st_size <= SEARCH_BLOCK:  # one read, the unterminated last line too
            data = read_at(fd, 0, st.st_size)
            end = data.rfind(b"\n") + 1
            piece = [(end, data[end:])] if len(data) > end else []
            blocks = [(0, data[:end])] if end else []
        else:
            end = last_line_end(fd, st.st_size)
            piece = [(end, read_at(fd, end, st.st_size - end))] if st.st_size > end else []
            blocks = iter_blocks_backward(fd, end, SEARCH_BLOCK)
        for base, block in itertools.chain(piece, blocks):
            if cancel is not None and cancel.is_set():
                return
            starts = sorted(set().union(*(_candidates(block, f) for f in filters)))
            for n, start in enumerate(reversed(starts)):
                if n % 256 == 255 and cancel is not None and cancel.is_set():
                    return  # a block of non-ASCII lines parses every line: stay cancellable
                stop = block.find(b"\n", start)
                msg = parse_line(block[start : len(block) if stop < 0 else stop])
                if not isinstance(msg, ChatMessage):
                    continue
                for q in queries:
                    spans = q.match(msg.content)
                    if spans is not None:
                        yield base + start, msg, spans
                        break

    def close(self) -> None:
        with self._lock:
            self._indexes.clear()
            self._marks.clear()


def _candidates(block: bytes, pre: Prefilter) -> set[int]:
    """Starts of the lines of ``block`` that ``pre.might_match`` lets through.

    The same rule, applied with a few C-level passes over the whole block instead of a call
    per line: lines with ``\\u`` escapes always pass; the others need every word (where a token
    may start) once lowered and folded, which a block that is all ASCII needs only ``lower`` for.
    """
    if pre.empty:
        return set()
    found = _lines_with(block, lambda pos: block.find(b"\\u", pos))
    low = block.lower()
    folded = low if block.isascii() else pre.fold_block(low)
    if folded is None:
        return found
    text, first, search, rest = folded, pre.words[0], pre.finders[0].search, pre.finders[1:]

    def first_at(pos: int) -> int:  # a quick find first, then the token test from there
        at = text.find(first, pos)
        m = None if at < 0 else search(text, at)
        return -1 if m is None else m.start()

    hits: set[int] = set()
    for start in _lines_with(text, first_at):
        stop = text.find(b"\n", start)
        if all(f.search(text, start, len(text) if stop < 0 else stop) for f in rest):
            hits.add(start)
    if hits and text is not low and text != low:
        hits = _same_lines(text, block, hits)
    return found | hits


def _lines_with(block: bytes, find: Callable[[int], int]) -> set[int]:
    """Starts of the lines where ``find(pos)`` (an index or -1) finds something."""
    found: set[int] = set()
    pos = 0
    while (at := find(pos)) >= 0:
        found.add(block.rfind(b"\n", 0, at) + 1)
        pos = block.find(b"\n", at) + 1 or len(block)
    return found


def _same_lines(folded: bytes, block: bytes, starts: set[int]) -> set[int]:
    """Where the lines that start at ``starts`` in ``folded`` start in ``block``: both hold the
    same lines in the same order, folding changed their lengths."""
    number = {offset: n for n, (offset, _, _) in enumerate(lines_of(folded))}
    at = [offset for offset, _, _ in lines_of(block)]
    return {at[number[start]] for start in starts}


def _piece_chunks(fd: int, pieces: Sequence[Piece]) -> Iterator[bytes]:
    for piece in pieces:
        if isinstance(piece, bytes):
            yield piece
            continue
        pos, stop = piece
        while pos < stop:
            data = read_at(fd, pos, min(CHUNK, stop - pos))
            if not data:
                raise _Changed
            yield data
            pos += len(data)


def _complement(pieces: Sequence[tuple[int, int]], size: int) -> list[Piece]:
    """The byte ranges of [0, size) outside the (offset, length) pieces, which are sorted."""
    keep: list[Piece] = []
    pos = 0
    for offset, length in pieces:
        if offset > pos:
            keep.append((pos, offset))
        pos = offset + length
    if pos < size:
        keep.append((pos, size))
    return keep


def _reinsert(pieces: Sequence[Sequence[int]], blob: bytes, size: int) -> list[Piece]:
    """The compacted file with the dropped pieces put back at their old offsets."""
    out: list[Piece] = []
    pos = used = 0  # pos: in the compacted file; used: bytes of blob put back so far
    for offset, length in pieces:
        at = offset - used
        if at > pos:
            out.append((pos, at))
        out.append(blob[used : used + length])
        pos, used = at, used + length
    if pos < size:
        out.append((pos, size))
    return out


def _truncate(
    fd: int,
    path: Path,
    st: os.stat_result,
    cut: int,
    blob: bytes,
    journal: Journal,
    entry: JournalEntry,
    allow_growth: bool,
) -> bytes | None:
    """ftruncate at ``cut`` right after the final check of the file.

    Returns the bytes appended since the read, which went too (journalled first, unsynced: a
    journal fsync takes milliseconds, and a busy daemon appends within them), or None when the
    file changed otherwise, or grew where that is not allowed.
    """
    size, grown = st.st_size, b""
    for _ in range(100):
        now = os.stat(path)
        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
            return None
        cur = os.fstat(fd)
        if cur.st_size == size and (grown or cur.st_mtime_ns == st.st_mtime_ns):
            os.ftruncate(fd, cut)
            return grown
        if not allow_growth or cur.st_size < size:
            return None
        if not grown and read_at(fd, cut, len(blob)) != blob:
            return None  # rewritten in place, not appended to
        more = read_at(fd, size, cur.st_size - size)
        journal.append_blob(entry, more, sync=False)
        grown, size = grown + more, size + len(more)
    return None


def _last_start(fd: int, size: int, stem: str, mode: Literal["turn", "messages"], n: int) -> int:
    """Where the last turn (its user message) or the last ``n`` messages start, read backwards
    from ``size``. The unterminated last line counts as ZeroClaw's reader sees it, and every
    line goes through parse_line: a line it skips is no message here either."""
    end = last_line_end(fd, size)
    lines: Iterable[tuple[int, bytes]] = iter_lines_backward(fd, end)
    if size > end:
        lines = itertools.chain([(end, read_at(fd, end, size - end))], lines)
    found, first = 0, None
    for offset, raw in lines:
        got = parse_line(raw)
        if not isinstance(got, ChatMessage):
            continue
        found, first = found + 1, offset
        if got.role == "user" if mode == "turn" else found == n:
            return offset
    if mode == "turn":
        raise StorageError(f"session {stem!r} has no user message to roll back to")
    if first is None:
        raise StorageError(f"session {stem!r} has no message to roll back")
    return first  # fewer than n messages: all of them go


def _end_bytes(fd: int, size: int) -> bytes:
    """The last bytes before ``size``: if they change, the file was rewritten, not appended to."""
    n = min(size, 64)
    return read_at(fd, size - n, n)


def _only_grown(fd: int, path: Path, st: os.stat_result, end: bytes) -> bool:
    """The path still names the file read, which at most had bytes appended since."""
    now = os.stat(path)
    if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
        return False
    cur = os.fstat(fd)
    if cur.st_size == st.st_size:
        return cur.st_mtime_ns == st.st_mtime_ns
    return cur.st_size > st.st_size and _end_bytes(fd, st.st_size) == end


def _carry_over(fd: int, covered: int, path: Path, polls: int = 3) -> int:
    """Append to ``path`` what was written to the old file (still open as ``fd``) past
    ``covered``; returns how many bytes moved.

    A daemon that opened the file before the rename writes into the old inode, and so does
    one whose open() waited for our lease: it goes on with the inode it looked up, the old
    one. Where leases work, this goes on until nobody else has the old file open (a write
    lease on it is granted only then), so every byte written to it moves, however late the
    writer was scheduled (up to CARRY_WAIT). Elsewhere it stops once nothing new came for
    ``polls`` looks 10 ms apart. Whole lines move; a partial one waits for its end.
    """
    carried = quiet = partial = 0
    deadline = time.monotonic() + CARRY_WAIT
    while True:
        alone = _alone(fd)  # checked before reading: all that was written is visible then
        size = os.fstat(fd).st_size
        data = read_at(fd, covered, size - covered) if size > covered else b""
        # a partial line moves only once its writer is gone (or, without leases, after 1 s)
        final = alone is True or (alone is None and partial >= 100) or time.monotonic() > deadline
        whole = data if final else data[: data.rfind(b"\n") + 1]
        if whole:
            _append_line_safe(path, whole)
            covered, carried, partial, quiet = covered + len(whole), carried + len(whole), 0, 0
        elif data:
            partial, quiet = partial + 1, 0
        else:
            quiet += 1
        if alone is True:
            return carried  # nobody has the old file open, and nobody can open it again
        if quiet >= polls and (alone is None or time.monotonic() > deadline):
            return carried
        time.sleep(0.01)


def _alone(fd: int) -> bool | None:
    """Whether no one else has this file open (a write lease is granted only then); None
    where leases cannot tell."""
    if not hasattr(fcntl, "F_SETLEASE"):
        return None
    try:
        fcntl.fcntl(fd, fcntl.F_SETSIG, signal.SIGURG)
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_WRLCK)
    except OSError as err:
        return False if err.errno == errno.EAGAIN else None
    with suppress(OSError):
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
    return True


def _append_line_safe(path: Path, data: bytes) -> None:
    """Append ``data`` in one write, never onto a line the daemon is still writing.

    Under a write lease nobody else has the file open, so its last line is complete (or
    abandoned) and no append can land in between. Without one (no leases here, or the file
    kept open), wait for the last byte to be a newline, up to CARRY_WAIT: a busy machine can
    keep the daemon between its two writes for far longer than a few milliseconds, and lines
    appended there would be glued onto its line, where ZeroClaw no longer sees either."""
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    deadline = time.monotonic() + CARRY_WAIT
    try:
        while True:
            with _appends_held_off(fd) as held:
                size = os.fstat(fd).st_size
                clean = size == 0 or os.pread(fd, 1, size - 1) == b"\n"
                if clean or held or time.monotonic() > deadline:
                    _write_all(fd, data)
                    return
            time.sleep(0.002)
    finally:
        os.close(fd)


def _temp_name(path: Path, stem: str, tag: str) -> Path:
    """A hidden temp file beside ``path``, with no ``.jsonl`` in its name (ZeroClaw ignores it)."""
    return path.with_name(f".{sanitize_key(stem)}.zc-{tag}.tmp")


def _create(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(path.parent)
