"""The demo workspace: ZeroClaw's schema, stable content, a writer that appends ZeroClaw-style."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from storage.journal import Journal
from storage.workspace import open_workspace
from tests.helpers import FIXTURES
from tui.demo import (
    DEMO_NOW,
    LIVE_JSONL,
    LIVE_SQLITE,
    DemoWriter,
    live_lines,
    make_demo_workspace,
)

FIXTURE_DB = FIXTURES / "sqlite-workspace" / "sessions" / "sessions.db"


def schema(db: Path) -> set[tuple[str, str]]:
    uri = f"file:{db}?mode=ro&immutable=1"
    with sqlite3.connect(uri, uri=True) as conn:
        rows = conn.execute("SELECT type, name FROM sqlite_master").fetchall()
    return {(t, n) for t, n in rows}


def rows(db: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        found = conn.execute("SELECT * FROM sessions ORDER BY id").fetchall()
        found += conn.execute("SELECT * FROM session_metadata ORDER BY session_key").fetchall()
    return found


def test_demo_has_zeroclaws_current_schema(tmp_path: Path) -> None:
    sessions = make_demo_workspace(tmp_path, now=DEMO_NOW)
    expected = schema(FIXTURE_DB) if FIXTURE_DB.exists() else set()
    assert schema(sessions / "sessions.db") >= expected
    assert ("trigger", "sessions_au") in schema(sessions / "sessions.db")
    with sqlite3.connect(sessions / "sessions.db") as conn:
        conn.execute("INSERT INTO sessions_fts(sessions_fts, rank) VALUES('integrity-check', 1)")


def test_demo_content_is_the_same_for_the_same_now(tmp_path: Path) -> None:
    a = make_demo_workspace(tmp_path / "a", now=DEMO_NOW)
    b = make_demo_workspace(tmp_path / "b", now=DEMO_NOW)
    assert rows(a / "sessions.db") == rows(b / "sessions.db")
    for path in sorted(a.glob("*.jsonl")):
        assert path.read_bytes() == (b / path.name).read_bytes()
        assert path.stat().st_mtime == (b / path.name).stat().st_mtime


def test_demo_opens_with_both_stores_and_its_damage(tmp_path: Path) -> None:
    make_demo_workspace(tmp_path, now=DEMO_NOW)
    ws = open_workspace(tmp_path, journal=Journal())
    try:
        assert [b.backend_name for b in ws.backends] == ["sqlite", "jsonl"]
        jsonl = ws.backend("jsonl")
        assert jsonl is not None
        reasons = [s.reason for s in jsonl.skipped_lines("discord_guild42_ch7_erin")]
        assert "not JSON" in reasons and any(r.startswith("glued") for r in reasons)
        image = jsonl.read_range(LIVE_JSONL, 2, 3)[0].content
        assert image.startswith("[IMAGE:data:image/png;base64,iVBORw0KGgo")
    finally:
        ws.close()


def test_live_lines_pair_questions_with_answers() -> None:
    stream = live_lines(seed=7)
    first = [next(stream) for _ in range(4)]
    assert [(t, r) for t, r, _ in first] == [
        ("jsonl", "user"),
        ("sqlite", "user"),
        ("jsonl", "assistant"),
        ("sqlite", "assistant"),
    ]
    step = first[1][2].removeprefix("Status of ").removesuffix("?")
    assert first[3][2].startswith(f"`{step}`")
    assert [next(live_lines(seed=7)) for _ in range(1)] == first[:1]


def test_writer_appends_to_both_stores_the_zeroclaw_way(tmp_path: Path) -> None:
    sessions = make_demo_workspace(tmp_path, now=DEMO_NOW)
    path = sessions / f"{LIVE_JSONL}.jsonl"
    size = path.stat().st_size
    writer = DemoWriter(sessions, interval=0.05)
    writer.start()
    deadline = time.monotonic() + 5
    while writer.written < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    writer.stop()
    assert writer.written >= 4
    added = path.read_bytes()[size:]
    assert added.startswith(b'{"role":"user","content":"How often should I water ')
    assert added.endswith(b"\n")
    with sqlite3.connect(sessions / "sessions.db") as conn:
        (count,) = conn.execute(
            "SELECT message_count FROM session_metadata WHERE session_key = ?", (LIVE_SQLITE,)
        ).fetchone()
        (rows_now,) = conn.execute(
            "SELECT count(*) FROM sessions WHERE session_key = ?", (LIVE_SQLITE,)
        ).fetchone()
    assert count == rows_now >= 5
