"""Nothing is lost while a ZeroClaw-like daemon appends to a JSONL session.

A second process appends as ZeroClaw does (open O_APPEND, write the JSON, write "\\n", close)
at about 1,000 messages a second. Meanwhile the command line (subprocesses, ``--yes --json``)
and the browser (headless, driven by keys) roll back, compact and undo. Afterwards every message
the daemon wrote is in the file, or in what the edit that took it reported (the CLI's JSON, the
undo journal's blob for the browser): lost must be 0, and nothing may be in the file twice.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot

from storage.journal import Journal
from storage.workspace import open_workspace
from tests.trust_tests.conftest import (
    CliResult,
    cli,
    contents_in_file,
    jsonl_daemon,
    removed_in_blob,
    wait_until,
    zc_line,
)
from tui.app import ZcSessionsApp
from tui.screens.confirm import ConfirmScreen

KEY = "live"


def seed(root: Path, n: int = 20) -> Path:
    sessions = root / "sessions"
    sessions.mkdir(parents=True)
    path = sessions / f"{KEY}.jsonl"
    path.write_bytes(b"".join(zc_line(f"seed-{i}", ("user", "assistant")[i % 2]) for i in range(n)))
    return path


def add_blank_line(path: Path) -> None:
    """Something for compact to drop; one write, so it cannot tear a message."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    os.write(fd, b" \n")
    os.close(fd)


def written_by(output: str, prefix: str = "live") -> set[str]:
    return {f"{prefix}-{i:07d}" for i in range(int(output))}


def check_nothing_lost(path: Path, written: set[str], removed: set[str]) -> None:
    in_file = [c for c in contents_in_file(path) if not c.startswith("seed-")]
    assert len(in_file) == len(set(in_file)), "a message is in the file twice"
    assert not set(in_file) & removed, "a message reported as removed is still in the file"
    lost = written - set(in_file) - removed
    assert lost == set(), f"{len(lost)} messages lost, e.g. {sorted(lost)[:5]}"


def run_cli_edits(root: Path, path: Path, rollbacks: int) -> tuple[set[str], int]:
    """rollback x``rollbacks``, compact every other round, undo every fifth; returns what the
    edits still have removed at the end, and how many undos ran."""
    removed_by: dict[str, set[str]] = {}  # journal id -> messages its rollback took
    undos = 0
    for i in range(rollbacks):
        report = ok(cli(root, "rollback", KEY, "--messages", "3", "--yes", "--json")).json()
        assert report["removed"], "a rollback of 3 messages removed nothing"
        took = {m["content"] for m in report["removed"]}
        # messages that arrived during the cut are in "removed" too; a torn one would show here
        assert all(line["reason"] != "torn last line" for line in report["removed_lines"])
        removed_by[report["journal_id"]] = took
        if i % 2 == 0:
            add_blank_line(path)
            compact = ok(cli(root, "compact", KEY, "--yes", "--json")).json()
            assert not compact["removed"], "compact removed a message"
        if i % 5 == 4:
            undone = ok(cli(root, "undo", KEY, "--json")).json()
            removed_by.pop(undone["journal_id"], None)  # its messages are back in the file
            undos += 1
    return set().union(*removed_by.values()), undos


def ok(result: CliResult) -> CliResult:
    assert result.code == 0, result
    return result


def test_cli_rollback_compact_undo_lose_nothing_under_a_live_daemon(tmp_path: Path) -> None:
    root = tmp_path / "data"
    path = seed(root)
    daemon = jsonl_daemon(path, tmp_path / "stop", rate=1000)
    try:
        wait_until(lambda: path.stat().st_size > 5000, what="the daemon to start")
        removed, undos = run_cli_edits(root, path, rollbacks=20)
    finally:
        out = daemon.stop()
    written = written_by(out)
    assert len(written) > 2000, "the daemon did not run alongside"
    assert undos == 4
    check_nothing_lost(path, written, removed)


@pytest.mark.soak
def test_cli_edits_lose_nothing_soak(tmp_path: Path) -> None:
    root = tmp_path / "data"
    path = seed(root)
    daemon = jsonl_daemon(path, tmp_path / "stop", rate=2000)
    try:
        wait_until(lambda: path.stat().st_size > 5000)
        removed, _ = run_cli_edits(root, path, rollbacks=200)
    finally:
        out = daemon.stop()
    check_nothing_lost(path, written_by(out), removed)


# --- the browser ----------------------------------------------------------------------------


async def wait_for(
    pilot: Pilot[int], predicate: Callable[[], object], timeout: float = 15.0, what: str = ""
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


def notes(app: ZcSessionsApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def confirmed(pilot: Pilot[int], key: str, action: str) -> bool:
    """Press ``key`` and confirm with ``y`` until the edit is done. The app re-plans (a new
    dialog) when the session changed between the dialog and the edit, and a compact gives up
    when the file keeps changing: both are answered by trying again. False: nothing to do."""
    app = pilot.app
    assert isinstance(app, ZcSessionsApp)
    done = f"{action} {KEY}: removed"
    for _ in range(30):
        if not isinstance(app.screen, ConfirmScreen):
            app.sessions.focus()
            before = len(notes(app))
            await pilot.press(key)
            await wait_for(
                pilot,
                lambda: isinstance(app.screen, ConfirmScreen) or len(notes(app)) > before,
                what=f"a dialog or a notice after {key!r}: {notes(app)[-3:]}",
            )
            if "nothing to remove" in " ".join(notes(app)[before:]):
                return False
        if isinstance(app.screen, ConfirmScreen):
            before = len(notes(app))
            await pilot.press("y")
            await wait_for(pilot, lambda: len(notes(app)) > before, what="the edit to finish")
            new = notes(app)[before:]
            if any(n.startswith(done) for n in new):
                return True
            assert all("changed" in n for n in new), new  # anything else is a failure
            # re-planned: a new dialog is on its way (or the compact gave up): go again
            await pilot.pause(0.05)
    raise AssertionError(f"{key!r} never went through: {notes(app)[-5:]}")


async def drive_app(app: ZcSessionsApp, rounds: int) -> int:
    """b + y, c + y, ctrl+z, ``rounds`` times; returns the number of rollbacks done."""
    done = 0
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.sessions.total > 0, what="the listing")
        ref = next(r for r in app.sessions.refs if r.key == KEY)
        app.sessions.select(ref)
        await wait_for(pilot, lambda: app.open_ref == ref, what="the session to open")
        for i in range(rounds):
            done += await confirmed(pilot, "b", "rollback")
            await confirmed(pilot, "c", "compact")
            if i % 2 == 1:
                before = len(notes(app))
                await pilot.press("ctrl+z")
                await wait_for(pilot, lambda: len(notes(app)) > before, what="the undo")
                assert notes(app)[-1].startswith("undid"), notes(app)[-1]
        await pilot.press("q")
    return done


def removed_per_journal(journal: Journal, store: Path) -> set[str]:
    """What the app's rollbacks removed and still keep removed, from the journal itself."""
    found: set[str] = set()
    for entry in journal.entries(store):
        assert entry.status in ("done", "undone"), f"entry {entry.id} left {entry.status}"
        if entry.action == "rollback" and entry.status == "done":
            found |= set(removed_in_blob(journal, entry))
    return found


async def test_app_rollback_compact_undo_lose_nothing_under_a_live_daemon(tmp_path: Path) -> None:
    """The browser: fewer rounds than the CLI (6 rollbacks, 6 compacts, 3 undos), as each one
    waits for the UI. The daemon writes in bursts, as a real one does between turns."""
    root = tmp_path / "data"
    path = seed(root)
    journal = Journal()
    ws = open_workspace(root, journal=journal)
    daemon = jsonl_daemon(path, tmp_path / "stop", rate=1000, burst=30, pause=0.5)
    try:
        wait_until(lambda: path.stat().st_size > 2000)
        app = ZcSessionsApp(ws, journal=journal, live=True)
        rollbacks = await drive_app(app, rounds=6)
    finally:
        out = daemon.stop()
        ws.close()
    assert rollbacks >= 3
    written = written_by(out)
    assert len(written) > 200
    check_nothing_lost(path, written, removed_per_journal(journal, root / "sessions"))
