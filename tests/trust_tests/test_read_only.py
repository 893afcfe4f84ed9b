"""``--read-only`` changes nothing: a full run of the browser (navigate, search, every action)
and every CLI command leave every byte and mtime of the store as they were, and no -wal or
-shm file appears.

One exception is SQLite's, not ours: while another process (the daemon) has the database open
in WAL mode, every reader, ZeroClaw's included, takes read marks in the shared-memory index
``sessions.db-shm``. There the test holds the database file and the WAL to every byte, and the
-shm to its existence.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from storage.cli import main
from storage.journal import Journal
from storage.workspace import open_workspace
from tests.helpers import copy_fixture
from tests.trust_tests.app_driver import RecordingApp, more_notes, wait_for
from tests.trust_tests.conftest import cli, folder_state
from tui.screens.help import HelpScreen

CASES = [
    ("jsonl-workspace", "gw_a1b2c3", "tax"),
    ("sqlite-workspace", "gw_named_02", "travel"),
    ("sqlite-seed-era-workspace", "telegram_555", "birdwatching"),
]

READS = [
    ["list"],
    ["list", "--json"],
    ["show", "{key}"],
    ["show", "{key}", "--json"],
    ["show", "{key}", "--tail", "2"],
    ["search", "{query}"],
    ["search", "{query}", "--session", "{key}", "--json"],
    ["rollback", "{key}", "--dry-run"],
    ["export", "{key}"],
    ["export", "{key}", "--format", "jsonl"],
    ["export", "{key}", "--format", "json", "--output", "{outside}/export.json"],
]
EDITS = [
    ["rollback", "{key}", "--yes"],
    ["rollback", "{key}", "--messages", "1", "--yes"],
    ["compact", "{key}", "--yes"],
    ["delete", "{key}", "--yes"],
    ["rename", "{key}", "new name"],
    ["undo"],
    ["undo", "{key}"],
    ["migrate"],
    ["migrate", "--dry-run"],
]


def fill(args: list[str], **values: str) -> list[str]:
    return [a.format(**values) for a in args]


def run_cli(root: Path, args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """The CLI's ``main`` in this process (the subprocess contract is tested elsewhere; here
    the point is the matrix of commands): exit code and stderr."""
    code = main(["--workspace", str(root), "--read-only", *args])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(("fixture", "key", "query"), CASES)
def test_every_cli_command_with_read_only(
    tmp_path: Path, fixture: str, key: str, query: str, capsys: pytest.CaptureFixture[str]
) -> None:
    root = copy_fixture(fixture, tmp_path)
    outside = tmp_path / "out"
    outside.mkdir()
    # one real edit first, so that undo has something it could undo
    assert main(["--workspace", str(root), "rollback", key, "--messages", "1", "--yes"]) == 0
    capsys.readouterr()
    before = folder_state(root)
    journal_before = [(e.id, e.status) for e in Journal().entries()]
    values = {"key": key, "query": query, "outside": str(outside)}
    for args in READS:
        code, err = run_cli(root, fill(args, **values), capsys)
        assert code == 0, (args, err)
    for args in EDITS:
        code, err = run_cli(root, fill(args, **values), capsys)
        lines = err.strip().splitlines()
        assert code == 1 and len(lines) == 1 and "read-only" in lines[0], (args, err)
    assert folder_state(root) == before, "a read-only command changed the store"
    assert [(e.id, e.status) for e in Journal().entries()] == journal_before


async def run_every_action(app: RecordingApp, key: str, query: str) -> None:
    async with app.run_test(size=(140, 45)) as pilot:
        await wait_for(pilot, lambda: app.sessions.total > 0, what="the listing")
        for _ in range(app.sessions.total):  # every session, opened from the list
            await pilot.press("down")
            await pilot.pause(0.15)
        ref = next(r for r in app.sessions.refs if r.key == key)
        app.sessions.select(ref)
        await wait_for(pilot, lambda: app.open_ref == ref and app.shown_cursor is not None)
        await pilot.press("enter")  # to the transcript
        for k in ("up", "up", "enter", "g", "G", "pageup", "f", "f"):
            await pilot.press(k)
        await pilot.press("slash")
        for ch in query:
            await pilot.press(ch)
        await pilot.press("enter")
        await wait_for(pilot, lambda: bool(app.search_pane.hits), what="search hits")
        await pilot.press("escape")
        await pilot.press("n", "N")
        refused = 0
        for k in ("b", "r", "c", "d", "ctrl+z"):
            app.transcript.focus()
            seen = len(app.notes)
            await pilot.press(k)
            await wait_for(pilot, more_notes(app, seen), what=f"an answer to {k!r}")
            assert "read-only" in app.notes[-1], (k, app.notes[-1])
            assert not isinstance(app.screen, HelpScreen)
            refused += 1
        assert refused == 5
        seen = len(app.notes)
        await pilot.press("e")
        await wait_for(pilot, more_notes(app, seen), what="the export")
        assert app.notes[-1].startswith("exported"), app.notes[-1]
        await pilot.press("q")


@pytest.mark.parametrize(
    ("fixture", "key", "query"),
    [CASES[0], *(pytest.param(*case, marks=pytest.mark.soak) for case in CASES[1:])],
)
async def test_every_browser_action_with_read_only(
    tmp_path: Path, fixture: str, key: str, query: str
) -> None:
    root = copy_fixture(fixture, tmp_path)
    before = folder_state(root)
    ws = open_workspace(root, read_only=True, journal=Journal())
    app = RecordingApp(ws, live=True, export_dir=tmp_path)
    await run_every_action(app, key, query)
    ws.close()
    assert folder_state(root) == before, "the read-only browser changed the store"
    assert Journal().entries() == []
    assert len(list(tmp_path.glob("*.md"))) == 1  # the export went outside the store


HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA journal_mode=WAL")
conn.execute("PRAGMA wal_autocheckpoint=0")
conn.execute("INSERT INTO sessions (session_key, role, content, created_at)"
             " VALUES ('gw_named_02', 'user', 'only in the WAL', '2026-11-23T17:20:00+00:00')")
print("ready", flush=True)
sys.stdin.read()
"""


async def test_read_only_beside_a_live_daemon_keeps_the_database_and_the_wal(
    tmp_path: Path,
) -> None:
    root = copy_fixture("sqlite-workspace", tmp_path)
    sessions = root / "sessions"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(sessions / "sessions.db")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "ready\n"
        before = folder_state(root)
        assert "sessions/sessions.db-wal" in before and "sessions/sessions.db-shm" in before
        shown = cli(root, "show", "gw_named_02", read_only=True)
        assert shown.code == 0 and "only in the WAL" in shown.out  # the daemon's rows are seen
        ws = open_workspace(root, read_only=True, journal=Journal())
        await run_every_action(
            RecordingApp(ws, live=True, export_dir=tmp_path), "gw_named_02", "travel"
        )
        ws.close()
        after = folder_state(root)
    finally:
        holder.kill()
        holder.wait()
    shm = "sessions/sessions.db-shm"
    assert after.keys() == before.keys()
    assert {k: v for k, v in after.items() if k != shm} == {
        k: v for k, v in before.items() if k != shm
    }, "the database or its WAL changed"
