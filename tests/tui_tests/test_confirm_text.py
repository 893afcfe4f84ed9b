"""What the confirm dialog promises matches what the edit and its undo can do."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from storage.models import EditReport, SkippedLine
from tui.screens.confirm import DB_IN_USE_NOTE, UNDO_NOTE, confirm_plan, undo_blocked_note

NOW = datetime(2026, 3, 20, tzinfo=UTC)


def bad_line() -> SkippedLine:
    return SkippedLine(line=3, offset=40, length=5, reason="not JSON", preview="{bad")


def test_jsonl_compact_asks_about_lines_not_messages() -> None:
    report = EditReport(action="compact", key="k", backend="jsonl", removed_lines=(bad_line(),))
    plan = confirm_plan("compact", "k", report, meta=None, now=NOW)
    assert plan.question == "Compact k: remove these 1 unreadable line(s)?"


def test_sqlite_compact_says_it_repairs() -> None:
    report = EditReport(action="compact", key="k", backend="sqlite")
    plan = confirm_plan("compact", "k", report, meta=None, now=NOW)
    assert "search index" in plan.question and "remove" not in plan.question


def test_deleting_a_jsonl_file_beside_a_database_does_not_promise_undo(tmp_path: Path) -> None:
    assert undo_blocked_note("delete", "jsonl", tmp_path) is None
    (tmp_path / "sessions.db").write_bytes(b"")
    note = undo_blocked_note("delete", "jsonl", tmp_path)
    assert note == DB_IN_USE_NOTE
    assert undo_blocked_note("delete", "sqlite", tmp_path) is None
    report = EditReport(action="delete", key="k", backend="jsonl")
    plan = confirm_plan("delete", "k", report, meta=None, now=NOW, undo_blocked=note)
    assert DB_IN_USE_NOTE in plan.notes and UNDO_NOTE not in plan.notes
