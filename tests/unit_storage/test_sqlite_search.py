"""Message-level search: FTS5 pages newest first, exact session indexes, scoping, cancel."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from storage.models import ChatMessage
from storage.sqlite import SqliteBackend
from tests.unit_storage.sqlite_helpers import TS, make_seed_era_db, open_store, sql


def build(tmp_path: Path, rows: list[tuple[str, str, str, str]]) -> tuple[Path, SqliteBackend]:
    db = tmp_path / "sessions.db"
    make_seed_era_db(db, rows)
    return db, open_store(db, tmp_path)


def interleaved(n: int) -> list[tuple[str, str, str, str]]:
    keys = ["gw_live_01", "gw_live_01_x", "slack_T1"]
    return [
        (keys[i % 3], "user", f"row {i} " + ("needle " if i % 2 == 0 else "hay "), TS)
        for i in range(n)
    ]


def expected_hits(
    rows: list[tuple[str, str, str, str]], word: str, key: str | None = None
) -> list[tuple[str, int]]:
    seen: dict[str, int] = {}
    found: list[tuple[str, int]] = []
    for k, _, content, _ in rows:
        idx = seen.get(k, 0)
        seen[k] = idx + 1
        if word in content.split() and key in (None, k):
            found.append((k, idx))
    return found[::-1]


def test_pages_are_newest_first_with_exact_indexes(tmp_path: Path) -> None:
    rows = interleaved(900)
    _, store = build(tmp_path, rows)
    hits = list(store.search_messages("needle", limit=400))
    assert [(h.key, h.index) for h in hits] == expected_hits(rows, "needle")[:400]
    assert all(h.snippet[s:e] == "needle" for h in hits for s, e in h.spans)
    every = list(store.search_messages("needle", limit=10_000))
    assert len(every) == 450


def test_scoped_search_keeps_to_the_exact_key(tmp_path: Path) -> None:
    rows = interleaved(300)
    _, store = build(tmp_path, rows)
    for key in ("gw_live_01", "gw_live_01_x", "slack_T1"):
        hits = list(store.search_messages("needle", key=key, limit=1000))
        assert [(h.key, h.index) for h in hits] == expected_hits(rows, "needle", key)
    assert list(store.search_messages("needle", key="nobody")) == []


def test_scan_fallback_agrees_with_fts(tmp_path: Path) -> None:
    rows = interleaved(700)
    db, store = build(tmp_path, rows)
    with_fts = [(h.key, h.index, h.spans) for h in store.search_messages("needle row", limit=300)]
    for statement in (
        "DROP TRIGGER sessions_ai",
        "DROP TRIGGER sessions_ad",
        "DROP TABLE sessions_fts",
    ):
        sql(db, statement)
    plain = SqliteBackend(db, read_only=True, journal=store.journal)
    without = [(h.key, h.index, h.spans) for h in plain.search_messages("needle row", limit=300)]
    assert with_fts == without


def test_cancel_stops_between_hits(tmp_path: Path) -> None:
    _, store = build(tmp_path, interleaved(600))
    cancel = threading.Event()
    got = []
    for hit in store.search_messages("needle", cancel=cancel, limit=1000):
        got.append(hit)
        if len(got) == 5:
            cancel.set()
    assert len(got) == 5


def test_huge_token_gives_a_short_snippet(tmp_path: Path) -> None:
    blob = "[IMAGE:data:image/png;base64," + "A" * 200_000 + "]"
    _, store = build(tmp_path, [("k", "user", "look needle " + blob, TS)])
    (hit,) = store.search_messages("needle")
    assert len(hit.snippet) < 400
    assert [hit.snippet[s:e] for s, e in hit.spans] == ["needle"]


def test_hostile_queries_never_raise(tmp_path: Path) -> None:
    _, store = build(tmp_path, interleaved(20))
    for text in [
        '"',
        "(",
        "NOT needle",
        "needle OR",
        "-needle",
        "col:needle",
        "^needle",
        "*",
        "\x00",
        "NEAR(a b)",
    ]:
        list(store.search_messages(text))
        store.search(text)


def test_first_page_is_fast_on_a_large_store(tmp_path: Path) -> None:
    """A word in half of 100k rows: the first page comes without ranking every match."""
    db = tmp_path / "sessions.db"
    make_seed_era_db(db, [])
    conn_rows = [
        ("big", "user", f"m {i} " + ("common" if i % 2 else "rare"), TS) for i in range(100_000)
    ]
    import sqlite3

    conn = sqlite3.connect(db)
    conn.executemany(
        "INSERT INTO sessions (session_key, role, content, created_at) VALUES (?, ?, ?, ?)",
        conn_rows,
    )
    conn.commit()
    conn.close()
    store = open_store(db, tmp_path, read_only=True)
    started = time.perf_counter()
    first = next(iter(store.search_messages("common", key="big")))
    elapsed = time.perf_counter() - started
    assert first.index == 99_999
    assert elapsed < 0.5
    started = time.perf_counter()
    tail = store.read_tail("big", 50)
    assert tail.first_index == 99_950 and time.perf_counter() - started < 0.5


@pytest.mark.parametrize("query", ["needle", '"row 4"', "nee*"])
def test_hits_carry_created_at_and_row_id(tmp_path: Path, query: str) -> None:
    _, store = build(tmp_path, interleaved(10))
    store.append("gw_live_01", ChatMessage(role="assistant", content="row 4 needle again"))
    hit = next(iter(store.search_messages(query)))
    assert hit.row_id == 11 and hit.created_at is not None and hit.backend == "sqlite"
