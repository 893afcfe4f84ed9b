"""Reading the stores real ZeroClaw wrote gives exactly what ZeroClaw itself read back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from storage.models import SessionMetadata, SessionState
from storage.sqlite import SqliteBackend
from tests.helpers import FIXTURES, expected
from tests.unit_storage.sqlite_helpers import fixture_sessions, open_store, sql, tree_digest

NAMES = ["sqlite-workspace", "sqlite-seed-era-workspace"]


def fields(metas: list[SessionMetadata], want: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Our records cut down to the fields ZeroClaw reports (it has no state in its list)."""
    return [{k: getattr(m, k) for k in w} for m, w in zip(metas, want, strict=False)]


@pytest.fixture(params=NAMES)
def case(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[SqliteBackend, dict[str, Any]]:
    sessions = fixture_sessions(request.param, tmp_path)
    store = open_store(sessions / "sessions.db", tmp_path)
    request.addfinalizer(store.close)
    return store, expected(request.param)


def test_list(case: tuple[SqliteBackend, dict[str, Any]]) -> None:
    store, exp = case
    assert store.list_sessions() == exp["list"]


def test_list_meta(case: tuple[SqliteBackend, dict[str, Any]]) -> None:
    store, exp = case
    metas = store.list_sessions_with_metadata()
    want = exp.get("list_meta")
    if want is None:
        assert [m.key for m in metas] == exp["list"]
        return
    assert len(metas) == len(want)
    assert fields(metas, want) == want


def test_load_and_load_ts(case: tuple[SqliteBackend, dict[str, Any]]) -> None:
    store, exp = case
    for key, messages in exp.get("load", {}).items():
        assert [{"role": m.role, "content": m.content} for m in store.load(key)] == messages
    for key, messages in exp.get("load_ts", {}).items():
        got = [
            {"role": m.role, "content": m.content, "created_at": m.created_at}
            for m in store.load_with_timestamps(key)
        ]
        assert got == messages
        assert [m.index for m in store.load_with_timestamps(key)] == list(range(len(messages)))


def test_names(case: tuple[SqliteBackend, dict[str, Any]]) -> None:
    store, exp = case
    for key, name in exp.get("names", {}).items():
        assert store.get_session_name(key) == name


def test_running(case: tuple[SqliteBackend, dict[str, Any]]) -> None:
    store, exp = case
    want = exp.get("running", [])
    running = store.list_running_sessions()
    assert len(running) == len(want)
    assert fields(running, want) == want


def test_zeroclaw_search(case: tuple[SqliteBackend, dict[str, Any]]) -> None:
    store, exp = case
    for query, want in exp.get("search", {}).items():
        got = store.search(query)
        assert [m.key for m in got] == [w["key"] for w in want]
        assert fields(got, want) == want
    assert store.search('say "hi"') == []  # ZeroClaw's syntax error: nothing


def test_fixture_tail_matches_load(case: tuple[SqliteBackend, dict[str, Any]]) -> None:
    store, exp = case
    for key in exp["list"]:
        full = store.load_with_timestamps(key)
        tail = store.read_tail(key, 3)
        assert list(tail.messages) == full[-3:]
        assert tail.first_index == len(full) - len(tail.messages)
        assert store.count_messages(key) == len(full)
        assert store.read_range(key, 1, 4) == full[1:4]
        assert store.skipped_lines(key) == []


@pytest.mark.parametrize("name", NAMES)
def test_reading_the_fixture_in_place_changes_nothing(name: str, tmp_path: Path) -> None:
    sessions = FIXTURES / name / "sessions"
    before = tree_digest(sessions)
    store = open_store(sessions / "sessions.db", tmp_path, read_only=True)
    exp = expected(name)
    assert store.list_sessions() == exp["list"]
    for key in exp["list"]:
        store.load_with_timestamps(key)
        store.read_tail(key, 2)
        store.changes_since(key, 0)
    list(store.search_messages("question"))
    store.search("question")
    store.list_stuck_sessions(0)
    store.close()
    assert tree_digest(sessions) == before


def test_stuck_sessions_compare_times(tmp_path: Path) -> None:
    sessions = fixture_sessions("sqlite-workspace", tmp_path)
    store = open_store(sessions / "sessions.db", tmp_path)
    # The fixture's running turn started in November 2026.
    assert [m.key for m in store.list_stuck_sessions(0)] in ([], ["gw_live_01"])
    assert store.list_stuck_sessions(10 * 365 * 86400) == []
    store.set_session_state("gw_named_02", SessionState.running, "t-2")
    assert next(m.key for m in store.list_running_sessions()) == "gw_named_02"
    sql(
        sessions / "sessions.db",
        "UPDATE session_metadata SET turn_started_at = ? WHERE session_key = 'gw_named_02'",
        ("2020-01-01T00:00:00+00:00",),
    )
    assert next(m.key for m in store.list_stuck_sessions(60)) == "gw_named_02"
    store.close()
