"""JSONL -> SQLite the way ZeroClaw imports: staged, one transaction, a receipt, resumable."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from storage.errors import StorageError
from storage.migrate import fingerprint, migrate
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

GOOD = (
    b'{"role":"user","content":"hello"}\n'
    b"\n"
    b"not json at all\n"
    b'{"role":"assistant","content":"hi there","extra":1}\r\n'
    b'{"role":"user","content":"torn'
)


@pytest.fixture
def sessions(tmp_path: Path) -> Path:
    folder = tmp_path / "sessions"
    folder.mkdir()
    (folder / "telegram_42.jsonl").write_bytes(GOOD)
    (folder / "cli_b.jsonl").write_bytes(b'{"role":"user","content":"only one"}\n')
    return folder


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_imports_valid_messages_and_archives(sessions: Path) -> None:
    report = migrate(sessions)
    by_key = {f.key: f for f in report.files}
    assert by_key["telegram_42"].status == "imported"
    assert (by_key["telegram_42"].messages, by_key["telegram_42"].skipped_lines) == (2, 2)
    assert by_key["cli_b"].messages == 1
    assert names(sessions) == [
        "cli_b.jsonl.migrated",
        "sessions.db",
        "sessions.db-shm",
        "sessions.db-wal",
        "telegram_42.jsonl.migrated",
    ] or names(sessions) == ["cli_b.jsonl.migrated", "sessions.db", "telegram_42.jsonl.migrated"]
    db = sessions / "sessions.db"
    rows = rows_of(db, "telegram_42")
    assert [(r[2], r[3]) for r in rows] == [("user", "hello"), ("assistant", "hi there")]
    assert len({r[4] for r in rows}) == 1  # one created_at for the whole file
    receipt = sql(db, "SELECT * FROM jsonl_import_receipts WHERE session_key = 'telegram_42'")
    assert receipt[0][:4] == (
        "telegram_42.jsonl",
        "telegram_42",
        hashlib.sha256(GOOD).hexdigest(),
        len(GOOD),
    )
    assert receipt[0][4] == rows[0][4]
    meta = sql(
        db,
        "SELECT message_count, created_at, last_activity FROM session_metadata"
        " WHERE session_key = 'telegram_42'",
    )
    assert meta == [(2, rows[0][4], rows[0][4])]
    assert sql(db, "PRAGMA journal_mode") == [("wal",)]
    triggers = {n for (n,) in sql(db, "SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    assert triggers == {"sessions_ai", "sessions_ad", "sessions_au"}
    assert fts_integrity_ok(db)
    assert "imported 2 sessions (3 messages" in report.summary()
    assert migrate(sessions).files == ()  # nothing left to do


def test_imported_store_reads_back(sessions: Path, tmp_path: Path) -> None:
    migrate(sessions)
    store = open_store(sessions / "sessions.db", tmp_path)
    assert sorted(store.list_sessions()) == ["cli_b", "telegram_42"]
    assert [h.key for h in store.search_messages("hello")] == ["telegram_42"]
    assert store.get_session_name("cli_b") is None


def test_dry_run_changes_nothing(sessions: Path) -> None:
    before = tree_digest(sessions)
    report = migrate(sessions, dry_run=True)
    assert {f.key: (f.status, f.messages) for f in report.files} == {
        "cli_b": ("would import", 1),
        "telegram_42": ("would import", 2),
    }
    assert tree_digest(sessions) == before
    assert report.summary().startswith("would import 2 sessions")


def test_resumes_a_staged_file_that_never_committed(sessions: Path) -> None:
    (sessions / "telegram_42.jsonl").rename(sessions / "telegram_42.jsonl.importing")
    report = migrate(sessions)
    assert {f.key: f.status for f in report.files} == {
        "telegram_42": "imported",
        "cli_b": "imported",
    }
    assert next(f.key for f in report.files) == "telegram_42"  # staged files first
    assert not (sessions / "telegram_42.jsonl.importing").exists()
    assert len(rows_of(sessions / "sessions.db", "telegram_42")) == 2


def test_resumes_after_commit_without_duplicating(sessions: Path) -> None:
    migrate(sessions)
    # A crash between COMMIT and the archive step leaves the staged file behind.
    (sessions / "cli_b.jsonl.migrated").rename(sessions / "cli_b.jsonl.importing")
    report = migrate(sessions)
    assert [(f.key, f.status) for f in report.files] == [("cli_b", "already imported")]
    assert (sessions / "cli_b.jsonl.migrated").exists()
    assert not (sessions / "cli_b.jsonl.importing").exists()
    assert len(rows_of(sessions / "sessions.db", "cli_b")) == 1


def test_crash_after_the_hard_link_is_finished(sessions: Path) -> None:
    migrate(sessions)
    archive = sessions / "cli_b.jsonl.migrated"
    (sessions / "cli_b.jsonl.importing").hardlink_to(archive)
    report = migrate(sessions)
    assert [(f.key, f.status) for f in report.files] == [("cli_b", "already imported")]
    assert not (sessions / "cli_b.jsonl.importing").exists() and archive.exists()


def test_same_file_again_is_skipped_by_its_receipt(sessions: Path) -> None:
    migrate(sessions)
    (sessions / "cli_b.jsonl.migrated").rename(sessions / "cli_b.jsonl")
    report = migrate(sessions)
    assert [(f.key, f.status) for f in report.files] == [("cli_b", "already imported")]
    assert len(rows_of(sessions / "sessions.db", "cli_b")) == 1


def test_changed_file_with_a_receipt_is_refused(sessions: Path) -> None:
    migrate(sessions)
    (sessions / "cli_b.jsonl.migrated").unlink()
    (sessions / "cli_b.jsonl").write_bytes(b'{"role":"user","content":"different"}\n')
    (report,) = migrate(sessions).files
    assert report.status == "refused" and "receipt" in report.detail
    assert (sessions / "cli_b.jsonl").exists()  # left where it was
    assert [r[3] for r in rows_of(sessions / "sessions.db", "cli_b")] == ["only one"]


def test_existing_session_without_receipt_is_refused(sessions: Path) -> None:
    db = sessions / "sessions.db"
    make_seed_era_db(db, [("cli_b", "user", "already here", TS)])
    report = {f.key: f for f in migrate(sessions).files}
    assert report["cli_b"].status == "refused"
    assert report["telegram_42"].status == "imported"
    assert (sessions / "cli_b.jsonl").read_bytes() == b'{"role":"user","content":"only one"}\n'
    # The seed-era store got ZeroClaw's current schema on the way.
    columns = {r[1] for r in sql(db, "PRAGMA table_info(session_metadata)")}
    assert {"name", "state", "turn_id", "sender_id"} <= columns
    assert sql(db, "SELECT name FROM sqlite_master WHERE name = 'sessions_au'") == [
        ("sessions_au",)
    ]
    assert fts_integrity_ok(db)


def test_file_without_a_readable_message_is_refused_but_empty_is_imported(sessions: Path) -> None:
    (sessions / "broken.jsonl").write_bytes(b"garbage\n{\n")
    (sessions / "empty.jsonl").write_bytes(b"\n  \n")
    report = {f.key: f for f in migrate(sessions).files}
    assert report["broken"].status == "refused"
    assert (sessions / "broken.jsonl").exists()
    assert report["empty"].status == "imported" and report["empty"].messages == 0
    db = sessions / "sessions.db"
    assert sql(db, "SELECT message_count FROM session_metadata WHERE session_key = 'empty'") == [
        (0,)
    ]


def test_ambiguous_names_are_refused(sessions: Path) -> None:
    (sessions / "cli_b.jsonl.importing").write_bytes(b'{"role":"user","content":"x"}\n')
    report = {f.source: f for f in migrate(sessions).files}
    assert report["cli_b.jsonl"].status == "refused"
    assert (sessions / "cli_b.jsonl").exists() and (sessions / "cli_b.jsonl.importing").exists()
    assert rows_of(sessions / "sessions.db", "cli_b") == []


def test_existing_archive_is_never_clobbered(sessions: Path) -> None:
    (sessions / "cli_b.jsonl.migrated").write_bytes(b"an older archive\n")
    report = {f.key: f for f in migrate(sessions).files}
    assert report["cli_b"].status == "refused"
    assert (sessions / "cli_b.jsonl.migrated").read_bytes() == b"an older archive\n"


def test_fixture_receipt_is_the_sha256_of_the_archive(tmp_path: Path) -> None:
    sessions = fixture_sessions("sqlite-workspace", tmp_path)
    stamp = fingerprint(sessions / "slack_T01_C02_frank.jsonl.migrated")
    receipt = sql(
        sessions / "sessions.db", "SELECT source_hash, source_len FROM jsonl_import_receipts"
    )
    assert receipt == [stamp]
    assert migrate(sessions).files == ()


def test_locked_database_fails_cleanly_and_leaves_the_files(sessions: Path) -> None:
    db = sessions / "sessions.db"
    make_seed_era_db(db, [])
    before = names(sessions)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StorageError, match="locked by another writer"):
            migrate(sessions)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert names(sessions) == before
