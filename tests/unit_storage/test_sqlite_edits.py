"""Edits: ZeroClaw's metadata rules, the undo journal, and a search index that stays whole."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from storage.errors import ReadOnlyError, SessionChangedError, StorageError
from storage.journal import Journal
from storage.models import ChatMessage, SessionState
from storage.sqlite import SqliteBackend
from storage.zcformat import now_rfc3339
from tests.unit_storage.sqlite_helpers import (
    TS,
    fixture_sessions,
    fts_integrity_ok,
    make_seed_era_db,
    metadata_of,
    open_store,
    rows_of,
    sql,
)

KEY = "gw_live_01"  # 14 messages in the fixture


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return fixture_sessions("sqlite-workspace", tmp_path) / "sessions.db"


@pytest.fixture
def store(db: Path, tmp_path: Path) -> SqliteBackend:
    return open_store(db, tmp_path)


def count_of(db: Path, key: str) -> object:
    return sql(db, "SELECT message_count FROM session_metadata WHERE session_key = ?", (key,))[0][0]


def test_rollback_and_undo_restore_identical_rows(store: SqliteBackend, db: Path) -> None:
    before_rows, before_meta = rows_of(db, KEY), metadata_of(db, KEY)
    report = store.rollback(KEY, 10, expected=4)
    assert [m.index for m in report.removed] == [10, 11, 12, 13]
    assert [m.content for m in report.removed] == [r[3] for r in before_rows[10:]]
    assert rows_of(db, KEY) == before_rows[:10]
    assert count_of(db, KEY) == 10
    assert fts_integrity_ok(db)
    assert report.journal_id is not None
    entry = store.journal.get(report.journal_id)
    assert entry.status == "done" and entry.payload["rows"][0][0] == before_rows[10][0]
    undo = store.restore(report.journal_id)
    assert rows_of(db, KEY) == before_rows  # same ids, same created_at
    assert metadata_of(db, KEY) == before_meta
    assert undo.warnings == ()
    assert store.journal.get(report.journal_id).status == "undone"
    assert fts_integrity_ok(db)
    with pytest.raises(StorageError, match="already undone"):
        store.restore(report.journal_id)


def test_rollback_dry_run_and_expected(store: SqliteBackend, db: Path) -> None:
    before = rows_of(db, KEY)
    plan = store.rollback(KEY, 12, dry_run=True)
    assert plan.dry_run and len(plan.removed) == 2 and plan.journal_id is None
    with pytest.raises(SessionChangedError):
        store.rollback(KEY, 12, expected=3)
    assert rows_of(db, KEY) == before
    assert store.rollback(KEY, 99).removed == ()
    with pytest.raises(StorageError):
        store.rollback(KEY, -1)


def test_message_count_never_goes_below_zero(store: SqliteBackend, db: Path) -> None:
    sql(db, "UPDATE session_metadata SET message_count = 2 WHERE session_key = ?", (KEY,))
    store.rollback(KEY, 5)
    assert count_of(db, KEY) == 0  # ZeroClaw's MAX(0, message_count - n)


def test_last_activity_is_kept_by_removals(store: SqliteBackend, db: Path) -> None:
    before = sql(db, "SELECT last_activity FROM session_metadata WHERE session_key = ?", (KEY,))
    store.remove_last(KEY)
    store.rollback(KEY, 8)
    after = sql(db, "SELECT last_activity FROM session_metadata WHERE session_key = ?", (KEY,))
    assert after == before


def test_remove_last(store: SqliteBackend, db: Path) -> None:
    last = rows_of(db, KEY)[-1]
    report = store.remove_last(KEY)
    assert [(m.index, m.content) for m in report.removed] == [(13, last[3])]
    assert count_of(db, KEY) == 13
    assert fts_integrity_ok(db)


def test_update_last_and_undo(store: SqliteBackend, db: Path) -> None:
    before = rows_of(db, KEY)
    report = store.update_last(KEY, ChatMessage(role="assistant", content="rewritten walrus"))
    after = rows_of(db, KEY)
    assert after[-1][:3] == before[-1][:3] and after[-1][4] == before[-1][4]  # id, created_at kept
    assert after[-1][3] == "rewritten walrus"
    assert [h.row_id for h in store.search_messages("walrus")] == [before[-1][0]]
    assert list(store.search_messages("quokka", key=KEY)) == []
    assert fts_integrity_ok(db)
    assert report.journal_id is not None
    store.restore(report.journal_id)
    assert rows_of(db, KEY) == before
    assert list(store.search_messages("walrus")) == []
    assert fts_integrity_ok(db)


def test_seed_era_update_last_is_searchable(tmp_path: Path) -> None:
    """Without sessions_au an UPDATE leaves FTS stale; we add ZeroClaw's trigger first."""
    db = tmp_path / "sessions.db"
    make_seed_era_db(
        db, [("cli", "user", "hello there", TS), ("cli", "assistant", "old answer", TS)]
    )
    store = open_store(db, tmp_path)
    report = store.update_last("cli", ChatMessage(role="assistant", content="new giraffe"))
    assert any("sessions_au" in w for w in report.warnings)
    assert sql(db, "SELECT name FROM sqlite_master WHERE name = 'sessions_au'") == [
        ("sessions_au",)
    ]
    assert [h.index for h in store.search_messages("giraffe")] == [1]
    assert list(store.search_messages("old answer")) == []
    assert [m.key for m in store.search("giraffe")] == ["cli"]
    assert store.search("old") == []
    assert fts_integrity_ok(db)
    store.remove_last("cli")
    assert fts_integrity_ok(db)


def test_seed_era_stale_index_is_rebuilt_before_the_trigger(tmp_path: Path) -> None:
    db = tmp_path / "sessions.db"
    make_seed_era_db(db, [("cli", "user", "hello", TS), ("cli", "assistant", "stale words", TS)])
    sql(db, "UPDATE sessions SET content = 'fresh words' WHERE id = 2")  # old ZeroClaw update_last
    assert not fts_integrity_ok(db)
    store = open_store(db, tmp_path)
    report = store.update_last("cli", ChatMessage(role="assistant", content="final words"))
    assert "rebuilt the stale search index" in report.warnings
    assert fts_integrity_ok(db)
    assert [h.index for h in store.search_messages("final")] == [1]


def test_append_is_zeroclaws_append(store: SqliteBackend, db: Path) -> None:
    store.append("new_key", ChatMessage(role="user", content="hi"))
    store.append("new_key", ChatMessage(role="assistant", content="hello"))
    meta = metadata_of(db, "new_key")
    assert meta is not None and meta[3] == 2 and meta[1] != meta[2]  # created_at != last_activity
    assert store.list_sessions()[0] == "new_key"
    created = [r[4] for r in rows_of(db, "new_key")]
    assert all(c.endswith("+00:00") for c in created)  # type: ignore[union-attr]


def test_clear_messages_keeps_metadata_and_undo(store: SqliteBackend, db: Path) -> None:
    before = rows_of(db, KEY)
    report = store.clear_messages(KEY)
    assert len(report.removed) == 14 and rows_of(db, KEY) == []
    assert count_of(db, KEY) == 0 and KEY in store.list_sessions()
    assert fts_integrity_ok(db)
    assert report.journal_id is not None
    store.restore(report.journal_id)
    assert rows_of(db, KEY) == before and count_of(db, KEY) == 14


def test_delete_session_and_undo_recreates_metadata(store: SqliteBackend, db: Path) -> None:
    before_rows, before_meta = rows_of(db, "gw_named_02"), metadata_of(db, "gw_named_02")
    report = store.delete_session("gw_named_02")
    assert metadata_of(db, "gw_named_02") is None and rows_of(db, "gw_named_02") == []
    assert fts_integrity_ok(db)
    assert report.journal_id is not None
    store.restore(report.journal_id)
    assert rows_of(db, "gw_named_02") == before_rows
    assert metadata_of(db, "gw_named_02") == before_meta  # name, alias and all
    assert fts_integrity_ok(db)


def test_undo_after_growth_reinserts_in_place(store: SqliteBackend, db: Path) -> None:
    before = rows_of(db, KEY)
    report = store.rollback(KEY, 12)
    store.append(KEY, ChatMessage(role="user", content="newer"))
    assert report.journal_id is not None
    undo = store.restore(report.journal_id)
    assert [r[3] for r in rows_of(db, KEY)] == [r[3] for r in before] + ["newer"]
    assert any("newer" in w for w in undo.warnings)
    assert count_of(db, KEY) == 15


def test_cleanup_stale_is_journalled(store: SqliteBackend, db: Path) -> None:
    sql(db, "UPDATE session_metadata SET last_activity = ?", (now_rfc3339(),))
    sql(
        db,
        "UPDATE session_metadata SET last_activity = '2020-01-01T00:00:00+00:00'"
        " WHERE session_key = 'slack_T01_C02_frank'",
    )
    before = rows_of(db, "slack_T01_C02_frank")
    assert store.cleanup_stale(24) == ["slack_T01_C02_frank"]
    assert rows_of(db, "slack_T01_C02_frank") == []
    entry = store.journal.latest_undoable(store.sessions_dir, "slack_T01_C02_frank")
    assert entry is not None
    store.restore(entry.id)
    assert rows_of(db, "slack_T01_C02_frank") == before


def test_names_and_states(store: SqliteBackend, db: Path) -> None:
    store.set_session_name(KEY, "db chat")
    assert store.get_session_name(KEY) == "db chat"
    entry = store.journal.latest_undoable(store.sessions_dir, KEY)
    assert entry is not None and entry.action == "rename"
    store.set_session_name(KEY, "")
    assert sql(db, "SELECT name FROM session_metadata WHERE session_key = ?", (KEY,)) == [(None,)]
    store.restore(entry.id)  # back to what it was before "db chat"
    assert store.get_session_name(KEY) is None
    store.set_session_state(KEY, SessionState.idle)
    state = sql(
        db,
        "SELECT state, turn_id, turn_started_at FROM session_metadata WHERE session_key = ?",
        (KEY,),
    )
    assert state == [("idle", None, None)]
    store.set_session_state(KEY, SessionState.running, "t-7")
    assert store.get_session_state(KEY) is SessionState.running
    assert sql(
        db, "SELECT turn_started_at IS NOT NULL FROM session_metadata WHERE session_key = ?", (KEY,)
    ) == [(1,)]


def test_pending_entry_whose_edit_never_happened_is_discarded(
    store: SqliteBackend, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = rows_of(db, KEY)

    def crash(*args: object) -> None:
        raise RuntimeError("power cut")

    monkeypatch.setattr(SqliteBackend, "_delete_ids", crash)
    with pytest.raises(RuntimeError):
        store.rollback(KEY, 10)
    monkeypatch.undo()
    assert rows_of(db, KEY) == before
    (entry,) = store.journal.entries(store.sessions_dir, KEY)
    assert entry.status == "pending"
    report = store.restore(entry.id)
    assert "never reached" in report.warnings[0]
    assert store.journal.entries(store.sessions_dir, KEY) == []
    assert rows_of(db, KEY) == before


def test_pending_entry_whose_edit_committed_is_undone(
    store: SqliteBackend, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = rows_of(db, KEY)

    def crash(self: Journal, *args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(Journal, "set_status", crash)
    with pytest.raises(OSError):
        store.rollback(KEY, 10)
    monkeypatch.undo()
    assert len(rows_of(db, KEY)) == 10
    (entry,) = store.journal.entries(store.sessions_dir, KEY)
    assert entry.status == "pending"
    store.restore(entry.id)
    assert rows_of(db, KEY) == before


def test_commit_failure_discards_the_journal_entry(
    store: SqliteBackend, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class CommitFails:
        def __init__(self, conn: sqlite3.Connection) -> None:
            self._conn = conn

        def __getattr__(self, name: str) -> Any:
            return getattr(self._conn, name)

        def execute(self, statement: str, *args: Any) -> sqlite3.Cursor:
            if statement == "COMMIT":
                raise sqlite3.OperationalError("disk I/O error")
            return self._conn.execute(statement, *args)

    real = SqliteBackend._conn
    monkeypatch.setattr(SqliteBackend, "_conn", lambda self: CommitFails(real(self)))
    with pytest.raises(StorageError, match="disk I/O error"):
        store.rollback(KEY, 10)
    monkeypatch.undo()
    assert len(rows_of(db, KEY)) == 14
    assert store.journal.entries(store.sessions_dir) == []


def test_journal_entry_of_another_store_is_refused(db: Path, tmp_path: Path) -> None:
    store = open_store(db, tmp_path)
    report = store.rollback(KEY, 12)
    other_sessions = fixture_sessions("sqlite-seed-era-workspace", tmp_path / "other")
    other = SqliteBackend(other_sessions / "sessions.db", journal=store.journal)
    assert report.journal_id is not None
    with pytest.raises(StorageError, match="another store"):
        other.restore(report.journal_id)


def test_read_only_refuses_every_edit(db: Path, tmp_path: Path) -> None:
    store = open_store(db, tmp_path, read_only=True)
    for edit in (
        lambda: store.rollback(KEY, 2),
        lambda: store.remove_last(KEY),
        lambda: store.update_last(KEY, ChatMessage(role="user", content="x")),
        lambda: store.append(KEY, ChatMessage(role="user", content="x")),
        lambda: store.clear_messages(KEY),
        lambda: store.delete_session(KEY),
        lambda: store.cleanup_stale(1),
        lambda: store.set_session_name(KEY, "x"),
        lambda: store.set_session_state(KEY, SessionState.idle),
        lambda: store.compact(KEY),
        lambda: store.restore("20260101T000000000000-abcdef"),
    ):
        with pytest.raises(ReadOnlyError):
            edit()


def test_a_relisting_rebuilds_only_the_rows_that_changed(store: SqliteBackend) -> None:
    first = {m.key: m for m in store.list_sessions_with_metadata()}
    store.set_session_state(KEY, SessionState.running, "t-8")  # state only: last_activity kept
    second = {m.key: m for m in store.list_sessions_with_metadata()}
    assert second.keys() == first.keys() and len(first) > 1
    assert second[KEY] is not first[KEY] and second[KEY].state == "running"
    assert all(second[k] is first[k] for k in first if k != KEY)
