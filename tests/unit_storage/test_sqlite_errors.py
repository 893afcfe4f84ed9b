"""Failures become one-line StorageErrors; locks are waited for, never forever."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from storage.errors import StorageError
from storage.models import ChatMessage
from tests.unit_storage.sqlite_helpers import (
    TS,
    fixture_sessions,
    fts_integrity_ok,
    make_seed_era_db,
    open_store,
    rows_of,
    sql,
    tree_digest,
)


def one_line(err: pytest.ExceptionInfo[StorageError]) -> str:
    text = str(err.value)
    assert "\n" not in text and "Traceback" not in text
    return text


def wal_store(tmp_path: Path, n: int = 6) -> Path:
    db = tmp_path / "sessions" / "sessions.db"
    db.parent.mkdir()
    make_seed_era_db(db, [("k", "user", f"message {i} about otters", TS) for i in range(n)])
    return db


def hold_write_lock(db: Path, seconds: float, ready: threading.Event) -> threading.Thread:
    """Another writer holding BEGIN IMMEDIATE, as a slow or stuck process would."""

    def run() -> None:
        conn = sqlite3.connect(db, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO sessions (session_key, role, content, created_at)"
            " VALUES ('k', 'user', 'held', ?)",
            (TS,),
        )
        ready.set()
        time.sleep(seconds)
        conn.execute("COMMIT")
        conn.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_locked_database_reads_work_and_edit_fails_cleanly(tmp_path: Path) -> None:
    db = wal_store(tmp_path)
    store = open_store(db, tmp_path)
    ready = threading.Event()
    holder = hold_write_lock(db, 6.5, ready)
    ready.wait()
    started = time.monotonic()
    assert len(store.load("k")) == 6  # WAL: readers never wait for writers
    assert time.monotonic() - started < 1
    started = time.monotonic()
    with pytest.raises(StorageError) as err:
        store.rollback("k", 3)
    waited = time.monotonic() - started
    assert "locked by another writer" in one_line(err)
    assert 4 < waited < 6.4
    holder.join()
    assert len(rows_of(db, "k")) == 7  # nothing of ours was written
    assert store.journal.entries() == []


def test_edit_waits_for_a_short_lock(tmp_path: Path) -> None:
    db = wal_store(tmp_path)
    store = open_store(db, tmp_path)
    ready = threading.Event()
    holder = hold_write_lock(db, 1.0, ready)
    ready.wait()
    report = store.rollback("k", 3)
    holder.join()
    assert [m.content for m in report.removed][-1] == "held"
    assert fts_integrity_ok(db)


def test_not_a_database(tmp_path: Path) -> None:
    db = tmp_path / "sessions.db"
    db.write_bytes(b"this is not SQLite at all\n" * 200)
    for read_only in (False, True):
        with pytest.raises(StorageError) as err:
            open_store(db, tmp_path, read_only=read_only)
        assert one_line(err).endswith("is not a SQLite database")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(StorageError) as err:
        open_store(tmp_path / "sessions.db", tmp_path)
    assert "no database at" in one_line(err)
    assert not (tmp_path / "sessions.db").exists()


def test_corrupt_search_index_is_reported_then_rebuilt(tmp_path: Path) -> None:
    db = wal_store(tmp_path)
    sql(db, "DELETE FROM sessions_fts_data WHERE id > 10")
    store = open_store(db, tmp_path)
    with pytest.raises(StorageError) as err:
        list(store.search_messages("otters"))
    assert "compact rebuilds it" in one_line(err)
    report = store.compact("k")
    assert "rebuilt" in " ".join(report.warnings)
    assert fts_integrity_ok(db)
    assert len(list(store.search_messages("otters"))) == 6


def test_stale_index_hits_are_dropped_until_compact(tmp_path: Path) -> None:
    db = wal_store(tmp_path)
    sql(db, "UPDATE sessions SET content = 'replaced text' WHERE id = 6")  # old update_last
    store = open_store(db, tmp_path, read_only=True)
    assert [h.index for h in store.search_messages("otters")] == [4, 3, 2, 1, 0]
    writer = open_store(db, tmp_path)
    assert writer.compact(None).warnings[0] == "the search index was stale: rebuilt it"
    assert [h.index for h in store.search_messages("replaced")] == [5]


def test_read_only_changes_no_byte_of_a_closed_wal_store(tmp_path: Path) -> None:
    db = wal_store(tmp_path)
    before = tree_digest(db.parent)
    assert sorted(before) == ["sessions.db"]
    store = open_store(db, tmp_path, read_only=True)
    assert len(store.load("k")) == 6
    assert [h.index for h in store.search_messages("otters", key="k")][:2] == [5, 4]
    store.search("otters")
    store.list_sessions_with_metadata()
    store.read_tail("k", 2)
    store.changes_since("k", 0)
    assert tree_digest(db.parent) == before  # no -wal, no -shm appeared
    store.close()
    assert tree_digest(db.parent) == before


def test_read_only_sees_a_writer_that_arrives_later(tmp_path: Path) -> None:
    db = wal_store(tmp_path)
    store = open_store(db, tmp_path, read_only=True)
    cursor = store.cursor("k")
    writer = open_store(db, tmp_path)
    writer.append("k", ChatMessage(role="user", content="live"))
    changes = store.changes_since("k", cursor)
    assert [(m.index, m.content) for m in changes.messages] == [(6, "live")]
    writer.remove_last("k")
    writer.remove_last("k")
    assert store.changes_since("k", changes.cursor).reset
    writer.close()
    store.close()


def test_read_only_on_a_delete_mode_store(tmp_path: Path) -> None:
    sessions = fixture_sessions("sqlite-workspace", tmp_path)
    before = tree_digest(sessions)
    store = open_store(sessions / "sessions.db", tmp_path, read_only=True)
    assert store.count_messages("gw_live_01") == 14
    store.close()
    assert tree_digest(sessions) == before
