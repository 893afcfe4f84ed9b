"""Every generation of ZeroClaw's schema, and the odd rows real stores hold."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from storage.errors import SessionNotFound, StorageError
from storage.models import ChatMessage, SessionState
from tests.unit_storage.sqlite_helpers import (
    TS,
    fts_integrity_ok,
    make_seed_era_db,
    open_store,
    sql,
)

LATER_COLUMNS = [
    "name TEXT",
    "state TEXT NOT NULL DEFAULT 'idle'",
    "turn_id TEXT",
    "turn_started_at TEXT",
    "agent_alias TEXT",
    "channel_id TEXT",
    "room_id TEXT",
    "sender_id TEXT",
]


def seed(db: Path, n: int = 4, key: str = "cli_a") -> None:
    make_seed_era_db(
        db,
        [(key, "user" if i % 2 == 0 else "assistant", f"seed message {i}", TS) for i in range(n)],
    )


@pytest.mark.parametrize("upto", range(len(LATER_COLUMNS) + 1))
def test_any_generation_of_metadata_columns_reads(tmp_path: Path, upto: int) -> None:
    db = tmp_path / "sessions.db"
    seed(db)
    for column in LATER_COLUMNS[:upto]:
        sql(db, f"ALTER TABLE session_metadata ADD COLUMN {column}")
    store = open_store(db, tmp_path)
    (meta,) = store.list_sessions_with_metadata()
    assert (meta.key, meta.message_count, meta.created_at) == ("cli_a", 4, TS)
    assert meta.name is None
    assert store.get_session_state("cli_a") is SessionState.idle
    assert store.list_running_sessions() == []
    assert len(store.load("cli_a")) == 4


def test_unknown_future_columns_are_kept(tmp_path: Path) -> None:
    db = tmp_path / "sessions.db"
    seed(db)
    sql(db, "ALTER TABLE session_metadata ADD COLUMN mood TEXT DEFAULT 'calm'")
    sql(db, "ALTER TABLE session_metadata ADD COLUMN backend TEXT DEFAULT 'x'")
    sql(db, "ALTER TABLE session_metadata ADD COLUMN size INTEGER DEFAULT 7")
    store = open_store(db, tmp_path)
    (meta,) = store.list_sessions_with_metadata()
    assert meta.extra == {"mood": "calm", "db_backend": "x", "db_size": 7}
    assert (meta.backend, meta.size) == ("sqlite", None)


def test_a_blob_in_a_text_column_is_read_as_text(tmp_path: Path) -> None:
    db = tmp_path / "sessions.db"
    seed(db, n=1)
    sql(
        db,
        "INSERT INTO sessions (session_key, role, content, created_at) VALUES (?, ?, ?, ?)",
        ("cli_a", b"user", "blob text é".encode(), TS),
    )
    store = open_store(db, tmp_path)
    assert store.load("cli_a")[-1] == ChatMessage(role="user", content="blob text é")
    (last,) = store.read_range("cli_a", 1, 2)
    assert (last.role, last.content, last.created_at) == ("user", "blob text é", TS)
    assert store.rollback("cli_a", 1, dry_run=True).removed[0].content == "blob text é"


def test_seed_era_store_gains_names_the_way_zeroclaw_adds_them(tmp_path: Path) -> None:
    db = tmp_path / "sessions.db"
    seed(db)
    store = open_store(db, tmp_path)
    store.set_session_name("cli_a", "first")
    assert store.get_session_name("cli_a") == "first"
    store.set_session_state("cli_a", SessionState.running, "turn-9")
    assert [m.key for m in store.list_running_sessions()] == ["cli_a"]
    assert store.get_session_metadata("cli_a") is not None
    assert store.get_session_metadata("cli_a").turn_id == "turn-9"  # type: ignore[union-attr]


def test_name_needs_a_metadata_row(tmp_path: Path) -> None:
    db = tmp_path / "sessions.db"
    seed(db)
    sql(
        db,
        "INSERT INTO sessions (session_key, role, content, created_at)"
        " VALUES ('orphan', 'user', 'x', ?)",
        (TS,),
    )
    store = open_store(db, tmp_path)
    with pytest.raises(StorageError, match="metadata row"):
        store.set_session_name("orphan", "a name")


def test_orphan_rows_are_listed_after_the_metadata_keys(tmp_path: Path) -> None:
    db = tmp_path / "sessions.db"
    seed(db)
    for key in ("orphan_old", "orphan_new"):
        sql(
            db,
            "INSERT INTO sessions (session_key, role, content, created_at)"
            " VALUES (?, 'user', 'lost', ?)",
            (key, TS),
        )
    store = open_store(db, tmp_path)
    assert store.list_sessions() == ["cli_a", "orphan_new", "orphan_old"]
    orphan = store.list_sessions_with_metadata()[1]
    assert (orphan.key, orphan.message_count, orphan.created_at) == ("orphan_new", None, None)
    assert store.session_exists("orphan_old") and store.resolve_key("orphan_old") == "orphan_old"
    assert [m.content for m in store.load("orphan_old")] == ["lost"]
    report = store.delete_session("orphan_old")
    assert store.list_sessions() == ["cli_a", "orphan_new"]
    assert report.journal_id is not None
    store.restore(report.journal_id)
    assert store.list_sessions() == ["cli_a", "orphan_new", "orphan_old"]
    assert sql(db, "SELECT COUNT(*) FROM session_metadata")[0][0] == 1  # none invented


def test_metadata_without_messages(tmp_path: Path) -> None:
    db = tmp_path / "sessions.db"
    seed(db)
    sql(
        db,
        "INSERT INTO session_metadata (session_key, created_at, last_activity, message_count)"
        " VALUES ('gw_connect', ?, '2099-01-01T00:00:00+00:00', 0)",
        (TS,),
    )
    store = open_store(db, tmp_path)
    assert store.list_sessions() == ["gw_connect", "cli_a"]
    assert store.load("gw_connect") == []
    tail = store.read_tail("gw_connect", 10)
    assert tail.messages == () and tail.first_index == 0 and tail.cursor == 0
    assert store.rollback("gw_connect", 0).removed == ()
    assert store.count_messages("gw_connect") == 0


def test_missing_session_is_not_found(tmp_path: Path) -> None:
    db = tmp_path / "sessions.db"
    seed(db)
    store = open_store(db, tmp_path)
    with pytest.raises(SessionNotFound):
        store.resolve_key("nope")
    with pytest.raises(SessionNotFound):
        store.rollback("nope", 0)
    assert store.load("nope") == [] and store.get_session_metadata("nope") is None


def test_message_count_drift_is_kept_then_repaired_by_compact(tmp_path: Path) -> None:
    db = tmp_path / "sessions.db"
    seed(db, 14)
    seed_key_2 = [("other", "user", "fine", TS)]
    sql(db, "UPDATE session_metadata SET message_count = 12 WHERE session_key = 'cli_a'")
    store = open_store(db, tmp_path)
    for key, role, content, _ in seed_key_2:
        store.append(key, ChatMessage(role=role, content=content))
    assert store.get_session_metadata("cli_a").message_count == 12  # type: ignore[union-attr]
    assert store.count_messages("cli_a") == 14
    plan = store.compact(None, dry_run=True)
    assert "cli_a: message_count 12 → 14" in plan.warnings
    assert store.get_session_metadata("cli_a").message_count == 12  # type: ignore[union-attr]
    report = store.compact("cli_a")
    assert "cli_a: message_count 12 → 14" in report.warnings
    assert store.get_session_metadata("cli_a").message_count == 14  # type: ignore[union-attr]
    assert fts_integrity_ok(db)


def test_order_is_by_id_not_created_at(tmp_path: Path) -> None:
    db = tmp_path / "sessions.db"
    make_seed_era_db(
        db,
        [("k", "user", "first", "2026-03-16T16:23:19+00:00"), ("k", "user", "second", TS)],
    )
    store = open_store(db, tmp_path)
    assert [m.content for m in store.load("k")] == ["first", "second"]


def test_no_fts_table_at_all(tmp_path: Path) -> None:
    db = tmp_path / "sessions.db"
    seed(db, 6)
    sql(db, "DROP TRIGGER sessions_ai")
    sql(db, "DROP TRIGGER sessions_ad")
    sql(db, "DROP TABLE sessions_fts")
    store = open_store(db, tmp_path)
    assert store.search("seed") == []  # ZeroClaw's query fails there: nothing
    hits = list(store.search_messages("seed message"))
    assert [h.index for h in hits] == [5, 4, 3, 2, 1, 0]
    assert [hits[0].snippet[s:e] for s, e in hits[0].spans] == ["seed", "message"]
    store.update_last("cli_a", ChatMessage(role="assistant", content="no index here"))
    assert [h.index for h in store.search_messages("index")] == [5]
    report = store.compact("cli_a")
    assert not any("search index" in w for w in report.warnings)


def test_no_metadata_table(tmp_path: Path) -> None:
    db = tmp_path / "sessions.db"
    seed(db, 3)
    sql(db, "DROP TABLE session_metadata")
    store = open_store(db, tmp_path)
    assert store.list_sessions() == ["cli_a"]
    store.append("cli_a", ChatMessage(role="user", content="more"))
    assert store.count_messages("cli_a") == 4
    assert store.remove_last("cli_a").removed[0].content == "more"


def test_not_a_sessions_store(tmp_path: Path) -> None:
    db = tmp_path / "sessions.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE other (x)")
    conn.close()
    with pytest.raises(StorageError, match="not a ZeroClaw session store"):
        open_store(db, tmp_path)
