"""Pure pieces of the browser: list labels, sorting, filtering, snippets, dialog warnings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storage.errors import StorageError
from storage.models import EditReport, RemovedMessage, SearchHit, SessionMetadata
from tui.app import describe_error, edit_summary, export_folder, export_name
from tui.screens.confirm import DAEMON_NOTE, confirm_plan, removal_lines, risk_warnings
from tui.widgets.header import HeaderInfo, header_text, short_path
from tui.widgets.search_pane import MATCH_STYLE, highlighted_snippet, hit_text
from tui.widgets.session_list import (
    SessionRow,
    badges,
    make_row,
    matches,
    relative_time,
    sort_rows,
    source_label,
)

NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)


def meta(key: str, **kw: object) -> SessionMetadata:
    return SessionMetadata(key=key, backend=kw.pop("backend", "sqlite"), **kw)


def stamp(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).isoformat()


@pytest.mark.parametrize(
    ("m", "label"),
    [
        (meta("gw_abc"), "gateway"),
        (meta("rpc_1234-uuid"), "rpc"),
        (meta("slack_T01_C02_frank", channel_id="slack.work"), "slack.work"),
        (meta("telegram_100200300"), "telegram"),
        (meta("matrix_room_!abc:example.org_dave"), "matrix"),
        (meta("nounderscore"), "-"),
    ],
)
def test_source_label(m: SessionMetadata, label: str) -> None:
    assert source_label(m) == label


@pytest.mark.parametrize(
    ("ago", "text"),
    [
        (2, "now"),
        (42, "42s ago"),
        (300, "5m ago"),
        (7200, "2h ago"),
        (3 * 86400, "3d ago"),
        (15 * 86400, "2w ago"),
    ],
)
def test_relative_time(ago: int, text: str) -> None:
    assert relative_time(NOW - timedelta(seconds=ago), NOW) == text
    assert relative_time(None, NOW) == "-"


def test_sorts_by_activity_name_and_count() -> None:
    rows = [
        make_row(meta("b", last_activity=stamp(10), message_count=5)),
        make_row(meta("a", last_activity=stamp(100), message_count=50, name="zeta")),
        make_row(meta("c", last_activity=stamp(1), message_count=None, backend="jsonl")),
    ]
    assert [r.meta.key for r in sort_rows(rows, "activity")] == ["c", "b", "a"]
    assert [r.meta.key for r in sort_rows(rows, "name")] == ["b", "c", "a"]  # "zeta" sorts last
    assert [r.meta.key for r in sort_rows(rows, "count")] == ["a", "b", "c"]


def test_activity_sort_uses_times_not_strings() -> None:
    # 9 fraction digits vs none: string order and time order disagree here.
    early = make_row(meta("early", last_activity="2026-03-20T11:59:59.900000000+00:00"))
    late = make_row(meta("late", last_activity="2026-03-20T12:00:00+00:00"))
    assert [r.meta.key for r in sort_rows([early, late], "activity")] == ["late", "early"]


def test_filter_matches_name_key_source_and_sender() -> None:
    row = make_row(meta("slack_T01_C02_frank", channel_id="slack.work", name="Release Notes"))
    assert matches(row, "release")
    assert matches(row, "frank")
    assert matches(row, "slack.work")
    assert not matches(row, "telegram")
    assert matches(row, "")


def test_a_fresh_listing_without_counts_keeps_the_old_count_as_stale() -> None:
    first = make_row(meta("x", backend="jsonl", message_count=None))
    assert first.count is None and not first.stale
    counted = SessionRow(first.ref, first.meta, 7, first.activity)
    again = make_row(meta("x", backend="jsonl", message_count=None), counted)
    assert again.count == 7 and again.stale


def test_badges_running_stuck_error_unreadable() -> None:
    running = make_row(meta("r", state="running", turn_started_at=stamp(30)))
    stuck = make_row(meta("s", state="running", turn_started_at=stamp(3600)))
    error = make_row(meta("e", state="error"))
    bad = make_row(meta("u", backend="jsonl", has_unreadable=True))
    assert [b for b, _ in badges(running, 600, NOW)] == ["running"]
    assert [b for b, _ in badges(stuck, 600, NOW)] == ["stuck"]
    assert [b for b, _ in badges(error, 600, NOW)] == ["error"]
    assert [b for b, _ in badges(bad, 600, NOW)] == ["unreadable lines"]


def test_snippet_highlights_spans_and_shows_controls() -> None:
    text = highlighted_snippet("a \x1b[31mred\x1b[0m match here", [(15, 20)])
    assert text.plain == "a ␛[31mred␛[0m match here"
    marked = [text.plain[s.start : s.end] for s in text.spans if s.style == MATCH_STYLE]
    assert marked == ["match"]


def test_hit_text_is_literal() -> None:
    hit = SearchHit(
        key="k", index=3, role="user", snippet="[bold red]x[/] y", spans=((0, 3),), backend="jsonl"
    )
    assert hit_text(hit).plain == "k #3 user: [bold red]x[/] y"


def test_header_shows_modes_and_the_literal_path() -> None:
    info = HeaderInfo("/tmp/[red]x[/]/sessions", ("sqlite", "jsonl"), demo=True, read_only=True)
    plain = header_text(info, "● live", 3).plain
    for part in ("DEMO", "READ-ONLY", "/tmp/[red]x[/]/sessions", "[sqlite + jsonl]", "3 sessions"):
        assert part in plain


def test_short_path_uses_tilde_and_cuts_from_the_left() -> None:
    assert short_path("/home/ann/.zeroclaw/data/sessions", 80, "/home/ann") == (
        "~/.zeroclaw/data/sessions"
    )
    assert short_path("/very/long/path/to/data/sessions", 14, "/home/ann") == "…data/sessions"
    assert short_path("/srv/\x1b[31m/sessions", 80, "/home/ann") == "/srv/␛[31m/sessions"


def report(n: int) -> EditReport:
    removed = tuple(RemovedMessage(index=i, role="user", content=f"m{i}\nline") for i in range(n))
    return EditReport(action="rollback", key="k", backend="sqlite", removed=removed, dry_run=True)


def test_removal_lines_list_every_message_on_one_line() -> None:
    lines = [t.plain for t in removal_lines(report(3))]
    assert lines == ["#0 user: m0↵line", "#1 user: m1↵line", "#2 user: m2↵line"]
    assert removal_lines(report(5), limit=2)[-1].plain == "… and 3 more"


def test_warnings_for_running_and_recent_sessions() -> None:
    assert risk_warnings(meta("k", state="running"), NOW)[1] == DAEMON_NOTE
    recent = risk_warnings(meta("k", last_activity=stamp(3)), NOW)
    assert "3s ago" in recent[0]
    assert risk_warnings(meta("k", last_activity=stamp(3600)), NOW) == ()
    plan = confirm_plan("rollback", "k", report(2), meta=None, now=NOW, start=4)
    assert plan.question == "Remove these 2 message(s) (#4 and everything after it) from k?"


def test_export_folder_never_inside_sessions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions = tmp_path / "data" / "sessions"
    sessions.mkdir(parents=True)
    monkeypatch.chdir(sessions)
    assert export_folder(sessions) == Path.home()
    assert export_folder(sessions, tmp_path) == tmp_path


def test_errors_are_one_line() -> None:
    assert describe_error(StorageError("bad\nthing")) == "bad thing"
    assert describe_error(ValueError("x\ny")) == "unexpected ValueError: x↵y"


def test_the_edit_summary_promises_undo_only_when_the_edit_was_journalled() -> None:
    removed = (RemovedMessage(index=3, role="user", content="x"),)
    kept = EditReport(action="rollback", key="k", backend="jsonl", removed=removed, journal_id="j1")
    assert edit_summary(kept) == "rollback k: removed 1 message(s) — ctrl+z undoes it"
    nothing = EditReport(action="compact", key="k", backend="sqlite")
    assert edit_summary(nothing) == "compact k: removed 0 message(s)"


def test_export_names_stay_short_and_distinct_for_long_keys() -> None:
    moment = datetime(2026, 3, 20, 12, 0, 5, tzinfo=UTC)
    assert export_name("telegram_42", moment) == "telegram_42-20260320-120005.md"
    a, b = export_name("k" * 300, moment), export_name("k" * 299 + "j", moment)
    assert a != b and len(a.encode()) < 100 and len(b.encode()) < 100
    assert a.startswith("k" * 64 + "-") and a.endswith("-20260320-120005.md")
