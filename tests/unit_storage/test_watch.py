"""The change feed: names it yields for real file changes, both with the OS watcher and polling."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from storage.watch import SQLITE, ChangeFeed, diff_snapshots, session_of, snapshot
from tests import helpers

LINE = b'{"role":"user","content":"hi"}'


def zeroclaw_append(path: Path, line: bytes = LINE) -> None:
    helpers.zeroclaw_append(path, line)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("gw_1.jsonl", "gw_1"),
        ("sessions.db", SQLITE),
        ("sessions.db-wal", SQLITE),
        ("sessions.db-shm", None),
        ("x.jsonl.migrated", None),
        ("x.jsonl.importing", None),
        (".tmpAbC123", None),
        (".jsonl", None),
        ("acp-sessions.db", None),
    ],
)
def test_session_of(name: str, expected: str | None) -> None:
    assert session_of(name) == expected


def test_diff_snapshots_sees_growth_new_files_and_removals(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_bytes(LINE + b"\n")
    (tmp_path / "b.jsonl").write_bytes(LINE + b"\n")
    (tmp_path / "notes.txt").write_text("ignored")
    before = snapshot(tmp_path)
    assert set(before) == {"a.jsonl", "b.jsonl"}
    zeroclaw_append(tmp_path / "a.jsonl")
    (tmp_path / "b.jsonl").unlink()
    (tmp_path / "c.jsonl").write_bytes(b"")
    (tmp_path / "sessions.db-wal").write_bytes(b"x")
    assert diff_snapshots(before, snapshot(tmp_path)) == {"a", "b", "c", SQLITE}


def test_snapshot_of_missing_folder_is_empty(tmp_path: Path) -> None:
    assert snapshot(tmp_path / "gone") == {}


async def next_change(feed: ChangeFeed, act: object, timeout: float = 5.0) -> set[str]:
    """Run ``act`` once the feed is listening and collect names until ``act``'s change shows."""
    seen: set[str] = set()

    async def consume() -> None:
        async for changed in feed:
            seen.update(changed)
            return

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.3)  # let the watcher (or the first poll snapshot) start
    assert callable(act)
    act()
    await asyncio.wait_for(task, timeout)
    feed.stop()
    return seen


@pytest.mark.parametrize("force_polling", [False, True])
async def test_feed_yields_the_stem_of_an_appended_jsonl(
    tmp_path: Path, force_polling: bool
) -> None:
    (tmp_path / "gw_1.jsonl").write_bytes(LINE + b"\n")
    feed = ChangeFeed(tmp_path, force_polling=force_polling, poll_interval=0.05)
    seen = await next_change(feed, lambda: zeroclaw_append(tmp_path / "gw_1.jsonl"))
    assert seen == {"gw_1"}
    assert feed.mode == ("polling" if force_polling else "watching")


@pytest.mark.parametrize("force_polling", [False, True])
async def test_feed_yields_a_new_session_file(tmp_path: Path, force_polling: bool) -> None:
    feed = ChangeFeed(tmp_path, force_polling=force_polling, poll_interval=0.05)
    seen = await next_change(feed, lambda: zeroclaw_append(tmp_path / "telegram_9.jsonl"))
    assert seen == {"telegram_9"}


async def test_feed_reports_sqlite_writes(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "sessions.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x)")
    conn.commit()

    def insert() -> None:
        conn.execute("INSERT INTO t VALUES (1)")
        conn.commit()

    seen = await next_change(ChangeFeed(tmp_path), insert)
    conn.close()
    assert seen == {SQLITE}


async def test_feed_ignores_files_that_are_not_sessions(tmp_path: Path) -> None:
    feed = ChangeFeed(tmp_path)
    got: list[frozenset[str]] = []

    async def consume() -> None:
        async for changed in feed:
            got.append(changed)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.3)
    (tmp_path / "x.jsonl.migrated").write_text("a")
    (tmp_path / ".tmpQwErTy").write_text("a")
    (tmp_path / "sessions.db-shm").write_text("a")
    await asyncio.sleep(0.5)
    feed.stop()
    await asyncio.wait_for(task, 5)
    assert got == []
    assert feed.mode == "stopped"


async def test_feed_falls_back_to_polling_when_the_folder_is_missing(tmp_path: Path) -> None:
    folder = tmp_path / "sessions"
    feed = ChangeFeed(folder, poll_interval=0.05)

    def create() -> None:
        folder.mkdir()
        zeroclaw_append(folder / "a.jsonl")

    seen = await next_change(feed, create)
    assert seen == {"a"}
    assert feed.mode == "polling"
    assert feed.error is not None


async def test_stop_ends_the_iteration_promptly(tmp_path: Path) -> None:
    feed = ChangeFeed(tmp_path)

    async def consume() -> None:
        async for _ in feed:
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.2)
    feed.stop()
    await asyncio.wait_for(task, 2)


def test_watch_does_not_import_textual() -> None:
    code = "import storage.watch, sys; print('textual' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.stdout.strip() == "False"
