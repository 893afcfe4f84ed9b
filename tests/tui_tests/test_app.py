"""The browser on real fixture copies: listing, filter, sort, opening, help, palette, demo."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.app import App, ComposeResult

from storage.journal import Journal
from storage.models import SessionMetadata
from storage.workspace import Workspace, open_workspace
from tests.helpers import FIXTURES, copy_fixture
from tui.app import EDIT_WARMUP_DELAY, PALETTE_COMMANDS, ZcSessionsApp, run_app
from tui.demo import DEMO_NOW, LIVE_JSONL, LIVE_SQLITE, make_demo_workspace
from tui.launch import open_launch
from tui.screens.help import HelpScreen
from tui.widgets.header import WorkspaceHeader
from tui.widgets.session_list import SessionList

from .conftest import (
    SIZE,
    fixed_clock,
    listed_count,
    make_app,
    screen_text,
    settle,
    shown_keys,
    wait_for,
)

OpenWs = Callable[..., Workspace]


def expected_keys(name: str) -> list[str]:
    data = json.loads((FIXTURES / f"{name}.expected.json").read_text())
    return list(data["list"])


@pytest.mark.parametrize(
    "name", ["jsonl-workspace", "sqlite-workspace", "sqlite-seed-era-workspace"]
)
async def test_starts_on_each_fixture_and_lists_its_sessions(open_ws: OpenWs, name: str) -> None:
    app = make_app(open_ws(name))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.sessions.total > 0, what="the listing")
        await settle(pilot)
        assert sorted(shown_keys(app)) == sorted(expected_keys(name))
        # Counts are filled lazily, but they do arrive.
        assert all(listed_count(app, key) is not None for key in shown_keys(app))


async def test_sqlite_sessions_are_listed_newest_first_with_name_and_badges(
    open_ws: OpenWs,
) -> None:
    app = make_app(open_ws("sqlite-workspace"), stuck_after=3600)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.sessions.total == 3)
        assert shown_keys(app) == ["gw_live_01", "gw_named_02", "slack_T01_C02_frank"]
        lines = screen_lines(app)
        assert any("lisbon-trip" in line for line in lines)  # the name, not the key
        assert any("running" in line and "14 msgs" in line for line in lines)
        assert any("slack.work" in line for line in lines)  # channel_id as the source


async def test_a_long_running_turn_is_stuck(open_ws: OpenWs) -> None:
    app = make_app(open_ws("sqlite-workspace"), stuck_after=60)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.sessions.total == 3)
        assert any("stuck" in line for line in screen_lines(app))


def screen_lines(app: App[Any]) -> list[str]:
    return screen_text(app).splitlines()


async def test_filter_narrows_the_list_and_typing_starts_it(open_ws: OpenWs) -> None:
    app = make_app(open_ws("sqlite-workspace"))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.sessions.total == 3)
        await pilot.press("ctrl+f", *"lisbon")
        assert shown_keys(app) == ["gw_named_02"]  # matched on its name
        await pilot.press("enter")  # back to the list
        assert app.focused is app.sessions
        app.query_one("#filter").value = ""  # type: ignore[attr-defined]
        await pilot.pause()
        assert len(shown_keys(app)) == 3
        await pilot.press("f", "r", "a")  # keys no command uses go to the filter
        assert app.query_one("#filter").value == "fra"  # type: ignore[attr-defined]
        assert shown_keys(app) == ["slack_T01_C02_frank"]


async def test_s_cycles_the_sort_order(open_ws: OpenWs) -> None:
    app = make_app(open_ws("sqlite-workspace"))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.sessions.total == 3)
        await settle(pilot)
        await pilot.press("s")  # by name: gw_live_01, lisbon-trip, slack_...
        assert shown_keys(app) == ["gw_live_01", "gw_named_02", "slack_T01_C02_frank"]
        await pilot.press("s")  # by count: 14, 7, 5
        assert shown_keys(app) == ["gw_live_01", "slack_T01_C02_frank", "gw_named_02"]
        await pilot.press("s")  # back to activity
        assert app.sessions.sort_mode == "activity"


async def test_moving_the_cursor_opens_the_session_in_the_transcript(open_ws: OpenWs) -> None:
    app = make_app(open_ws("sqlite-workspace"))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.open_ref is not None, what="first session opened")
        await pilot.press("down")
        await wait_for(pilot, lambda: app.open_ref and app.open_ref.key == "gw_named_02")
        await wait_for(pilot, lambda: app.transcript.count == 5, what="5 messages")
        await settle(pilot)
        assert app.transcript.selected_message is not None
        assert app.transcript.selected_message.content.startswith("Answer 3 about")
        await pilot.press("enter")
        assert app.focused is app.transcript


async def test_session_option_opens_that_session(open_ws: OpenWs) -> None:
    app = make_app(open_ws("sqlite-workspace"), session="slack_T01_C02_frank")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.open_ref and app.open_ref.key == "slack_T01_C02_frank")
        await pilot.pause(0.3)  # longer than the delay before a highlighted session opens
        await settle(pilot)
        assert app.open_ref is not None and app.open_ref.key == "slack_T01_C02_frank"
        assert app.sessions.highlighted == app.open_ref
        assert app.transcript.selected_message is not None
        assert "release notes" in app.transcript.selected_message.content


async def test_header_says_read_only_and_where(open_ws: OpenWs) -> None:
    ws = open_ws("sqlite-workspace", read_only=True)
    app = make_app(ws)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.sessions.total == 3)
        header = app.query_one(WorkspaceHeader)
        text = str(header.render())
        assert "READ-ONLY" in text
        assert text.endswith("sqlite-workspace/sessions")
        assert "[sqlite]" in text


async def test_help_documents_every_key(open_ws: OpenWs) -> None:
    app = make_app(open_ws("sqlite-workspace"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        documented = {description for _, rows in app.screen.sections for _, description in rows}
        for binding in ZcSessionsApp.BINDINGS:
            assert binding.description in documented  # type: ignore[union-attr]
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_command_palette_offers_every_action(open_ws: OpenWs) -> None:
    app = make_app(open_ws("sqlite-workspace"))
    async with app.run_test(size=SIZE):
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {title for title, _, _ in PALETTE_COMMANDS} <= titles
        for _, _, action in PALETTE_COMMANDS:
            assert callable(getattr(app, f"action_{action}"))


async def test_untrusted_text_is_shown_literally(tmp_path: Path) -> None:
    make_demo_workspace(tmp_path, now=DEMO_NOW)
    ws = open_workspace(tmp_path, journal=Journal())
    app = ZcSessionsApp(ws, clock=lambda: DEMO_NOW, live=False)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.sessions.total > 0)
            app.sessions.select(next(r for r in app.sessions.refs if r.key.startswith("matrix")))
            await wait_for(pilot, lambda: app.transcript.count == 2)
            await settle(pilot)
            screen = "\n".join(screen_lines(app))
            assert "[bold red]x[/]" in screen
            assert "␛[31m" in screen
            assert "\x1b" not in screen
    finally:
        ws.close()


async def test_demo_workspace_has_both_stores_and_every_badge(tmp_path: Path) -> None:
    make_demo_workspace(tmp_path, now=DEMO_NOW)
    ws = open_workspace(tmp_path, journal=Journal())
    ws.demo = True
    app = ZcSessionsApp(ws, clock=lambda: DEMO_NOW, live=False)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.sessions.total > 0)
            await settle(pilot)
            keys = shown_keys(app)
            assert LIVE_JSONL in keys and LIVE_SQLITE in keys
            assert {r.backend for r in app.sessions.refs} == {"sqlite", "jsonl"}
            text = "\n".join(screen_lines(app))
            for badge in ("DEMO", "running", "stuck", "error", "unreadable lines"):
                assert badge in text, badge
    finally:
        ws.close()


async def test_the_session_asked_for_opens_from_the_tail_read_at_launch(tmp_path: Path) -> None:
    root = copy_fixture("jsonl-workspace", tmp_path)
    launch = open_launch(root, session="gw_a1b2c3")
    try:
        assert launch.tail is not None
        backend, key, tail = launch.tail.result(timeout=10)
        assert (backend, key) == ("jsonl", "gw_a1b2c3") and tail.messages
        jsonl = launch.workspace.backend("jsonl")
        assert jsonl is not None
        reads: list[str] = []
        real = jsonl.read_tail
        jsonl.read_tail = lambda k, n: reads.append(k) or real(k, n)  # type: ignore[method-assign]
        app = make_app(launch.workspace, session="gw_a1b2c3", journal=launch.journal)
        app.use_launch(launch)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.shown_cursor is not None, what="the tail shown")
            assert app.transcript.selected_message == tail.messages[-1]
            assert reads == []  # not read a second time
            assert app.sessions.highlighted == ("jsonl", "gw_a1b2c3")
    finally:
        launch.close()


@pytest.mark.parametrize("session", [None, "discord_guild42_ch7_erin"])
async def test_the_first_page_paints_first_and_the_rest_follows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, session: str | None
) -> None:
    """Without --session: the newest session, saying how many there are in all; then all.
    With it (here the oldest session): that session alone, "listing sessions…"; then all."""
    import os

    import tui.launch

    monkeypatch.setattr(tui.launch, "FIRST_PAGE", 1)
    root = copy_fixture("jsonl-workspace", tmp_path)
    files = sorted((root / "sessions").glob("*.jsonl"))  # newest last, oldest: discord_...
    for i, path in enumerate(files):
        os.utime(path, ns=(0, 1_700_000_000_000_000_000 + i * 1_000_000_000))
    launch = open_launch(root, session=session)
    listed: list[tuple[list[str], int, bool]] = []
    statuses: list[str] = []
    try:
        app = make_app(launch.workspace, session=session)
        app.use_launch(launch)
        real = SessionList.set_sessions

        def recorded(lst: SessionList, metas: Any, backends: Any = None, **kw: Any) -> None:
            metas = list(metas)
            real(lst, metas, backends, **kw)
            listed.append(([m.key for m in metas], lst.total, lst.total_known))

        monkeypatch.setattr(SessionList, "set_sessions", recorded)
        real_status = ZcSessionsApp._update_list_status

        def status(self: ZcSessionsApp) -> None:
            real_status(self)
            statuses.append(str(self.list_status.render()))

        monkeypatch.setattr(ZcSessionsApp, "_update_list_status", status)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: len(listed) == 2, what="the rest of the list")
            await settle(pilot)
            everything = ([f.stem for f in reversed(files)], len(files), True)
            if session is None:
                assert listed[0] == ([files[-1].stem], len(files), True)
                assert "listing" not in " ".join(statuses)
            else:
                assert listed[0] == ([session], 1, False)
                assert " listing sessions…" in statuses
                assert app.open_ref == ("jsonl", session)
                assert app.sessions.highlighted == app.open_ref
            assert (sorted(listed[1][0]), *listed[1][1:]) == (
                sorted(everything[0]),
                *everything[1:],
            )
            assert shown_keys(app) == everything[0]
            assert f"{len(files)} sessions" in screen_text(app)
    finally:
        launch.close()


def test_run_app_fails_with_one_line_for_a_bad_workspace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_app(workspace=tmp_path / "nowhere") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("zc-sessions: error: ")


async def test_the_list_paints_10000_sessions_at_once() -> None:
    metas = [
        SessionMetadata(
            key=f"telegram_{i:05d}",
            backend="jsonl",
            last_activity=f"2026-11-23T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}+00:00",
        )
        for i in range(10_000)
    ]

    class ListApp(App[None]):
        def compose(self) -> ComposeResult:
            yield SessionList(clock=fixed_clock, stuck_after=600, id="sessions")

    app = ListApp()
    async with app.run_test(size=SIZE) as pilot:
        lst = app.query_one(SessionList)
        started = time.perf_counter()
        lst.set_sessions(metas)
        await pilot.pause()
        assert time.perf_counter() - started < 1.0
        assert lst.total == 10_000 and len(lst.uncounted()) == 10_000
        started = time.perf_counter()
        lst.set_filter("telegram_0999")
        await pilot.pause()
        assert time.perf_counter() - started < 1.0
        assert len(lst.refs) == 10
        await pilot.press("end")


def test_sqlite_fixture_is_untouched_by_reading(tmp_path: Path) -> None:
    """Sanity for the other tests: the copy helper gives a writable, readable store."""
    root = copy_fixture("sqlite-workspace", tmp_path)
    with sqlite3.connect(root / "sessions" / "sessions.db") as conn:
        assert conn.execute("SELECT count(*) FROM session_metadata").fetchone()[0] == 3


@pytest.mark.parametrize("read_only", [False, True])
async def test_the_edit_path_is_prepared_once_the_app_is_idle(
    open_ws: OpenWs, read_only: bool
) -> None:
    from storage import journal

    journal._entry_format.cache_clear()
    ws = open_ws("jsonl-workspace", read_only=read_only)
    async with make_app(ws).run_test(size=SIZE) as pilot:
        await pilot.pause(EDIT_WARMUP_DELAY + 0.3)
        await settle(pilot)
        assert journal._entry_format.cache_info().currsize == (0 if read_only else 1)
