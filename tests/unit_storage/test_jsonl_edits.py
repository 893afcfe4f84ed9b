"""Edits of JSONL sessions: byte-exact cuts, compaction, deletes, and undo from the journal."""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from storage.errors import ReadOnlyError, SessionChangedError, StorageError
from storage.journal import Journal, JournalEntry
from storage.jsonl import NAMES_FILE, JsonlBackend
from storage.models import ChatMessage
from tests.unit_storage.conftest import JsonlKit

UNKNOWN = b'{"role":"user","content":"kept as is","meta":{"x":[1,2]}}\n'


@pytest.fixture
def mixed(kit: JsonlKit) -> Path:
    """m0 m1, an unknown-field line (message 2), corrupt and blank lines, then m3 .. m7."""
    head = kit.lines(2) + UNKNOWN + b"{corrupt\n" + b"\n"
    tail = b"".join(kit.line(f"m{i}", ("user", "assistant")[i % 2]) for i in range(3, 8))
    return kit.write("mixed", head + tail)


def offset_of(jsonl: JsonlBackend, key: str, index: int) -> int:
    [msg] = jsonl.read_range(key, index, index + 1)
    assert msg.offset is not None
    return msg.offset


def contents(jsonl: JsonlBackend, key: str) -> list[str]:
    return [m.content for m in jsonl.load(key)]


def test_rollback_cuts_and_keeps_every_byte_in_front(jsonl: JsonlBackend, mixed: Path) -> None:
    before = mixed.read_bytes()
    cut = offset_of(jsonl, "mixed", 5)
    report = jsonl.rollback("mixed", 5)
    assert mixed.read_bytes() == before[:cut]
    assert [(m.index, m.content) for m in report.removed] == [(5, "m5"), (6, "m6"), (7, "m7")]
    assert report.journal_id is not None and not report.dry_run
    entry = jsonl.journal.get(report.journal_id)
    assert entry.status == "done" and jsonl.journal.blob(entry) == before[cut:]
    assert entry.payload["offset"] == cut and entry.payload["size"] == len(before)
    assert contents(jsonl, "mixed") == ["m0", "m1", "kept as is", "m3", "m4"]


def test_rollback_reports_unreadable_lines_it_removes(jsonl: JsonlBackend, mixed: Path) -> None:
    report = jsonl.rollback("mixed", 3)
    assert [m.content for m in report.removed] == ["m3", "m4", "m5", "m6", "m7"]
    assert mixed.read_bytes().endswith(b"\n\n")  # the corrupt and blank lines lie before m3
    report = jsonl.rollback("mixed", 2)
    assert [(s.line, s.reason) for s in report.removed_lines] == [(4, "not JSON"), (5, "blank")]
    assert [m.content for m in report.removed] == ["kept as is"]


def test_rollback_dry_run_changes_nothing(jsonl: JsonlBackend, mixed: Path) -> None:
    before = mixed.read_bytes()
    report = jsonl.rollback("mixed", 6, dry_run=True)
    assert report.dry_run and [m.index for m in report.removed] == [6, 7]
    assert mixed.read_bytes() == before and report.journal_id is None
    assert jsonl.journal.entries() == []


def test_rollback_refuses_when_the_count_changed(jsonl: JsonlBackend, mixed: Path) -> None:
    before = mixed.read_bytes()
    with pytest.raises(SessionChangedError, match="would now remove 3 messages, not 2"):
        jsonl.rollback("mixed", 5, expected=2)
    assert mixed.read_bytes() == before and jsonl.journal.entries() == []
    assert len(jsonl.rollback("mixed", 5, expected=3).removed) == 3


def append_raw(path: Path, data: bytes) -> None:
    with path.open("ab") as f:
        f.write(data)


def daemon_during_journal_write(
    jsonl: JsonlBackend, monkeypatch: pytest.MonkeyPatch, write: Callable[[int], None]
) -> None:
    """Run ``write(call_number)`` right after each journal write, as a busy daemon would."""
    real = jsonl.journal.begin
    calls: list[int] = []

    def begin(**kwargs: Any) -> JournalEntry:
        entry = real(**kwargs)
        write(len(calls))
        calls.append(1)
        return entry

    monkeypatch.setattr(jsonl.journal, "begin", begin)


def test_rollback_takes_what_the_daemon_appended_meanwhile(
    jsonl: JsonlBackend, mixed: Path, kit: JsonlKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = mixed.read_bytes()
    cut = offset_of(jsonl, "mixed", 6)
    daemon_during_journal_write(jsonl, monkeypatch, lambda n: append_raw(mixed, kit.line("late")))
    report = jsonl.rollback("mixed", 6)
    assert report.retries == 0 and [m.content for m in report.removed] == ["m6", "m7", "late"]
    assert mixed.read_bytes() == before[:cut]
    assert report.journal_id is not None
    entry = jsonl.journal.get(report.journal_id)
    assert jsonl.journal.blob(entry) == before[cut:] + kit.line("late")
    jsonl.restore(report.journal_id)
    assert mixed.read_bytes() == before + kit.line("late")


def test_rollback_with_expected_count_refuses_after_growth(
    jsonl: JsonlBackend, mixed: Path, kit: JsonlKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon_during_journal_write(
        jsonl, monkeypatch, lambda n: append_raw(mixed, kit.line(f"late{n}"))
    )
    with pytest.raises(SessionChangedError, match="would now remove 3 messages, not 2"):
        jsonl.rollback("mixed", 6, expected=2)
    assert contents(jsonl, "mixed")[-3:] == ["m6", "m7", "late0"]
    assert jsonl.journal.entries() == []


def test_replaced_file_makes_the_cut_start_again(
    jsonl: JsonlBackend, mixed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def replace_once(n: int) -> None:
        if n == 0:
            tmp = mixed.with_name("tmp")
            tmp.write_bytes(mixed.read_bytes())
            os.replace(tmp, mixed)

    daemon_during_journal_write(jsonl, monkeypatch, replace_once)
    report = jsonl.rollback("mixed", 7)
    assert report.retries == 1 and [m.content for m in report.removed] == ["m7"]
    assert len(jsonl.journal.entries()) == 1  # the first attempt's entry was discarded


def test_remove_last_does_not_take_a_message_that_arrived_meanwhile(
    jsonl: JsonlBackend, mixed: Path, kit: JsonlKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon_during_journal_write(
        jsonl,
        monkeypatch,
        lambda n: append_raw(mixed, kit.line("late")) if n == 0 else None,
    )
    report = jsonl.remove_last("mixed")
    assert report.retries == 1 and [m.content for m in report.removed] == ["late"]
    assert contents(jsonl, "mixed")[-1] == "m7"


def test_rollback_rejects_bad_indexes(jsonl: JsonlBackend, mixed: Path) -> None:
    with pytest.raises(StorageError, match="index 8 is not in session 'mixed' \\(it has 8"):
        jsonl.rollback("mixed", 8)
    with pytest.raises(StorageError):
        jsonl.rollback("mixed", -1)


def test_remove_last_and_update_last(jsonl: JsonlBackend, mixed: Path, kit: JsonlKit) -> None:
    before = mixed.read_bytes()
    report = jsonl.remove_last("mixed")
    assert [m.content for m in report.removed] == ["m7"]
    assert mixed.read_bytes() == before[: -len(kit.line("m7", "assistant"))]
    report = jsonl.update_last("mixed", ChatMessage(role="assistant", content="new six"))
    assert [m.content for m in report.removed] == ["m6"]
    assert mixed.read_bytes() == before[: before.index(b'{"role":"user","content":"m6"}')] + (
        kit.line("new six", "assistant")
    )
    assert jsonl.remove_last("empty").removed == ()


def test_clear_then_undo(jsonl: JsonlBackend, mixed: Path) -> None:
    before = mixed.read_bytes()
    report = jsonl.clear_messages("mixed")
    assert mixed.read_bytes() == b"" and len(report.removed) == 8
    assert report.journal_id is not None
    jsonl.restore(report.journal_id)
    assert mixed.read_bytes() == before
    assert jsonl.journal.get(report.journal_id).status == "undone"
    with pytest.raises(StorageError, match="undone already"):
        jsonl.restore(report.journal_id)


def test_undo_after_rollback_restores_every_byte(jsonl: JsonlBackend, mixed: Path) -> None:
    before = mixed.read_bytes()
    report = jsonl.rollback("mixed", 1)
    assert report.journal_id is not None
    undo = jsonl.restore(report.journal_id)
    assert mixed.read_bytes() == before and undo.warnings == ()


def test_undo_after_growth_reinserts_at_the_old_place(
    jsonl: JsonlBackend, mixed: Path, kit: JsonlKit
) -> None:
    before = mixed.read_bytes()
    mode = 0o640
    mixed.chmod(mode)
    report = jsonl.rollback("mixed", 6)
    assert report.journal_id is not None
    jsonl.append("mixed", ChatMessage(role="user", content="after"))
    undo = jsonl.restore(report.journal_id)
    assert mixed.read_bytes() == before + kit.line("after")
    assert "put back at their old place" in undo.warnings[0]
    assert stat.S_IMODE(mixed.stat().st_mode) == mode
    assert not [p for p in kit.sessions.iterdir() if ".tmp" in p.name]


def test_undo_of_update_last(jsonl: JsonlBackend, mixed: Path) -> None:
    before = mixed.read_bytes()
    report = jsonl.update_last("mixed", ChatMessage(role="assistant", content="edited"))
    assert report.journal_id is not None
    jsonl.restore(report.journal_id)
    assert mixed.read_bytes() == before


def test_compact_drops_unreadable_lines_only(jsonl: JsonlBackend, kit: JsonlKit) -> None:
    glued = kit.line("g1").rstrip(b"\n") + kit.line("g2", "assistant")
    torn = kit.line("old torn").rstrip(b"\n")[:-5]
    path = kit.write(
        "c", kit.lines(2) + UNKNOWN + b"{bad\n" + glued + b"  \n" + kit.lines(2, "z") + torn
    )
    old = time.time() - 60
    os.utime(path, (old, old))
    path.chmod(0o640)
    before = path.read_bytes()
    report = jsonl.compact("c")
    assert path.read_bytes() == kit.lines(2) + UNKNOWN + kit.lines(2, "z")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    reasons = [s.reason for s in report.removed_lines]
    assert reasons == ["not JSON", "glued objects (2 messages)", "blank", "torn last line"]
    assert [m.content for m in report.removed_lines[1].recovered] == ["g1", "g2"]
    assert report.removed == () and report.journal_id is not None
    assert sorted(p.name for p in kit.sessions.iterdir() if p.name.startswith(".")) == []
    jsonl.restore(report.journal_id)
    assert path.read_bytes() == before


def test_compact_leaves_a_fresh_torn_line(jsonl: JsonlBackend, kit: JsonlKit) -> None:
    torn = kit.line("being written").rstrip(b"\n")[:-3]
    path = kit.write("c", kit.lines(2) + b"{bad\n" + kit.lines(1, "z") + torn)
    report = jsonl.compact("c")
    assert path.read_bytes() == kit.lines(2) + kit.lines(1, "z") + torn
    assert "may still be writing it" in report.warnings[0]
    assert [s.reason for s in report.removed_lines] == ["not JSON"]


def test_compact_of_a_clean_session_writes_nothing(jsonl: JsonlBackend) -> None:
    path = jsonl.sessions_dir / "discord_guild42_ch7_erin.jsonl"
    ino = path.stat().st_ino
    report = jsonl.compact("discord_guild42_ch7_erin")
    assert report.removed_lines == () and report.journal_id is None
    assert path.stat().st_ino == ino


def test_compact_dry_run(jsonl: JsonlBackend, sessions: Path) -> None:
    before = (sessions / "telegram_100200300.jsonl").read_bytes()
    report = jsonl.compact("telegram_100200300", dry_run=True)
    assert [s.line for s in report.removed_lines] == [10] and report.dry_run
    assert (sessions / "telegram_100200300.jsonl").read_bytes() == before


def test_delete_then_undo(jsonl: JsonlBackend, sessions: Path) -> None:
    path = sessions / "telegram_100200300.jsonl"
    path.chmod(0o600)
    before = path.read_bytes()
    jsonl.set_session_name("telegram_100200300", "garden")
    report = jsonl.delete_session("telegram_100200300")
    assert not path.exists() and len(report.removed) == 10
    assert jsonl.get_session_name("telegram_100200300") is None
    assert "telegram_100200300" not in jsonl.list_sessions()
    assert report.journal_id is not None
    jsonl.restore(report.journal_id)
    assert path.read_bytes() == before and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert jsonl.get_session_name("telegram_100200300") == "garden"


def make_db(sessions: Path, sql: str) -> None:
    con = sqlite3.connect(sessions / "sessions.db")
    con.executescript(sql)
    con.commit()
    con.close()


def test_undo_of_delete_refuses_beside_a_used_sqlite_store(
    jsonl: JsonlBackend, sessions: Path
) -> None:
    report = jsonl.delete_session("gw_a1b2c3")
    make_db(
        sessions,
        "CREATE TABLE sessions (id INTEGER PRIMARY KEY, session_key TEXT, role TEXT,"
        " content TEXT, created_at TEXT); INSERT INTO sessions VALUES (1,'k','user','x','t');",
    )
    assert report.journal_id is not None
    with pytest.raises(StorageError, match="ZeroClaw may refuse to open its store"):
        jsonl.restore(report.journal_id)
    assert not (sessions / "gw_a1b2c3.jsonl").exists()
    with pytest.raises(StorageError, match="in use"):
        jsonl.append("brand_new", ChatMessage(role="user", content="x"))
    jsonl.append("empty", ChatMessage(role="user", content="existing files are fine"))


def test_import_receipts_make_the_store_refuse_writes(jsonl: JsonlBackend, sessions: Path) -> None:
    make_db(
        sessions,
        "CREATE TABLE jsonl_import_receipts (source_name TEXT PRIMARY KEY, session_key TEXT,"
        " source_hash TEXT, source_len INTEGER, imported_at TEXT);"
        " INSERT INTO jsonl_import_receipts VALUES ('a.jsonl','a','h',1,'t');",
    )
    edits: list[Callable[[], object]] = [
        lambda: jsonl.rollback("gw_a1b2c3", 3),
        lambda: jsonl.append("gw_a1b2c3", ChatMessage(role="user", content="x")),
        lambda: jsonl.compact("telegram_100200300"),
        lambda: jsonl.delete_session("empty"),
    ]
    for edit in edits:
        with pytest.raises(StorageError, match="jsonl_import_receipts"):
            edit()
    assert len(jsonl.rollback("gw_a1b2c3", 3, dry_run=True).removed) == 28


def test_cleanup_stale_deletes_old_sessions_with_a_journal(
    jsonl: JsonlBackend, sessions: Path
) -> None:
    now, old = time.time(), time.time() - 3 * 3600
    for key in ("discord_guild42_ch7_erin", "telegram_100200300"):
        os.utime(sessions / f"{key}.jsonl", (now, now))  # the fixture copy keeps its own mtimes
    for key in ("empty", "gw_a1b2c3"):
        os.utime(sessions / f"{key}.jsonl", (old, old))
    assert jsonl.cleanup_stale(2) == ["empty", "gw_a1b2c3"]
    assert jsonl.list_sessions() == ["discord_guild42_ch7_erin", "telegram_100200300"]
    assert sorted(e.key for e in jsonl.journal.entries()) == ["empty", "gw_a1b2c3"]


def test_pending_entry_whose_edit_never_happened_is_discarded(
    jsonl: JsonlBackend, mixed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = mixed.read_bytes()

    def crash(fd: int, length: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "ftruncate", crash)
    with pytest.raises(StorageError, match="Input/output error"):
        jsonl.rollback("mixed", 4)
    monkeypatch.undo()
    [entry] = jsonl.journal.entries()
    assert entry.status == "pending" and mixed.read_bytes() == before
    report = jsonl.restore(entry.id)
    assert "nothing to undo" in report.warnings[0]
    assert jsonl.journal.entries() == [] and mixed.read_bytes() == before


def test_pending_entry_whose_edit_happened_is_undone(
    jsonl: JsonlBackend, mixed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = mixed.read_bytes()

    def crash(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(jsonl.journal, "set_status", crash)
    with pytest.raises(StorageError):
        jsonl.rollback("mixed", 4)
    monkeypatch.undo()
    [entry] = jsonl.journal.entries()
    assert entry.status == "pending" and mixed.read_bytes() != before
    jsonl.restore(entry.id)
    assert mixed.read_bytes() == before


def test_restore_refuses_entries_of_another_store(
    jsonl: JsonlBackend, mixed: Path, tmp_path: Path, journal: Journal
) -> None:
    report = jsonl.rollback("mixed", 7)
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    other = JsonlBackend(other_dir, journal=journal)
    assert report.journal_id is not None
    with pytest.raises(StorageError, match="belongs to another store"):
        other.restore(report.journal_id)


def test_read_only_never_writes_a_byte(sessions: Path, tmp_path: Path, kit: JsonlKit) -> None:
    kit.write("mixed", kit.lines(3) + b"{bad\n" + kit.lines(2, "z"))
    state = tmp_path / "ro-state"
    backend = JsonlBackend(sessions, read_only=True, journal=Journal(state))
    before = kit.digest(sessions.parent)
    assert backend.count_messages("mixed") == 5 and backend.load("gw_a1b2c3")
    backend.read_tail("mixed", 2)
    backend.changes_since("mixed", 0)
    backend.skipped_lines("telegram_100200300")
    list(backend.search_messages("m1"))
    backend.search("m1")
    backend.get_session_metadata("mixed")
    assert len(backend.rollback("mixed", 1, dry_run=True).removed) == 4
    edits: list[Callable[[], object]] = [
        lambda: backend.rollback("mixed", 1),
        lambda: backend.remove_last("mixed"),
        lambda: backend.update_last("mixed", ChatMessage(role="user", content="x")),
        lambda: backend.clear_messages("mixed"),
        lambda: backend.compact("mixed"),
        lambda: backend.delete_session("mixed"),
        lambda: backend.cleanup_stale(0),
        lambda: backend.append("mixed", ChatMessage(role="user", content="x")),
        lambda: backend.set_session_name("mixed", "n"),
        lambda: backend.restore("20260101T000000000000-abcdef"),
    ]
    for edit in edits:
        with pytest.raises(ReadOnlyError):
            edit()
    assert kit.digest(sessions.parent) == before
    assert not state.exists() and not (sessions / NAMES_FILE).exists()
