"""Helpers for the SQLite, query and migration tests (no test functions here).

``python -m tests.unit_storage.sqlite_helpers fts-table`` regenerates ``storage/_fts_table.py``
from the local SQLite's unicode61 tokenizer.
"""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from pathlib import Path

from storage.journal import Journal
from storage.sqlite import SqliteBackend
from tests.helpers import copy_fixture

ROOT = Path(__file__).resolve().parents[2]
TS = "2026-03-16T16:23:18.123456789+00:00"


def fixture_sessions(name: str, tmp: Path) -> Path:
    """A writable copy of a fixture workspace; returns its ``sessions/`` folder."""
    return copy_fixture(name, tmp) / "sessions"


def open_store(db: Path, tmp: Path, *, read_only: bool = False) -> SqliteBackend:
    return SqliteBackend(db, read_only=read_only, journal=Journal(tmp / "state"))


def rows_of(db: Path, key: str) -> list[tuple[object, ...]]:
    """Every column of a session's rows, straight from the file."""
    conn = sqlite3.connect(db)
    try:
        return conn.execute(
            "SELECT id, session_key, role, content, created_at FROM sessions"
            " WHERE session_key = ? ORDER BY id",
            (key,),
        ).fetchall()
    finally:
        conn.close()


def metadata_of(db: Path, key: str) -> tuple[object, ...] | None:
    conn = sqlite3.connect(db)
    try:
        row: tuple[object, ...] | None = conn.execute(
            "SELECT * FROM session_metadata WHERE session_key = ?", (key,)
        ).fetchone()
        return row
    finally:
        conn.close()


def sql(db: Path, statement: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        return conn.execute(statement, args).fetchall()
    finally:
        conn.close()


# ZeroClaw's full current schema, statement for statement (see ZEROCLAW_FORMAT.md).
SEED_ERA_SCHEMA = """
CREATE TABLE sessions (id INTEGER PRIMARY KEY AUTOINCREMENT, session_key TEXT NOT NULL,
  role TEXT NOT NULL, content TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE INDEX idx_sessions_key ON sessions(session_key);
CREATE INDEX idx_sessions_key_id ON sessions(session_key, id);
CREATE TABLE session_metadata (session_key TEXT PRIMARY KEY, created_at TEXT NOT NULL,
  last_activity TEXT NOT NULL, message_count INTEGER NOT NULL DEFAULT 0);
CREATE VIRTUAL TABLE sessions_fts USING fts5(session_key, content, content=sessions,
  content_rowid=id);
CREATE TRIGGER sessions_ai AFTER INSERT ON sessions BEGIN
  INSERT INTO sessions_fts(rowid, session_key, content)
  VALUES (new.id, new.session_key, new.content);
END;
CREATE TRIGGER sessions_ad AFTER DELETE ON sessions BEGIN
  INSERT INTO sessions_fts(sessions_fts, rowid, session_key, content)
  VALUES ('delete', old.id, old.session_key, old.content);
END;
"""


def tree_digest(folder: Path) -> dict[str, str]:
    """Name -> sha256 of every file in ``folder`` (a missing -wal/-shm shows as absent)."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


def make_seed_era_db(
    path: Path, rows: list[tuple[str, str, str, str]], *, wal: bool = True
) -> None:
    """A first-generation store: no name/state columns, no sessions_au, no receipts.

    ``rows`` are (key, role, content, created_at); metadata is upserted the way ZeroClaw did.
    """
    conn = sqlite3.connect(path)
    if wal:
        conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(SEED_ERA_SCHEMA)
    for key, role, content, ts in rows:
        conn.execute(
            "INSERT INTO sessions (session_key, role, content, created_at) VALUES (?,?,?,?)",
            (key, role, content, ts),
        )
        conn.execute(
            "INSERT INTO session_metadata (session_key, created_at, last_activity, message_count)"
            " VALUES (?1, ?2, ?2, 1) ON CONFLICT(session_key) DO UPDATE SET"
            " last_activity = excluded.last_activity, message_count = message_count + 1",
            (key, ts),
        )
    conn.commit()
    conn.close()


def fts_integrity_ok(db: Path) -> bool:
    conn = sqlite3.connect(db)
    try:
        conn.execute("INSERT INTO sessions_fts(sessions_fts, rank) VALUES('integrity-check', 1)")
        return True
    except sqlite3.DatabaseError:
        return False
    finally:
        conn.close()


# --- the unicode61 table ------------------------------------------------------------------


def probe_unicode61() -> tuple[list[tuple[int, int]], dict[int, str]]:
    """Ask SQLite which non-ASCII code points separate tokens and how the others fold.

    Every code point is written as ``x{ch}x``: a token character yields one token
    ``x{fold}x``, a separator yields two tokens ``x`` ``x``.
    """
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE t USING fts5(x)")
    conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
    cps = [cp for cp in range(0x80, 0x110000) if not 0xD800 <= cp < 0xE000]
    chunk = 4096
    docs = [
        (i // chunk, " ".join(f"x{chr(cp)}x" for cp in cps[i : i + chunk]))
        for i in range(0, len(cps), chunk)
    ]
    conn.executemany("INSERT INTO t(rowid, x) VALUES (?, ?)", docs)
    terms: dict[int, list[str]] = {}
    for term, doc in conn.execute("SELECT term, doc FROM v ORDER BY doc, offset"):
        terms.setdefault(doc, []).append(term)
    separators: list[tuple[int, int]] = []
    fold: dict[int, str] = {}
    for doc, start in enumerate(range(0, len(cps), chunk)):
        tokens, j = terms[doc], 0
        for cp in cps[start : start + chunk]:
            if tokens[j] == "x":
                j += 2
                if separators and separators[-1][1] == cp - 1:
                    separators[-1] = (separators[-1][0], cp)
                else:
                    separators.append((cp, cp))
            else:
                folded = tokens[j][1:-1]
                j += 1
                if folded != chr(cp):
                    fold[cp] = folded
    return separators, fold


def render_fts_table() -> str:
    separators, fold = probe_unicode61()
    lines = [
        '"""SQLite FTS5 unicode61 (remove_diacritics=1) as tables, probed from SQLite '
        f"{sqlite3.sqlite_version}.",
        "",
        "Generated by tests/unit_storage/sqlite_helpers.py; do not edit by hand.",
        "ASCII is not listed: [0-9A-Za-z] are token characters, A-Z fold to a-z.",
        '"""',
        "",
        f'SQLITE_VERSION = "{sqlite3.sqlite_version}"',
        "",
        "# Non-ASCII code points that separate tokens (every other one is a token character).",
        "SEPARATORS: tuple[tuple[int, int], ...] = (",
        *(f"    (0x{a:X}, 0x{b:X})," for a, b in separators),
        ")",
        "",
        '# Non-ASCII token characters whose folded form differs ("" = dropped).',
        "FOLD: dict[int, str] = {",
        *(f"    0x{cp:X}: {ch!r}," for cp, ch in sorted(fold.items())),
        "}",
        "",
    ]
    return "\n".join(lines)


# A ZeroClaw-style writer in another process: autocommit INSERT + metadata upsert, 5 s busy
# timeout, WAL, like SqliteSessionBackend::append. Prints one JSON line when it stops.
WRITER = """
import json, sqlite3, sys, time, pathlib
db, key, stop, rate = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3]), float(sys.argv[4])
conn = sqlite3.connect(db, isolation_level=None, timeout=5)
conn.execute("PRAGMA busy_timeout=5000")
conn.execute("PRAGMA journal_mode=WAL")
conn.execute("PRAGMA synchronous=NORMAL")
written, errors, i = [], [], 0
while not stop.exists():
    i += 1
    now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    content = f"writer message {i}"
    try:
        conn.execute("INSERT INTO sessions (session_key, role, content, created_at)"
                     " VALUES (?1, ?2, ?3, ?4)", (key, "user", content, now))
        written.append(content)
        conn.execute("INSERT INTO session_metadata (session_key, created_at, last_activity,"
                     " message_count) VALUES (?1, ?2, ?3, 1) ON CONFLICT(session_key) DO UPDATE"
                     " SET last_activity = excluded.last_activity,"
                     " message_count = message_count + 1", (key, now, now))
    except sqlite3.Error as err:
        errors.append(str(err))
    time.sleep(1 / rate)
conn.close()
print(json.dumps({"written": written, "errors": errors}))
"""


def start_writer(db: Path, key: str, stop: Path, rate: float = 500) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db), key, str(stop), str(rate)],
        stdout=subprocess.PIPE,
        text=True,
    )


if __name__ == "__main__" and sys.argv[1:] == ["fts-table"]:
    (ROOT / "storage" / "_fts_table.py").write_text(render_fts_table(), encoding="utf-8")
