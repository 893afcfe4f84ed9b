"""Nothing is lost, and the daemon never fails, while ZeroClaw writes to ``sessions.db``.

A second process appends as ZeroClaw's SqliteSessionBackend does: an autocommit INSERT, then
the metadata upsert, WAL, busy_timeout 5000. Meanwhile the command line and the browser roll
back, compact and undo. Afterwards: lost is 0, ``message_count == COUNT(*)``, the FTS index
passes ``integrity-check``, and no append of the daemon failed or waited 5 s.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from storage.journal import Journal
from storage.models import ChatMessage
from storage.sqlite import SqliteBackend
from storage.workspace import open_workspace
from storage.zcformat import now_rfc3339
from tests.trust_tests.app_driver import RecordingApp, drive_app
from tests.trust_tests.conftest import CliResult, cli, new_sqlite_store, sqlite_daemon, wait_until
from tests.unit_storage.sqlite_helpers import fts_integrity_ok, rows_of, sql

KEY = "telegram_live_1"


def seeded_store(root: Path) -> Path:
    db = new_sqlite_store(root / "sessions")
    store = SqliteBackend(db, journal=Journal())
    for i in range(20):
        store.append(KEY, ChatMessage(role=("user", "assistant")[i % 2], content=f"seed-{i}"))
    store.close()
    return db


def ok(result: CliResult) -> CliResult:
    assert result.code == 0, result
    return result


def run_cli_edits(root: Path, rollbacks: int) -> set[str]:
    """rollback x``rollbacks``, compact every other round, undo every fifth (CLI, --json)."""
    removed_by: dict[str, set[str]] = {}
    for i in range(rollbacks):
        report = ok(cli(root, "rollback", KEY, "--messages", "3", "--yes", "--json")).json()
        assert report["removed"]
        removed_by[report["journal_id"]] = {m["content"] for m in report["removed"]}
        entry = Journal().get(report["journal_id"])
        assert entry.status == "done"
        assert [m.content for m in entry.removed] == [m["content"] for m in report["removed"]]
        if i % 2 == 0:
            ok(cli(root, "compact", KEY, "--yes", "--json"))
        if i % 5 == 4:
            undone = ok(cli(root, "undo", KEY, "--json")).json()
            removed_by.pop(undone["journal_id"], None)
    return set().union(*removed_by.values())


def check_store(db: Path, daemon_out: str, removed: set[str], at_least: int = 200) -> None:
    result = json.loads(daemon_out)
    assert result["errors"] == [], "a ZeroClaw append failed"
    assert result["slowest"] < 5.0, "a ZeroClaw append waited for the busy timeout"
    written = set(result["written"])
    assert len(written) > at_least, "the daemon did not run alongside"
    in_db = [str(r[3]) for r in rows_of(db, KEY) if not str(r[3]).startswith("seed-")]
    assert len(in_db) == len(set(in_db)), "a message is in the store twice"
    assert not set(in_db) & removed
    lost = written - set(in_db) - removed
    assert lost == set(), f"{len(lost)} messages lost"
    ((count,),) = sql(
        db, "SELECT message_count FROM session_metadata WHERE session_key = ?", (KEY,)
    )
    assert count == len(rows_of(db, KEY)), "message_count drifted from COUNT(*)"
    assert fts_integrity_ok(db)


def test_cli_rollback_compact_undo_under_a_live_daemon(tmp_path: Path) -> None:
    """10 rollbacks, 5 compacts, 2 undos by default (the JSONL test does 20/10/4; the soak
    variant 200/100/40): SQLite's transactions leave less to race than a file does."""
    root = tmp_path / "data"
    db = seeded_store(root)
    daemon = sqlite_daemon(db, KEY, tmp_path / "stop", rate=1000)
    try:
        wait_until(lambda: len(rows_of(db, KEY)) > 60, what="the daemon to start")
        removed = run_cli_edits(root, rollbacks=10)
    finally:
        out = daemon.stop()
    check_store(db, out, removed)


@pytest.mark.soak
def test_cli_edits_under_a_live_daemon_soak(tmp_path: Path) -> None:
    root = tmp_path / "data"
    db = seeded_store(root)
    daemon = sqlite_daemon(db, KEY, tmp_path / "stop", rate=2000)
    try:
        wait_until(lambda: len(rows_of(db, KEY)) > 60)
        removed = run_cli_edits(root, rollbacks=200)
    finally:
        out = daemon.stop()
    check_store(db, out, removed)


@pytest.mark.parametrize("rounds", [2, pytest.param(12, marks=pytest.mark.soak)])
async def test_app_rollback_compact_undo_under_a_live_daemon(tmp_path: Path, rounds: int) -> None:
    """The browser: 2 rollbacks, 2 compacts, 1 undo (fewer than the CLI: each waits for the
    UI; the soak variant does more), the daemon writing in bursts."""
    root = tmp_path / "data"
    db = seeded_store(root)
    journal = Journal()
    ws = open_workspace(root, journal=journal)
    daemon = sqlite_daemon(db, KEY, tmp_path / "stop", rate=1000, burst=20, pause=1.0)
    try:
        wait_until(lambda: len(rows_of(db, KEY)) > 40)
        rollbacks = await drive_app(
            RecordingApp(ws, journal=journal, live=True), KEY, rounds=rounds
        )
    finally:
        out = daemon.stop()
        ws.close()
    assert rollbacks >= 1
    removed: set[str] = set()
    for entry in journal.entries(root / "sessions"):
        assert entry.status in ("done", "undone"), entry
        if entry.action == "rollback" and entry.status == "done":
            removed |= {m.content for m in entry.removed}
    check_store(db, out, removed, at_least=40)


def test_compact_between_the_two_statements_of_an_append_keeps_the_count(
    tmp_path: Path,
) -> None:
    """ZeroClaw's append is INSERT, then an upsert that counts the row. A compact that repairs
    message_count in between must not count the row as well, or the upsert makes it one too
    many (found by the live test above; it once left message_count = COUNT(*) + 1)."""
    db = seeded_store(tmp_path / "data")
    daemon = sqlite3.connect(db, isolation_level=None)
    ts = now_rfc3339()
    daemon.execute(
        "INSERT INTO sessions (session_key, role, content, created_at) VALUES (?, 'user', 'x', ?)",
        (KEY, ts),
    )
    SqliteBackend(db, journal=Journal()).compact(KEY)
    daemon.execute(
        "INSERT INTO session_metadata (session_key, created_at, last_activity, message_count)"
        " VALUES (?1, ?2, ?2, 1) ON CONFLICT(session_key) DO UPDATE SET"
        " last_activity = excluded.last_activity, message_count = message_count + 1",
        (KEY, ts),
    )
    daemon.close()
    ((count, rows),) = sql(
        db,
        "SELECT message_count, (SELECT COUNT(*) FROM sessions WHERE session_key = ?1)"
        " FROM session_metadata WHERE session_key = ?1",
        (KEY,),
    )
    assert count == rows == 21


def test_compact_still_repairs_real_drift(tmp_path: Path) -> None:
    db = seeded_store(tmp_path / "data")
    sql(db, "UPDATE session_metadata SET message_count = 3 WHERE session_key = ?", (KEY,))
    report = SqliteBackend(db, journal=Journal()).compact(KEY)
    assert f"{KEY}: message_count 3 → 20" in report.warnings
    ((count,),) = sql(db, "SELECT message_count FROM session_metadata")
    assert count == 20
