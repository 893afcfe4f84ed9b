"""Each action through the keyboard, on real fixture copies: what the dialog shows, what changes."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from textual.pilot import Pilot

from storage.workspace import Workspace
from tui.app import ZcSessionsApp
from tui.screens.confirm import ConfirmScreen
from tui.screens.rename import RenameScreen

from .conftest import SIZE, make_app, settle, tree_digest, wait_for

OpenWs = Callable[..., Workspace]


def db_contents(ws: Workspace, key: str) -> list[str]:
    with sqlite3.connect(ws.sessions_dir / "sessions.db") as conn:
        rows = conn.execute(
            "SELECT content FROM sessions WHERE session_key = ? ORDER BY id", (key,)
        ).fetchall()
    return [r[0] for r in rows]


def db_keys(ws: Workspace) -> set[str]:
    with sqlite3.connect(ws.sessions_dir / "sessions.db") as conn:
        rows = conn.execute("SELECT session_key FROM session_metadata").fetchall()
    return {r[0] for r in rows}


async def open_session(pilot: Pilot[int], key: str) -> ZcSessionsApp:
    app = pilot.app
    assert isinstance(app, ZcSessionsApp)
    await wait_for(pilot, lambda: app.sessions.total > 0, what="the listing")
    ref = next(r for r in app.sessions.refs if r.key == key)
    app.sessions.select(ref)
    await wait_for(pilot, lambda: app.open_ref == ref and app.shown_cursor is not None)
    await settle(pilot)
    return app


async def confirm_dialog(pilot: Pilot[int]) -> ConfirmScreen:
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen), what="the dialog")
    screen = pilot.app.screen
    assert isinstance(screen, ConfirmScreen)
    return screen


def dialog_items(screen: ConfirmScreen) -> list[str]:
    return [str(w.render()) for w in screen.query(".confirm-item")]


def notices(app: ZcSessionsApp) -> list[str]:
    return [n.message for n in app._notifications]


# --- rollback ------------------------------------------------------------------------------


async def test_rollback_shows_the_last_turn_then_removes_it(open_ws: OpenWs) -> None:
    ws = open_ws("sqlite-workspace")
    before = db_contents(ws, "gw_named_02")
    async with make_app(ws).run_test(size=SIZE) as pilot:
        app = await open_session(pilot, "gw_named_02")
        await pilot.press("b")
        screen = await confirm_dialog(pilot)
        assert dialog_items(screen) == [
            "#3 user: travel plans question 2?",
            "#4 assistant: Answer 3 about *travel plans*:↵```sh↵echo 3↵```",
        ]
        assert "Remove these 2 message(s)" in screen.plan.question
        await pilot.press("y")
        await wait_for(pilot, lambda: len(db_contents(ws, "gw_named_02")) == 3)
        await settle(pilot)
        assert db_contents(ws, "gw_named_02") == before[:3]
        await wait_for(pilot, lambda: app.transcript.count == 3, what="the transcript reloads")
        assert any("ctrl+z" in n for n in notices(app))


async def test_rollback_cancel_leaves_every_byte(open_ws: OpenWs) -> None:
    ws = open_ws("sqlite-workspace")
    async with make_app(ws).run_test(size=SIZE) as pilot:
        app = await open_session(pilot, "gw_named_02")
        digest = tree_digest(ws.sessions_dir)
        await pilot.press("b")
        await confirm_dialog(pilot)
        await pilot.press("n")
        await settle(pilot)
        assert not isinstance(app.screen, ConfirmScreen)
        assert tree_digest(ws.sessions_dir) == digest


async def test_rollback_from_the_transcript_takes_the_selected_message(open_ws: OpenWs) -> None:
    ws = open_ws("sqlite-workspace")
    async with make_app(ws).run_test(size=SIZE) as pilot:
        app = await open_session(pilot, "slack_T01_C02_frank")
        await pilot.press("enter")  # into the transcript; the last message (#6) is selected
        await pilot.press("up", "up")
        await wait_for(pilot, lambda: app.transcript.selected_index == 4)
        await pilot.press("b")
        screen = await confirm_dialog(pilot)
        assert [item.split(":")[0] for item in dialog_items(screen)] == [
            "#4 assistant",
            "#5 user",
            "#6 assistant",
        ]
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(db_contents(ws, "slack_T01_C02_frank")) == 4)


async def test_rollback_of_a_session_that_grew_shows_the_new_plan(open_ws: OpenWs) -> None:
    ws = open_ws("sqlite-workspace")
    async with make_app(ws).run_test(size=SIZE) as pilot:
        app = await open_session(pilot, "gw_named_02")
        await pilot.press("b")
        await confirm_dialog(pilot)
        with sqlite3.connect(ws.sessions_dir / "sessions.db") as conn:  # ZeroClaw appends
            conn.execute(
                "INSERT INTO sessions (session_key, role, content, created_at)"
                " VALUES ('gw_named_02', 'assistant', 'late reply', '2026-11-23T17:20:00+00:00')"
            )
        await pilot.press("y")
        await wait_for(pilot, lambda: any("new plan" in n for n in notices(app)))
        screen = await confirm_dialog(pilot)
        assert dialog_items(screen)[-1] == "#5 assistant: late reply"
        assert len(db_contents(ws, "gw_named_02")) == 6  # nothing removed yet
        await pilot.press("y")
        await wait_for(pilot, lambda: len(db_contents(ws, "gw_named_02")) == 3)


async def test_the_dialog_warns_about_a_running_session(open_ws: OpenWs) -> None:
    ws = open_ws("sqlite-workspace")
    async with make_app(ws).run_test(size=SIZE) as pilot:
        await open_session(pilot, "gw_live_01")
        await pilot.press("b")
        screen = await confirm_dialog(pilot)
        warnings = " ".join(screen.plan.warnings)
        assert "running" in warnings
        assert "in-memory history until it restarts" in warnings
        await pilot.press("escape")


# --- rename, compact, delete, undo ---------------------------------------------------------


async def test_rename_sets_the_name(open_ws: OpenWs) -> None:
    ws = open_ws("sqlite-workspace")
    backend = ws.backends[0]
    async with make_app(ws).run_test(size=SIZE) as pilot:
        app = await open_session(pilot, "slack_T01_C02_frank")
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, RenameScreen))
        await pilot.press(*"release-notes", "enter")
        await wait_for(pilot, lambda: backend.get_session_name("slack_T01_C02_frank"))
        await settle(pilot)
        assert backend.get_session_name("slack_T01_C02_frank") == "release-notes"
        row = app.sessions.row(app.open_ref)  # type: ignore[arg-type]
        assert row is not None and row.meta.name == "release-notes"


async def test_compact_shows_and_drops_the_unreadable_line(open_ws: OpenWs) -> None:
    ws = open_ws("jsonl-workspace")
    path = ws.sessions_dir / "telegram_100200300.jsonl"
    assert b"{not json at all" in path.read_bytes()
    async with make_app(ws).run_test(size=SIZE) as pilot:
        app = await open_session(pilot, "telegram_100200300")
        await pilot.press("c")
        screen = await confirm_dialog(pilot)
        assert any("{not json at all" in item for item in dialog_items(screen))
        await pilot.press("y")
        await wait_for(pilot, lambda: b"{not json at all" not in path.read_bytes())
        await settle(pilot)
        assert path.read_bytes().count(b"\n") == 10
        assert app.workspace.backends[0].count_messages("telegram_100200300") == 10


async def test_delete_then_undo_brings_the_session_back(open_ws: OpenWs) -> None:
    ws = open_ws("sqlite-workspace")
    before = db_contents(ws, "gw_named_02")
    async with make_app(ws).run_test(size=SIZE) as pilot:
        app = await open_session(pilot, "gw_named_02")
        await pilot.press("d")
        screen = await confirm_dialog(pilot)
        assert len(dialog_items(screen)) == 5
        assert "Delete session gw_named_02" in screen.plan.question
        await pilot.press("y")
        await wait_for(pilot, lambda: "gw_named_02" not in db_keys(ws))
        await wait_for(pilot, lambda: "gw_named_02" not in [r.key for r in app.sessions.refs])
        await settle(pilot)
        await pilot.press("ctrl+z")
        await wait_for(pilot, lambda: db_contents(ws, "gw_named_02") == before, what="undo")
        await wait_for(pilot, lambda: "gw_named_02" in [r.key for r in app.sessions.refs])
        assert any(n.startswith("undid delete of gw_named_02") for n in notices(app)), notices(app)


async def test_undo_with_nothing_to_undo_says_so(open_ws: OpenWs) -> None:
    ws = open_ws("sqlite-workspace")
    async with make_app(ws).run_test(size=SIZE) as pilot:
        app = await open_session(pilot, "gw_named_02")
        await pilot.press("ctrl+z")
        await wait_for(pilot, lambda: "nothing to undo" in notices(app))


# --- export and copy -----------------------------------------------------------------------


async def test_export_writes_markdown_outside_sessions(open_ws: OpenWs) -> None:
    ws = open_ws("sqlite-workspace")
    async with make_app(ws).run_test(size=SIZE) as pilot:
        app = await open_session(pilot, "gw_named_02")
        await pilot.press("e")
        await wait_for(pilot, lambda: list(Path.cwd().glob("*.md")), what="the export file")
        (exported,) = Path.cwd().glob("gw_named_02-*.md")
        text = exported.read_text()
        assert text.startswith("# lisbon-trip")
        assert "travel plans question 2?" in text
        assert any(str(exported) in n for n in notices(app))
        assert not list(ws.sessions_dir.glob("*.md"))


async def test_copy_puts_the_selected_message_on_the_clipboard(open_ws: OpenWs) -> None:
    ws = open_ws("sqlite-workspace")
    async with make_app(ws).run_test(size=SIZE) as pilot:
        app = await open_session(pilot, "gw_named_02")
        await pilot.press("enter", "up")
        await wait_for(pilot, lambda: app.transcript.selected_index == 3)
        await pilot.press("y")
        assert app.clipboard == "travel plans question 2?"


# --- read-only -----------------------------------------------------------------------------


async def test_read_only_refuses_every_edit_and_changes_no_byte(open_ws: OpenWs) -> None:
    ws = open_ws("sqlite-workspace", read_only=True)
    digest = tree_digest(ws.sessions_dir)
    async with make_app(ws).run_test(size=SIZE) as pilot:
        app = await open_session(pilot, "gw_named_02")
        for key in ("b", "c", "d", "r", "ctrl+z"):
            await pilot.press(key)
            await settle(pilot)
            assert app.screen is app.screen_stack[0], key  # no dialog opened
        refusals = [n for n in notices(app) if n.startswith("read-only mode")]
        assert len(refusals) == 5
        await pilot.press("y")  # copying is fine in read-only mode
        assert app.clipboard
    assert tree_digest(ws.sessions_dir) == digest
