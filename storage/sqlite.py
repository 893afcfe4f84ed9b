"""ZeroClaw's SQLite store, ``sessions/sessions.db``: read as ZeroClaw reads it, edited safely.

ZeroClaw's daemon may write at any moment, with autocommit statements and a 5 s busy timeout.
So every edit here is one short ``BEGIN IMMEDIATE`` transaction: select the exact rows, journal
them, delete them by id, fix ``session_metadata`` as ZeroClaw would, commit. Reads never take
the write lock, and a read-only backend changes no byte of the store (not even -wal/-shm).
"""

from __future__ import annotations

import functools
import itertools
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ParamSpec, TypeVar
from urllib.parse import quote

from storage.errors import ReadOnlyError, SessionChangedError, SessionNotFound, StorageError
from storage.journal import Journal, JournalEntry
from storage.models import (
    SESSION_FIELDS,
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
from storage.query import (
    MARK_CLOSE,
    MARK_OPEN,
    Query,
    make_snippet,
    parse_query,
    strip_marks,
    to_fts5,
    tokenize,
    zeroclaw_fts5,
)
from storage.zcformat import now_rfc3339

BUSY_TIMEOUT_MS = 5000
FRONT_SKIP = 20_000  # read_range skips this many index entries faster than it counts them all
LOCKED = f"database is locked by another writer (waited {BUSY_TIMEOUT_MS // 1000} s)"

# ZeroClaw's trigger, verbatim: without it an UPDATE leaves the FTS index stale.
AU_TRIGGER = """CREATE TRIGGER IF NOT EXISTS sessions_au AFTER UPDATE ON sessions BEGIN
                INSERT INTO sessions_fts(sessions_fts, rowid, session_key, content)
                VALUES ('delete', old.id, old.session_key, old.content);
                INSERT INTO sessions_fts(rowid, session_key, content)
                VALUES (new.id, new.session_key, new.content);
             END"""

# ZeroClaw's current schema (what its SqliteSessionBackend::new creates), for a new store.
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS sessions (
                id          INTEGER PRIMARY KEY AUTOINCREMENT,
                session_key TEXT NOT NULL,
                role        TEXT NOT NULL,
                content     TEXT NOT NULL,
                created_at  TEXT NOT NULL
             );
CREATE INDEX IF NOT EXISTS idx_sessions_key ON sessions(session_key);
CREATE INDEX IF NOT EXISTS idx_sessions_key_id ON sessions(session_key, id);
CREATE TABLE IF NOT EXISTS session_metadata (
                session_key  TEXT PRIMARY KEY,
                created_at   TEXT NOT NULL,
                last_activity TEXT NOT NULL,
                message_count INTEGER NOT NULL DEFAULT 0,
                name         TEXT
             );
CREATE TABLE IF NOT EXISTS jsonl_import_receipts (
                source_name  TEXT PRIMARY KEY,
                session_key  TEXT NOT NULL,
                source_hash  TEXT NOT NULL,
                source_len   INTEGER NOT NULL,
                imported_at  TEXT NOT NULL
             );
CREATE VIRTUAL TABLE IF NOT EXISTS sessions_fts USING fts5(
                session_key, content, content=sessions, content_rowid=id
             );
CREATE TRIGGER IF NOT EXISTS sessions_ai AFTER INSERT ON sessions BEGIN
                INSERT INTO sessions_fts(rowid, session_key, content)
                VALUES (new.id, new.session_key, new.content);
             END;
CREATE TRIGGER IF NOT EXISTS sessions_ad AFTER DELETE ON sessions BEGIN
                INSERT INTO sessions_fts(sessions_fts, rowid, session_key, content)
                VALUES ('delete', old.id, old.session_key, old.content);
             END;
{AU_TRIGGER};
"""

# Columns ZeroClaw added later with ALTER TABLE, in its order.
METADATA_COLUMNS = {
    "name": "TEXT",
    "state": "TEXT NOT NULL DEFAULT 'idle'",
    "turn_id": "TEXT",
    "turn_started_at": "TEXT",
    "agent_alias": "TEXT",
    "channel_id": "TEXT",
    "room_id": "TEXT",
    "sender_id": "TEXT",
}
ZEROCLAW_TEXT_COLUMNS = frozenset({"created_at", "last_activity", *METADATA_COLUMNS})
METADATA_INDEXES = ("agent_alias", "channel_id", "room_id", "sender_id")
REMOVING_ACTIONS = ("rollback", "remove_last", "clear_messages", "delete_session")

P = ParamSpec("P")
R = TypeVar("R")
Row = tuple[Any, ...]


def storage_error(err: sqlite3.Error, db: Path) -> StorageError:
    """One line a person can act on, for any SQLite failure."""
    name = getattr(err, "sqlite_errorname", "") or ""
    text = str(err)
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text:
        return StorageError(f"{LOCKED}: {db}")
    if name == "SQLITE_NOTADB" or "not a database" in text:
        return StorageError(f"{db} is not a SQLite database")
    if name.startswith("SQLITE_CORRUPT") or "malformed" in text:
        return StorageError(
            f"{db} is damaged ({text}); if only the search index is, compact rebuilds it"
        )
    if name.startswith("SQLITE_CANTOPEN"):
        return StorageError(f"cannot open {db} ({text})")
    if name.startswith("SQLITE_READONLY"):
        return StorageError(f"cannot write {db} ({text}); is it read-only?")
    return StorageError(f"SQLite error on {db}: {text}")


def _guarded(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn any sqlite3 error of a public method into a one-line StorageError."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except sqlite3.Error as err:
            raise storage_error(err, Path(str(getattr(args[0], "db_path", "")))) from err

    return wrapper


def parse_time(value: object) -> datetime | None:
    """A ZeroClaw timestamp (RFC 3339, up to 9 fraction digits) as an aware datetime."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def rfc3339(moment: datetime) -> str:
    return now_rfc3339(int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000)


def fts_index_ok(conn: sqlite3.Connection) -> bool:
    """FTS5's integrity check against the content table; False when stale or corrupt."""
    try:
        conn.execute("INSERT INTO sessions_fts(sessions_fts, rank) VALUES('integrity-check', 1)")
    except sqlite3.DatabaseError as err:
        name = getattr(err, "sqlite_errorname", "") or ""
        if name.startswith("SQLITE_CORRUPT") or "malformed" in str(err):
            return False
        raise  # a lock or an I/O error says nothing about the index
    return True


@dataclass(frozen=True)
class Schema:
    """What this generation of the store has: ZeroClaw never recorded a schema version."""

    version: int
    meta_columns: tuple[str, ...]
    has_fts: bool
    has_au: bool
    has_receipts: bool

    @property
    def has_metadata(self) -> bool:
        return bool(self.meta_columns)


def read_schema(conn: sqlite3.Connection, version: int) -> Schema:
    names = {n for (n,) in conn.execute("SELECT name FROM sqlite_master")}
    if "sessions" not in names:
        raise StorageError("no sessions table: not a ZeroClaw session store")
    columns: tuple[str, ...] = ()
    if "session_metadata" in names:
        columns = tuple(r[1] for r in conn.execute("PRAGMA table_info(session_metadata)"))
    return Schema(
        version=version,
        meta_columns=columns,
        has_fts="sessions_fts" in names,
        has_au="sessions_au" in names,
        has_receipts="jsonl_import_receipts" in names,
    )


def _metadata(row: dict[str, Any]) -> SessionMetadata:
    """A metadata row of any generation; unknown future columns are kept as extras."""
    fields: dict[str, Any] = {}
    for col, value in row.items():
        if col == "session_key":
            continue
        if col == "message_count":
            fields[col] = value if isinstance(value, int) else None
        elif col in ZEROCLAW_TEXT_COLUMNS:
            fields[col] = None if value is None else str(value)
        else:  # a future column; never let it shadow one of our own fields
            fields[f"db_{col}" if col in SESSION_FIELDS else col] = value
    return SessionMetadata.with_extra(key=str(row["session_key"]), backend="sqlite", **fields)


def _text(value: Any) -> Any:
    """A TEXT column's value as str: a BLOB there (ZeroClaw never writes one) is read as UTF-8."""
    return value.decode() if isinstance(value, bytes) else value


def _stored(index: int, row: Row) -> StoredMessage:
    row_id, role, content, created_at = row
    return StoredMessage(
        index=index,
        role=_text(role),
        content=_text(content),
        created_at=_text(created_at),
        row_id=row_id,
    )


def _removed(first_index: int, rows: Sequence[Row]) -> tuple[RemovedMessage, ...]:
    return tuple(
        RemovedMessage(
            index=first_index + i, role=_text(r[1]), content=_text(r[2]), created_at=_text(r[3])
        )
        for i, r in enumerate(rows)
    )


class SqliteBackend:
    backend_name: BackendName = "sqlite"

    def __init__(
        self, db_path: Path, *, read_only: bool = False, journal: Journal | None = None
    ) -> None:
        self.db_path = db_path
        self.sessions_dir = db_path.parent
        self.read_only = read_only
        self.journal = journal or Journal()
        self._local = threading.local()
        self._all_conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._schema_cache: Schema | None = None
        self._listed: dict[Row, SessionMetadata] = {}  # the last listing, by its raw row
        self.schema()  # fail now, with one line, on a missing or foreign file

    # --- connections -------------------------------------------------------------------------

    def _wal_path(self) -> Path:
        return self.db_path.with_name(self.db_path.name + "-wal")

    def _wants_immutable(self) -> bool:
        """A read-only open of a closed WAL database would create -wal/-shm: read the file alone.

        A closed WAL database holds everything in the main file; when a writer shows up it
        creates -wal first, and ``_conn`` then switches to a normal read-only connection.
        """
        if self._wal_path().exists():
            return False
        try:
            with self.db_path.open("rb") as f:
                header = f.read(20)
        except OSError as err:
            raise StorageError(f"cannot read {self.db_path}: {err.strerror}") from err
        return len(header) == 20 and header[18] == 2

    def _writable(self) -> bool:
        return os.access(self.db_path, os.W_OK) and os.access(self.db_path.parent, os.W_OK)

    def _open(self) -> sqlite3.Connection:
        if not self.db_path.is_file():
            raise StorageError(f"no database at {self.db_path}")
        # A store we cannot write (a read-only file system, someone else's file) is still read;
        # an edit then fails with SQLite's own "readonly database" error.
        ro = self.read_only or not self._writable()
        immutable = ro and self._wants_immutable()
        mode = "ro" if ro else "rw"
        uri = f"file:{quote(str(self.db_path.resolve()))}?mode={mode}"
        uri += "&immutable=1" if immutable else ""
        try:
            conn = sqlite3.connect(
                uri,
                uri=True,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        except sqlite3.Error as err:
            raise storage_error(err, self.db_path) from err
        self._local.immutable = immutable
        with self._conns_lock:
            self._all_conns.append(conn)
        return conn

    def _drop_conn(self) -> None:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            with self._conns_lock:
                if conn in self._all_conns:
                    self._all_conns.remove(conn)
            conn.close()
        self._local.conn = None

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if (
            conn is not None
            and self._local.immutable
            and not conn.in_transaction
            and self._wal_path().exists()
        ):
            self._drop_conn()  # a writer arrived: stop trusting the main file alone
            conn = None
        if conn is None:
            conn = self._open()
            self._local.conn = conn
        return conn

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One read transaction, so multi-statement reads see one snapshot."""
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")

    @contextmanager
    def _write(self, action: str) -> Iterator[sqlite3.Connection]:
        """A short BEGIN IMMEDIATE transaction; the caller commits (see ``_commit``)."""
        if self.read_only:
            raise ReadOnlyError(action)
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as err:
            raise storage_error(err, self.db_path) from err
        self._local.entry = None
        try:
            yield conn
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            # SQLite refused (read-only, full, locked): rolled back, so the edit did not happen,
            # and its journal entry must not say it may have. A crash keeps it pending instead.
            entry: JournalEntry | None = self._local.entry
            if entry is not None:
                self.journal.discard(entry)
            raise
        finally:
            self._local.entry = None
            if conn.in_transaction:
                conn.execute("ROLLBACK")

    def _commit(self, conn: sqlite3.Connection, entry: JournalEntry | None) -> None:
        try:
            conn.execute("COMMIT")
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if entry is not None:
                self.journal.discard(entry)
            raise
        self._local.entry = None  # committed: from here on the entry stays, whatever happens
        if entry is not None:
            self.journal.set_status(entry, "done")

    def schema(self) -> Schema:
        """The store's schema, re-read whenever ``PRAGMA schema_version`` moves."""
        try:
            conn = self._conn()
            (version,) = conn.execute("PRAGMA schema_version").fetchone()
            cached = self._schema_cache
            if cached is None or cached.version != version:
                cached = self._schema_cache = read_schema(conn, version)
            return cached
        except sqlite3.Error as err:
            raise storage_error(err, self.db_path) from err

    def close(self) -> None:
        with self._conns_lock:
            conns, self._all_conns = self._all_conns, []
        for conn in conns:
            conn.close()
        self._local = threading.local()

    # --- ZeroClaw's reads --------------------------------------------------------------------

    def _messages(self, conn: sqlite3.Connection, key: str) -> list[Row]:
        return conn.execute(
            "SELECT id, role, content, created_at FROM sessions WHERE session_key = ? ORDER BY id",
            (key,),
        ).fetchall()

    @_guarded
    def load(self, key: str) -> list[ChatMessage]:
        with self._read() as conn:
            rows = self._messages(conn, key)
            return [ChatMessage(role=_text(r[1]), content=_text(r[2])) for r in rows]

    @_guarded
    def load_with_timestamps(self, key: str) -> list[StoredMessage]:
        with self._read() as conn:
            return [_stored(i, r) for i, r in enumerate(self._messages(conn, key))]

    def _metadata_rows(
        self, conn: sqlite3.Connection, where: str = "", args: Row = ()
    ) -> list[dict[str, Any]]:
        if not self.schema().has_metadata:
            return []
        cur = conn.execute(f"SELECT * FROM session_metadata {where}", args)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur]

    def _listed_metadata(self, conn: sqlite3.Connection) -> list[SessionMetadata]:
        """Every metadata row, newest first. A row unchanged since the last listing gives the
        same object back: a re-listing on each daemon write builds only what changed, and the
        browser tells changed rows from the rest by identity."""
        if not self.schema().has_metadata:
            return []
        cur = conn.execute("SELECT * FROM session_metadata ORDER BY last_activity DESC")
        names = [d[0] for d in cur.description]
        before, after = self._listed, dict[Row, SessionMetadata]()
        metas: list[SessionMetadata] = []
        for row in cur:
            meta = before.get(row)
            if meta is None:
                meta = _metadata(dict(zip(names, row, strict=True)))
            after[row] = meta
            metas.append(meta)
        self._listed = after
        return metas

    def list_one(self, key: str) -> SessionMetadata | None:
        return self.get_session_metadata(key)  # the row as it is: nothing is counted

    @_guarded
    def list_newest(self, n: int) -> tuple[list[SessionMetadata], int]:
        with self._read() as conn:
            if not self.schema().has_metadata:  # an early store: every session is an orphan
                listing = self._listing(conn)
                return listing, len(listing)
            cur = conn.execute(
                "SELECT * FROM session_metadata ORDER BY last_activity DESC LIMIT ?", (n,)
            )
            names = [d[0] for d in cur.description]
            metas = [_metadata(dict(zip(names, row, strict=True))) for row in cur]
            (listed,) = conn.execute("SELECT COUNT(*) FROM session_metadata").fetchone()
            (orphans,) = conn.execute(
                f"SELECT COUNT(*) FROM ({self._DISTINCT_KEYS}) AS d WHERE NOT EXISTS"
                " (SELECT 1 FROM session_metadata AS m WHERE m.session_key = d.key)"
            ).fetchone()
            return metas, int(listed) + int(orphans)

    # A skip scan over idx_sessions_key: one index probe per key, not one per message, all in
    # one statement so the GIL is released once rather than once per key.
    _DISTINCT_KEYS = (
        "WITH RECURSIVE k(key) AS (SELECT MIN(session_key) FROM sessions"
        " UNION ALL SELECT (SELECT MIN(session_key) FROM sessions WHERE session_key > k.key)"
        " FROM k WHERE k.key IS NOT NULL) SELECT key FROM k WHERE key IS NOT NULL"
    )

    def _distinct_keys(self, conn: sqlite3.Connection) -> Iterator[str]:
        for (key,) in conn.execute(self._DISTINCT_KEYS):
            yield key

    def _orphan_keys(self, conn: sqlite3.Connection, known: set[str]) -> list[str]:
        """Keys with messages but no metadata row (a crash between ZeroClaw's two statements)."""
        orphans = [k for k in self._distinct_keys(conn) if k not in known]
        last = {k: self._max_id(conn, k) for k in orphans}
        return sorted(orphans, key=lambda k: -last[k])

    def _listing(self, conn: sqlite3.Connection) -> list[SessionMetadata]:
        metas = self._listed_metadata(conn)
        orphans = self._orphan_keys(conn, {m.key for m in metas})
        return metas + [SessionMetadata(key=k, backend="sqlite") for k in orphans]

    @_guarded
    def list_sessions(self) -> list[str]:
        with self._read() as conn:
            return [m.key for m in self._listing(conn)]

    @_guarded
    def list_sessions_with_metadata(self) -> list[SessionMetadata]:
        with self._read() as conn:
            return self._listing(conn)

    def _meta(self, conn: sqlite3.Connection, key: str) -> dict[str, Any] | None:
        rows = self._metadata_rows(conn, "WHERE session_key = ?", (key,))
        return rows[0] if rows else None

    def _has_rows(self, conn: sqlite3.Connection, key: str) -> bool:
        return (
            conn.execute("SELECT 1 FROM sessions WHERE session_key = ? LIMIT 1", (key,)).fetchone()
            is not None
        )

    @_guarded
    def get_session_metadata(self, key: str) -> SessionMetadata | None:
        """The metadata row; for messages without one, a record with every field None."""
        with self._read() as conn:
            row = self._meta(conn, key)
            if row is not None:
                return _metadata(row)
            return SessionMetadata(key=key, backend="sqlite") if self._has_rows(conn, key) else None

    @_guarded
    def session_exists(self, key: str) -> bool:
        with self._read() as conn:
            return self._meta(conn, key) is not None or self._has_rows(conn, key)

    def resolve_key(self, key: str) -> str:
        if not self.session_exists(key):
            raise SessionNotFound(key)
        return key

    @_guarded
    def search(self, query: str, limit: int = 50) -> list[SessionMetadata]:
        """ZeroClaw's search: sessions with any word, in FTS order, without ranking."""
        match = zeroclaw_fts5(query)
        if match is None or not self.schema().has_fts:
            return []  # ZeroClaw gets an SQL error here and returns nothing
        with self._read() as conn:
            try:
                keys = [
                    k
                    for (k,) in conn.execute(
                        "SELECT DISTINCT f.session_key FROM sessions_fts f"
                        " WHERE sessions_fts MATCH ?1 LIMIT ?2",
                        (match, limit),
                    )
                ]
            except sqlite3.OperationalError:
                return []
            rows = (self._meta(conn, k) for k in keys)
            return [_metadata(r) for r in rows if r is not None]

    @_guarded
    def get_session_name(self, key: str) -> str | None:
        with self._read() as conn:
            row = self._meta(conn, key)
            name = row.get("name") if row else None
            return name if isinstance(name, str) else None

    @_guarded
    def get_session_state(self, key: str) -> SessionState | None:
        with self._read() as conn:
            row = self._meta(conn, key)
        if row is None:
            return None
        try:
            return SessionState(row.get("state") or "idle")  # no column: ZeroClaw's default
        except ValueError:
            return None

    def _running(self, conn: sqlite3.Connection) -> list[dict[str, Any]]:
        columns = self.schema().meta_columns
        if "state" not in columns:
            return []
        order = " ORDER BY turn_started_at DESC" if "turn_started_at" in columns else ""
        return self._metadata_rows(conn, "WHERE state = 'running'" + order)

    @_guarded
    def list_running_sessions(self) -> list[SessionMetadata]:
        with self._read() as conn:
            return [_metadata(r) for r in self._running(conn)]

    @_guarded
    def list_stuck_sessions(self, threshold_secs: float) -> list[SessionMetadata]:
        """Running sessions whose turn started more than ``threshold_secs`` ago, oldest first."""
        cutoff = datetime.now(UTC) - timedelta(seconds=threshold_secs)
        with self._read() as conn:
            rows = self._running(conn)
        timed = [(parse_time(r.get("turn_started_at")), r) for r in rows]
        stuck = [(t, r) for t, r in timed if t is not None and t < cutoff]
        return [_metadata(r) for _, r in sorted(stuck, key=lambda tr: tr[0])]

    @_guarded
    def import_receipt(self, source_name: str) -> tuple[str, str, int] | None:
        """(session_key, sha256 hex, length) of a committed JSONL import, if any."""
        if not self.schema().has_receipts:
            return None
        with self._read() as conn:
            row = conn.execute(
                "SELECT session_key, source_hash, source_len FROM jsonl_import_receipts"
                " WHERE source_name = ?",
                (source_name,),
            ).fetchone()
        return (str(row[0]), str(row[1]), int(row[2])) if row else None

    # --- what the browser adds ---------------------------------------------------------------

    def _count(self, conn: sqlite3.Connection, key: str, below: int | None = None) -> int:
        if below is None:
            sql, args = "SELECT COUNT(*) FROM sessions WHERE session_key = ?", (key,)
        else:
            sql = "SELECT COUNT(*) FROM sessions WHERE session_key = ? AND id < ?"
            args = (key, below)  # type: ignore[assignment]
        (n,) = conn.execute(sql, args).fetchone()
        return int(n)

    def _max_id(self, conn: sqlite3.Connection, key: str) -> int:
        (top,) = conn.execute(
            "SELECT MAX(id) FROM sessions WHERE session_key = ?", (key,)
        ).fetchone()
        return int(top or 0)

    @_guarded
    def count_messages(self, key: str) -> int:
        """The true number of rows (``message_count`` keeps ZeroClaw's stored value)."""
        with self._read() as conn:
            return self._count(conn, key)

    @_guarded
    def read_tail(self, key: str, n: int) -> Tail:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT id, role, content, created_at FROM sessions WHERE session_key = ?"
                " ORDER BY id DESC LIMIT ?",
                (key, max(n, 0)),
            ).fetchall()[::-1]
            first = self._count(conn, key, rows[0][0]) if rows else self._count(conn, key)
            cursor = rows[-1][0] if rows else 0
        messages = tuple(_stored(first + i, r) for i, r in enumerate(rows))
        return Tail(messages=messages, first_index=first, cursor=cursor)

    @_guarded
    def read_range(self, key: str, start: int, stop: int) -> list[StoredMessage]:
        start = max(start, 0)
        if stop <= start:
            return []
        with self._read() as conn:
            rows = self._range_rows(conn, key, start, stop)
        return [_stored(start + i, r) for i, r in enumerate(rows)]

    def _range_rows(self, conn: sqlite3.Connection, key: str, start: int, stop: int) -> list[Row]:
        """Rows ``start <= index < stop``, skipping from whichever end of the index is nearer.

        Near the front no count is needed; further in, counting the key's index once tells
        which end is nearer for the OFFSET skip.
        """
        base = "SELECT id, role, content, created_at FROM sessions WHERE session_key = ?"
        front = f"{base} ORDER BY id LIMIT ? OFFSET ?"
        if start < FRONT_SKIP:
            return conn.execute(front, (key, stop - start, start)).fetchall()
        total = self._count(conn, key)
        stop = min(stop, total)
        if stop <= start:
            return []
        if start <= total - stop:
            return conn.execute(front, (key, stop - start, start)).fetchall()
        rows = conn.execute(
            f"{base} ORDER BY id DESC LIMIT ? OFFSET ?", (key, stop - start, total - stop)
        ).fetchall()
        return rows[::-1]

    def skipped_lines(self, key: str) -> list[SkippedLine]:
        return []

    @_guarded
    def cursor(self, key: str) -> int:
        with self._read() as conn:
            return self._max_id(conn, key)

    @_guarded
    def changes_since(self, key: str, cursor: int) -> Changes:
        """Rows with an id above ``cursor``; ``reset`` when the newest row is gone."""
        with self._read() as conn:
            top = self._max_id(conn, key)
            if top < cursor:
                return Changes(cursor=top, reset=True)
            rows = conn.execute(
                "SELECT id, role, content, created_at FROM sessions"
                " WHERE session_key = ? AND id > ? ORDER BY id",
                (key, cursor),
            ).fetchall()
            first = self._count(conn, key) - len(rows) if rows else 0
        messages = tuple(_stored(first + i, r) for i, r in enumerate(rows))
        return Changes(messages=messages, cursor=top)

    # --- message search ------------------------------------------------------------------------

    def search_messages(
        self,
        query: str,
        *,
        key: str | None = None,
        limit: int = 200,
        cancel: threading.Event | None = None,
    ) -> Iterator[SearchHit]:
        """Newest first, in pages: the first hits arrive without ranking every match."""
        parsed = parse_query(query)
        if parsed.is_empty or limit <= 0:
            return iter(())
        return self._search(parsed, key, limit, cancel or threading.Event())

    def _search(
        self, query: Query, key: str | None, limit: int, cancel: threading.Event
    ) -> Iterator[SearchHit]:
        try:
            pages = self._fts_pages if self.schema().has_fts else self._scan_pages
            found = 0
            for page in pages(query, key, cancel):
                for hit in page:
                    if cancel.is_set() or found >= limit:
                        return
                    found += 1
                    yield hit
                if found >= limit:
                    return
        except sqlite3.Error as err:
            raise storage_error(err, self.db_path) from err

    def _fts_match(self, query: Query, key: str | None) -> str:
        match = to_fts5(query)
        words = [w for _, _, w in tokenize(key or "")]
        if words:  # let the index narrow to the session; the join checks the exact key
            match = '{session_key} : "' + " ".join(words).replace('"', '""') + '" AND ' + match
        return match

    def _fts_pages(
        self, query: Query, key: str | None, cancel: threading.Event
    ) -> Iterator[list[SearchHit]]:
        match = self._fts_match(query, key)
        sql = (
            "SELECT s.id, s.session_key, s.role, s.created_at,"
            " snippet(sessions_fts, 1, ?, ?, '…', 24)"
            " FROM sessions_fts CROSS JOIN sessions s ON s.id = sessions_fts.rowid"
            " WHERE sessions_fts MATCH ? AND sessions_fts.rowid < ?"
            + (" AND s.session_key = ?" if key is not None else "")
            + " ORDER BY sessions_fts.rowid DESC LIMIT ?"
        )
        below, size = 1 << 62, 25
        while not cancel.is_set():
            args: list[Any] = [MARK_OPEN, MARK_CLOSE, match, below]
            with self._read() as conn:
                rows = conn.execute(
                    sql, [*args, *([key] if key is not None else []), size]
                ).fetchall()
                hits = self._fts_hits(conn, query, rows)
            yield hits  # outside the transaction: a paused search must not hold a lock
            if len(rows) < size:
                return
            below, size = rows[-1][0], min(size * 4, 1000)

    def _fts_hits(self, conn: sqlite3.Connection, query: Query, rows: list[Row]) -> list[SearchHit]:
        index = self._indexes(conn, [(r[1], r[0]) for r in rows])
        hits = []
        for row_id, key, role, created_at, marked in rows:
            snippet, spans = strip_marks(marked)
            if not spans:  # a stale index entry (ZeroClaw's UPDATE without sessions_au)
                match = self._verify(conn, query, row_id)
                if match is None:
                    continue
                snippet, spans = match
            elif len(snippet) > 300:  # one huge token, e.g. base64 image data
                snippet, spans = make_snippet(snippet, spans, 100)
            hits.append(
                SearchHit(
                    key=key,
                    index=index[row_id],
                    role=role,
                    snippet=snippet,
                    spans=spans,
                    backend="sqlite",
                    created_at=created_at,
                    row_id=row_id,
                )
            )
        return hits

    def _verify(
        self, conn: sqlite3.Connection, query: Query, row_id: int
    ) -> tuple[str, tuple[tuple[int, int], ...]] | None:
        row = conn.execute("SELECT content FROM sessions WHERE id = ?", (row_id,)).fetchone()
        spans = query.match(row[0]) if row else None
        return make_snippet(row[0], spans) if row and spans else None

    def _indexes(self, conn: sqlite3.Connection, hits: Iterable[tuple[str, int]]) -> dict[int, int]:
        """Each hit's index in its session, counting each stretch of the key index once."""
        by_key: dict[str, list[int]] = {}
        for key, row_id in hits:
            by_key.setdefault(key, []).append(row_id)
        out: dict[int, int] = {}
        for key, ids in by_key.items():
            ids.sort()
            idx = self._count(conn, key, ids[0])
            out[ids[0]] = idx
            for prev, cur in itertools.pairwise(ids):
                (n,) = conn.execute(
                    "SELECT COUNT(*) FROM sessions WHERE session_key = ? AND id >= ? AND id < ?",
                    (key, prev, cur),
                ).fetchone()
                idx += n
                out[cur] = idx
        return out

    def _scan_pages(
        self, query: Query, key: str | None, cancel: threading.Event
    ) -> Iterator[list[SearchHit]]:
        """No FTS table (a damaged or foreign store): match every row in Python, newest first."""
        sql = (
            "SELECT id, session_key, role, created_at, content FROM sessions WHERE id < ?"
            + (" AND session_key = ?" if key is not None else "")
            + " ORDER BY id DESC LIMIT 500"
        )
        below = 1 << 62
        while not cancel.is_set():
            with self._read() as conn:
                rows = conn.execute(sql, [below, *([key] if key is not None else [])]).fetchall()
                matched = [(r, query.match(r[4])) for r in rows]
                matched = [(r, s) for r, s in matched if s is not None]
                index = self._indexes(conn, [(r[1], r[0]) for r, _ in matched])
            yield [self._scan_hit(r, spans, index[r[0]]) for r, spans in matched]
            if len(rows) < 500:
                return
            below = rows[-1][0]

    def _scan_hit(self, row: Row, spans: Any, index: int) -> SearchHit:
        row_id, key, role, created_at, content = row
        snippet, moved = make_snippet(content, spans)
        return SearchHit(
            key=key,
            index=index,
            role=role,
            snippet=snippet,
            spans=moved,
            backend="sqlite",
            created_at=created_at,
            row_id=row_id,
        )

    # --- edits -------------------------------------------------------------------------------

    def _journal(
        self,
        key: str,
        action: str,
        removed: tuple[RemovedMessage, ...] = (),
        **payload: Any,
    ) -> JournalEntry:
        """Journal an edit inside its write transaction (``_write`` drops it on a rollback)."""
        entry = self.journal.begin(
            store=self.sessions_dir,
            backend="sqlite",
            key=key,
            action=action,
            removed=removed,
            payload={"db": str(self.db_path.resolve()), **payload},
        )
        self._local.entry = entry
        return entry

    def _report(self, action: str, key: str, **fields: Any) -> EditReport:
        return EditReport(action=action, key=key, backend="sqlite", **fields)

    @_guarded
    def append(self, key: str, message: ChatMessage) -> None:
        """ZeroClaw's append: two autocommit statements, exactly as the daemon runs them."""
        if self.read_only:
            raise ReadOnlyError("append")
        conn = self._conn()
        now = now_rfc3339()
        conn.execute(
            "INSERT INTO sessions (session_key, role, content, created_at) VALUES (?1, ?2, ?3, ?4)",
            (key, message.role, message.content, now),
        )
        if self.schema().has_metadata:
            conn.execute(
                "INSERT INTO session_metadata"
                " (session_key, created_at, last_activity, message_count) VALUES (?1, ?2, ?3, 1)"
                " ON CONFLICT(session_key) DO UPDATE SET"
                " last_activity = excluded.last_activity, message_count = message_count + 1",
                (key, now, now),
            )

    def _tail_rows(self, conn: sqlite3.Connection, key: str, offset: int) -> list[Row]:
        return conn.execute(
            "SELECT id, role, content, created_at FROM sessions WHERE session_key = ?"
            " ORDER BY id LIMIT -1 OFFSET ?",
            (key, offset),
        ).fetchall()

    def _check_expected(self, n: int, expected: int | None) -> None:
        if expected is not None and n != expected:
            raise SessionChangedError(
                f"the session changed: {n} messages would be removed, not {expected};"
                " nothing was changed"
            )

    def _delete_ids(self, conn: sqlite3.Connection, rows: Sequence[Row]) -> None:
        conn.executemany("DELETE FROM sessions WHERE id = ?", [(r[0],) for r in rows])

    def _payload_rows(self, key: str, rows: Sequence[Row]) -> list[list[Any]]:
        return [[r[0], key, r[1], r[2], r[3]] for r in rows]

    @_guarded
    def rollback(
        self, key: str, to_index: int, *, dry_run: bool = False, expected: int | None = None
    ) -> EditReport:
        """Remove message ``to_index`` and all after it; ``message_count`` drops by as many."""
        if to_index < 0:
            raise StorageError(f"cannot roll back to index {to_index}")
        return self._truncate("rollback", key, lambda c: to_index, dry_run, expected)

    @_guarded
    def remove_last(self, key: str) -> EditReport:
        return self._truncate(
            "remove_last", key, lambda c: max(self._count(c, key) - 1, 0), False, None
        )

    def _truncate(
        self,
        action: str,
        key: str,
        first: Callable[[sqlite3.Connection], int],
        dry_run: bool,
        expected: int | None,
    ) -> EditReport:
        if dry_run:
            with self._read() as conn:
                self._require(conn, key)
                start = first(conn)
                rows = self._tail_rows(conn, key, start)
            self._check_expected(len(rows), expected)
            return self._report(action, key, removed=_removed(start, rows), dry_run=True)
        with self._write(action) as conn:
            self._require(conn, key)
            start = first(conn)
            rows = self._tail_rows(conn, key, start)
            self._check_expected(len(rows), expected)
            if not rows:
                return self._report(action, key)
            removed = _removed(start, rows)
            entry = self._journal(key, action, removed, rows=self._payload_rows(key, rows))
            self._delete_ids(conn, rows)
            if self.schema().has_metadata:
                conn.execute(
                    "UPDATE session_metadata SET message_count = MAX(0, message_count - ?)"
                    " WHERE session_key = ?",
                    (len(rows), key),
                )
            self._commit(conn, entry)
        return self._report(action, key, removed=removed, journal_id=entry.id)

    def _require(self, conn: sqlite3.Connection, key: str) -> None:
        if self._meta(conn, key) is None and not self._has_rows(conn, key):
            raise SessionNotFound(key)

    def _ensure_au_trigger(self) -> list[str]:
        """Create ZeroClaw's sessions_au before we UPDATE a row, repairing a stale index first.

        A store from before v0.7.4 may hold rows ZeroClaw updated without the trigger; their
        index entries no longer match, and deleting them through the trigger would corrupt it.
        """
        schema = self.schema()
        if not schema.has_fts or schema.has_au:
            return []
        warnings: list[str] = []
        with self._write("create the sessions_au trigger") as conn:
            if not fts_index_ok(conn):
                conn.execute("INSERT INTO sessions_fts(sessions_fts) VALUES('rebuild')")
                warnings.append("rebuilt the stale search index")
            conn.execute(AU_TRIGGER)
            self._commit(conn, None)
        warnings.append("added ZeroClaw's sessions_au trigger so search sees updated messages")
        return warnings

    @_guarded
    def update_last(self, key: str, message: ChatMessage) -> EditReport:
        """Rewrite the newest message in place; the old text goes to the journal."""
        if self.read_only:
            raise ReadOnlyError("update_last")
        warnings = self._ensure_au_trigger()
        with self._write("update_last") as conn:
            row = conn.execute(
                "SELECT id, role, content, created_at FROM sessions WHERE session_key = ?"
                " ORDER BY id DESC LIMIT 1",
                (key,),
            ).fetchone()
            if row is None:
                raise SessionNotFound(key)
            removed = _removed(self._count(conn, key, row[0]), [row])
            entry = self._journal(
                key,
                "update_last",
                removed,
                rows=self._payload_rows(key, [row]),
                new={"role": message.role, "content": message.content},
            )
            conn.execute(
                "UPDATE sessions SET role = ?1, content = ?2 WHERE id = ?3",
                (message.role, message.content, row[0]),
            )
            if self.schema().has_metadata:
                conn.execute(
                    "UPDATE session_metadata SET last_activity = ?1 WHERE session_key = ?2",
                    (now_rfc3339(), key),
                )
            self._commit(conn, entry)
        return self._report(
            "update_last", key, removed=removed, journal_id=entry.id, warnings=tuple(warnings)
        )

    @_guarded
    def clear_messages(self, key: str) -> EditReport:
        """Delete the messages, keep the metadata row with ``message_count = 0`` (as ZeroClaw)."""
        with self._write("clear_messages") as conn:
            self._require(conn, key)
            rows = self._messages(conn, key)
            if not rows:
                return self._report("clear_messages", key)
            meta = self._meta(conn, key)
            removed = _removed(0, rows)
            entry = self._journal(
                key, "clear_messages", removed, rows=self._payload_rows(key, rows), metadata=meta
            )
            self._delete_ids(conn, rows)
            if meta is not None:
                conn.execute(
                    "UPDATE session_metadata SET message_count = 0, last_activity = ?1"
                    " WHERE session_key = ?2",
                    (now_rfc3339(), key),
                )
            self._commit(conn, entry)
        return self._report("clear_messages", key, removed=removed, journal_id=entry.id)

    @_guarded
    def delete_session(self, key: str) -> EditReport:
        return self._delete("delete_session", key)

    def _delete(self, action: str, key: str) -> EditReport:
        with self._write(action) as conn:
            self._require(conn, key)
            rows = self._messages(conn, key)
            meta = self._meta(conn, key)
            removed = _removed(0, rows)
            entry = self._journal(
                key, action, removed, rows=self._payload_rows(key, rows), metadata=meta
            )
            self._delete_ids(conn, rows)
            if meta is not None:
                conn.execute("DELETE FROM session_metadata WHERE session_key = ?", (key,))
            self._commit(conn, entry)
        return self._report(action, key, removed=removed, journal_id=entry.id)

    @_guarded
    def cleanup_stale(self, ttl_hours: float) -> list[str]:
        """ZeroClaw's TTL sweep (string comparison of RFC 3339 times), journalled per session."""
        if self.read_only:
            raise ReadOnlyError("cleanup_stale")
        cutoff = rfc3339(datetime.now(UTC) - timedelta(hours=ttl_hours))
        with self._read() as conn:
            stale = [
                str(r["session_key"])
                for r in self._metadata_rows(conn, "WHERE last_activity < ?", (cutoff,))
            ]
        for key in stale:
            self._delete("delete_session", key)
        return stale

    def _ensure_columns(self, conn: sqlite3.Connection, columns: Iterable[str]) -> None:
        """Add ZeroClaw's later metadata columns the way its own startup migration does."""
        present = self.schema().meta_columns
        for col in columns:
            if col not in present:
                conn.execute(
                    f"ALTER TABLE session_metadata ADD COLUMN {col} {METADATA_COLUMNS[col]}"
                )

    def _update_metadata(
        self, action: str, key: str, columns: Sequence[str], sql: str, args: Row
    ) -> None:
        """Run an UPDATE of one metadata row; a rename is journalled with the old name."""
        if not self.schema().has_metadata:
            raise StorageError("this store has no session_metadata table")
        with self._write(action) as conn:
            self._ensure_columns(conn, columns)
            before = self._meta(conn, key)
            if before is None:
                raise StorageError(
                    f"{key!r} has no metadata row, and ZeroClaw keeps names and states only for"
                    " sessions that have one"
                )
            entry = None
            if action == "rename":
                entry = self._journal(key, action, old={c: before.get(c) for c in columns})
            conn.execute(sql, (*args, key))
            self._commit(conn, entry)

    @_guarded
    def set_session_name(self, key: str, name: str) -> None:
        """ZeroClaw's rename: ``""`` stores NULL. Journalled, so it can be undone."""
        if self.read_only:
            raise ReadOnlyError("rename")
        self._update_metadata(
            "rename",
            key,
            ["name"],
            "UPDATE session_metadata SET name = ?1 WHERE session_key = ?2",
            (name or None,),
        )

    @_guarded
    def set_session_state(self, key: str, state: SessionState, turn_id: str | None = None) -> None:
        if self.read_only:
            raise ReadOnlyError("set_session_state")
        value = SessionState(state).value
        started = now_rfc3339() if value == "running" else None
        self._update_metadata(
            "set_state",
            key,
            ["state", "turn_id", "turn_started_at"],
            "UPDATE session_metadata SET state = ?1, turn_id = ?2, turn_started_at = ?3"
            " WHERE session_key = ?4",
            (value, turn_id, started),
        )

    # --- compact -----------------------------------------------------------------------------

    @_guarded
    def compact(self, key: str | None, *, dry_run: bool = False) -> EditReport:
        """Check and repair the search index, checkpoint the WAL, fix ``message_count`` drift."""
        if self.read_only:
            raise ReadOnlyError("compact")
        warnings: list[str] = []
        if self.schema().has_fts:
            done = "" if dry_run else ", optimized"
            ok = f"search index: integrity check passed{done}"
            warnings += self._compact_fts(dry_run) or [ok]
        drift = self._repair_counts(key, dry_run)
        warnings += drift or ["message_count matches the stored messages"]
        if not dry_run:
            self._conn().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            warnings.append("write-ahead log checkpointed")
        return self._report("compact", key or "*", dry_run=dry_run, warnings=tuple(warnings))

    def _compact_fts(self, dry_run: bool) -> list[str]:
        with self._write("compact") as conn:
            healthy = fts_index_ok(conn)
            if dry_run:
                return [] if healthy else ["the search index is stale: compact would rebuild it"]
            if not healthy:
                conn.execute("INSERT INTO sessions_fts(sessions_fts) VALUES('rebuild')")
            conn.execute("INSERT INTO sessions_fts(sessions_fts) VALUES('optimize')")
            self._commit(conn, None)
        return [] if healthy else ["the search index was stale: rebuilt it"]

    def _repair_counts(self, key: str | None, dry_run: bool) -> list[str]:
        if not self.schema().has_metadata:
            return []
        where, args = ("WHERE m.session_key = ?", (key,)) if key is not None else ("", ())
        sql = (
            "SELECT m.session_key, m.message_count, m.last_activity,"
            " (SELECT COUNT(*) FROM sessions s WHERE s.session_key = m.session_key)"
            f" FROM session_metadata m {where}"
        )
        with self._write("compact") as conn:
            drift = [
                (k, n, want)
                for k, n, last, true in conn.execute(sql, args).fetchall()
                if n != true and n != (want := true - self._in_flight(conn, k, last))
            ]
            if not dry_run:
                conn.executemany(
                    "UPDATE session_metadata SET message_count = ? WHERE session_key = ?",
                    [(want, k) for k, _, want in drift],
                )
                self._commit(conn, None)
        return [f"{k}: message_count {n} → {want}" for k, n, want in drift]

    def _in_flight(self, conn: sqlite3.Connection, key: str, last_activity: object) -> int:
        """Rows of appends whose second statement (the metadata upsert) has not run yet.

        ZeroClaw's append is an INSERT, then an upsert that counts the row, with the same
        timestamp; between the two (the upsert may wait up to the busy timeout behind us) the
        row is newer than ``last_activity``. Counting it now would count it twice."""
        if not isinstance(last_activity, str):
            return 0
        recent = rfc3339(datetime.now(UTC) - timedelta(milliseconds=2 * BUSY_TIMEOUT_MS))
        (n,) = conn.execute(
            "SELECT COUNT(*) FROM sessions WHERE session_key = ? AND created_at > ?"
            " AND created_at > ?",
            (key, last_activity, recent),
        ).fetchone()
        return int(n)

    # --- undo ----------------------------------------------------------------------------------

    @_guarded
    def restore(self, journal_id: str) -> EditReport:
        """Undo a journalled edit: removed rows return with their original ids and times."""
        if self.read_only:
            raise ReadOnlyError("undo")
        entry = self.journal.get(journal_id)
        self._check_entry(entry)
        if entry.status == "pending" and not self._happened(entry):
            self.journal.discard(entry)
            return self._report(
                f"undo {entry.action}",
                entry.key,
                journal_id=entry.id,
                warnings=("the edit never reached the database (interrupted); nothing to undo",),
            )
        if entry.action in REMOVING_ACTIONS:
            warnings = self._restore_rows(entry)
        elif entry.action == "update_last":
            warnings = self._restore_update(entry)
        elif entry.action == "rename":
            warnings = self._restore_name(entry)
        else:
            raise StorageError(f"cannot undo {entry.action!r}")
        self.journal.set_status(entry, "undone")
        return self._report(
            f"undo {entry.action}", entry.key, journal_id=entry.id, warnings=tuple(warnings)
        )

    def _check_entry(self, entry: JournalEntry) -> None:
        if entry.backend != "sqlite" or entry.store != str(self.sessions_dir.resolve()):
            raise StorageError(f"journal entry {entry.id} belongs to another store ({entry.store})")
        if entry.status == "undone":
            raise StorageError(f"journal entry {entry.id} was already undone")

    def _happened(self, entry: JournalEntry) -> bool:
        """For a pending entry: did the edit commit before the crash?"""
        rows: list[list[Any]] = entry.payload.get("rows", [])
        with self._read() as conn:
            if entry.action in REMOVING_ACTIONS:
                return not any(self._row_exists(conn, r) for r in rows)
            if entry.action == "update_last":
                return not all(self._row_exists(conn, r) for r in rows)
            meta = self._meta(conn, entry.key) or {}
        old: dict[str, Any] = entry.payload.get("old", {})
        return any(meta.get(c) != v for c, v in old.items())

    def _row_exists(self, conn: sqlite3.Connection, row: Sequence[Any]) -> bool:
        found = conn.execute(
            "SELECT 1 FROM sessions WHERE id = ? AND session_key = ? AND role = ? AND content = ?",
            (row[0], row[1], row[2], row[3]),
        ).fetchone()
        return found is not None

    def _restore_rows(self, entry: JournalEntry) -> list[str]:
        rows: list[list[Any]] = entry.payload.get("rows", [])
        warnings: list[str] = []
        with self._write("undo") as conn:
            taken = {
                r[0]
                for r in rows
                if conn.execute("SELECT 1 FROM sessions WHERE id = ?", (r[0],)).fetchone()
            }
            back = [r for r in rows if r[0] not in taken]
            conn.executemany(
                "INSERT INTO sessions (id, session_key, role, content, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                [tuple(r) for r in back],
            )
            self._restore_metadata(conn, entry, len(back))
            if back:
                newer = conn.execute(
                    "SELECT COUNT(*) FROM sessions WHERE session_key = ? AND id > ?",
                    (entry.key, max(r[0] for r in back)),
                ).fetchone()[0]
                if newer:
                    warnings.append(
                        f"put {len(back)} messages back at their place, before {newer} newer ones"
                    )
            if taken:
                warnings.append(f"{len(taken)} messages were already back; left them as they are")
            self._commit(conn, None)
        return warnings

    def _restore_metadata(self, conn: sqlite3.Connection, entry: JournalEntry, n: int) -> None:
        """Recreate a deleted metadata row as it was, or count the returned messages back in."""
        if not self.schema().has_metadata:
            return
        old: dict[str, Any] | None = entry.payload.get("metadata")
        if old is not None and self._meta(conn, entry.key) is None:
            cols = [c for c in old if c in self.schema().meta_columns]
            marks = ", ".join("?" * len(cols))
            conn.execute(
                f"INSERT INTO session_metadata ({', '.join(cols)}) VALUES ({marks})",
                [old[c] for c in cols],
            )
            return
        conn.execute(
            "UPDATE session_metadata SET message_count = message_count + ? WHERE session_key = ?",
            (n, entry.key),
        )

    def _restore_update(self, entry: JournalEntry) -> list[str]:
        warnings = self._ensure_au_trigger()
        row_id, _, role, content, _ = entry.payload["rows"][0]
        with self._write("undo") as conn:
            cur = conn.execute(
                "UPDATE sessions SET role = ?, content = ? WHERE id = ?", (role, content, row_id)
            )
            if cur.rowcount == 0:
                raise StorageError("the updated message was removed since; nothing to restore")
            self._commit(conn, None)
        return warnings

    def _restore_name(self, entry: JournalEntry) -> list[str]:
        old: dict[str, Any] = entry.payload.get("old", {})
        with self._write("undo") as conn:
            conn.execute(
                "UPDATE session_metadata SET name = ? WHERE session_key = ?",
                (old.get("name"), entry.key),
            )
            self._commit(conn, None)
        return []


def ensure_schema(conn: sqlite3.Connection) -> None:
    """ZeroClaw's startup migration: the full current schema, WAL, every later column."""
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(SCHEMA)
    present = {r[1] for r in conn.execute("PRAGMA table_info(session_metadata)")}
    for col, ddl in METADATA_COLUMNS.items():
        if col not in present:
            conn.execute(f"ALTER TABLE session_metadata ADD COLUMN {col} {ddl}")
    for col in METADATA_INDEXES:
        conn.execute(
            f"CREATE INDEX IF NOT EXISTS idx_session_metadata_{col} ON session_metadata({col})"
        )
