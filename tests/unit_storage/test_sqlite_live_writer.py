"""Edits while a ZeroClaw daemon appends from another process: nothing lost, nothing failed."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from storage.sqlite import ensure_schema
from tests.unit_storage.sqlite_helpers import (
    fts_integrity_ok,
    open_store,
    rows_of,
    sql,
    start_writer,
)

KEY = "telegram_live_1"


def new_store(tmp_path: Path) -> Path:
    db = tmp_path / "sessions" / "sessions.db"
    db.parent.mkdir()
    conn = sqlite3.connect(db, isolation_level=None)
    ensure_schema(conn)
    conn.close()
    return db


def wait_for_rows(db: Path, n: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(rows_of(db, KEY)) >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"the writer did not write {n} rows in {timeout} s")


def test_rollbacks_and_undos_under_a_live_writer(tmp_path: Path) -> None:
    db = new_store(tmp_path)
    stop = tmp_path / "stop"
    writer = start_writer(db, KEY, stop, rate=500)
    try:
        wait_for_rows(db, 40)
        store = open_store(db, tmp_path)
        kept_removed: list[str] = []
        slowest = 0.0
        for i in range(20):
            started = time.monotonic()
            report = store.rollback(KEY, max(store.count_messages(KEY) - 3, 0))
            if i % 2 and report.journal_id is not None:
                store.restore(report.journal_id)  # undo every other rollback
            else:
                kept_removed += [m.content for m in report.removed]
            slowest = max(slowest, time.monotonic() - started)
            time.sleep(0.05)
    finally:
        stop.touch()
        out, _ = writer.communicate(timeout=30)
    result = json.loads(out)
    written = set(result["written"])
    in_db = {str(r[3]) for r in rows_of(db, KEY)}
    assert result["errors"] == []  # the daemon never saw "database is locked"
    assert len(written) > 100
    assert written - in_db - set(kept_removed) == set()  # lost == 0
    assert not set(kept_removed) & in_db
    (count,) = sql(db, "SELECT message_count FROM session_metadata WHERE session_key = ?", (KEY,))[
        0
    ]
    assert count == len(in_db)  # ZeroClaw's counter and ours stay in step
    assert fts_integrity_ok(db)
    assert slowest < 2.0
