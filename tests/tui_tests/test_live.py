"""Live tail: writes made ZeroClaw's way while the browser runs show up by themselves."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable

from storage.workspace import Workspace
from tests.helpers import zeroclaw_append
from tui.app import ZcSessionsApp
from tui.demo import INSERT_MESSAGE, UPSERT_METADATA
from tui.messages import SessionRef

from .conftest import (
    SIZE,
    listed_count,
    make_app,
    screen_text,
    settle,
    shown_keys,
    wait_for,
)
from .test_actions import open_session

OpenWs = Callable[..., Workspace]
LINE = b'{"role":"assistant","content":"a live reply"}'


def last_content(app: ZcSessionsApp) -> str | None:
    message = app.transcript.selected_message
    return None if message is None else message.content


async def test_a_jsonl_append_appears_in_the_transcript(open_ws: OpenWs) -> None:
    ws = open_ws("jsonl-workspace")
    path = ws.sessions_dir / "telegram_100200300.jsonl"
    async with make_app(ws, live=True).run_test(size=SIZE) as pilot:
        app = await open_session(pilot, "telegram_100200300")
        await wait_for(pilot, lambda: app.transcript.count == 10)
        zeroclaw_append(path, LINE)
        await wait_for(pilot, lambda: app.transcript.count == 11, what="the appended message")
        await wait_for(pilot, lambda: last_content(app) == "a live reply")
        await wait_for(pilot, lambda: listed_count(app) == 11, what="the list count")
        assert "a live reply" in screen_text(app)


async def test_a_torn_last_line_waits_for_its_newline(open_ws: OpenWs) -> None:
    ws = open_ws("jsonl-workspace")
    path = ws.sessions_dir / "discord_guild42_ch7_erin.jsonl"
    async with make_app(ws, live=True).run_test(size=SIZE) as pilot:
        app = await open_session(pilot, "discord_guild42_ch7_erin")
        count = app.transcript.count
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, LINE)  # ZeroClaw's first write: no newline yet
            await pilot.pause(0.5)
            await settle(pilot)
            assert app.transcript.count == count
            os.write(fd, b"\n")
        finally:
            os.close(fd)
        await wait_for(pilot, lambda: app.transcript.count == count + 1, what="the whole line")
        assert last_content(app) == "a live reply"


async def test_a_new_session_file_appears_in_the_list(open_ws: OpenWs) -> None:
    ws = open_ws("jsonl-workspace")
    async with make_app(ws, live=True).run_test(size=SIZE) as pilot:
        app = await open_session(pilot, "gw_a1b2c3")
        zeroclaw_append(ws.sessions_dir / "slack_T9_C9_new.jsonl", LINE)
        await wait_for(pilot, lambda: "slack_T9_C9_new" in shown_keys(app), what="the new session")
        assert shown_keys(app)[0] == "slack_T9_C9_new"  # newest first
        await wait_for(pilot, lambda: listed_count(app, "slack_T9_C9_new") == 1)
        assert app.open_ref is not None and app.open_ref.key == "gw_a1b2c3"  # the view stays


async def test_a_deleted_session_file_leaves_the_list(open_ws: OpenWs) -> None:
    ws = open_ws("jsonl-workspace")
    async with make_app(ws, live=True).run_test(size=SIZE) as pilot:
        app = await open_session(pilot, "gw_a1b2c3")
        (ws.sessions_dir / "discord_guild42_ch7_erin.jsonl").unlink()
        await wait_for(pilot, lambda: "discord_guild42_ch7_erin" not in shown_keys(app))


async def test_a_sqlite_insert_appears_in_the_transcript_and_the_list(open_ws: OpenWs) -> None:
    ws = open_ws("sqlite-workspace")
    async with make_app(ws, live=True).run_test(size=SIZE) as pilot:
        app = await open_session(pilot, "gw_named_02")
        assert app.transcript.count == 5
        stamp = "2026-11-23T17:29:00.123456789+00:00"
        conn = sqlite3.connect(ws.sessions_dir / "sessions.db", isolation_level=None)
        try:  # ZeroClaw's append: two autocommit statements
            conn.execute(INSERT_MESSAGE, ("gw_named_02", "assistant", "a live reply", stamp))
            conn.execute(UPSERT_METADATA, ("gw_named_02", stamp))
        finally:
            conn.close()
        await wait_for(pilot, lambda: app.transcript.count == 6, what="the inserted message")
        await wait_for(pilot, lambda: last_content(app) == "a live reply")
        await wait_for(pilot, lambda: listed_count(app) == 6, what="the list count")
        assert app.sessions.refs[0].key == "gw_named_02"  # now the newest


async def test_sqlite_state_changes_and_deletes_by_the_daemon_reach_the_list(
    open_ws: OpenWs,
) -> None:
    ws = open_ws("sqlite-workspace")
    async with make_app(ws, live=True).run_test(size=SIZE) as pilot:
        app = await open_session(pilot, "gw_named_02")
        conn = sqlite3.connect(ws.sessions_dir / "sessions.db", isolation_level=None)
        try:  # a turn starts (last_activity is left as it was), another session is deleted
            conn.execute(
                "UPDATE session_metadata SET state = 'running', turn_id = 't-1',"
                " turn_started_at = '2026-11-23T17:30:00Z' WHERE session_key = 'gw_named_02'"
            )
            conn.execute("DELETE FROM sessions WHERE session_key = 'slack_T01_C02_frank'")
            conn.execute("DELETE FROM session_metadata WHERE session_key = 'slack_T01_C02_frank'")
        finally:
            conn.close()

        await wait_for(pilot, lambda: "slack_T01_C02_frank" not in shown_keys(app), what="gone")
        await wait_for(
            pilot,
            lambda: (
                (row := app.sessions.row(SessionRef("sqlite", "gw_named_02"))) is not None
                and row.meta.state == "running"
            ),
            what="the running state",
        )
        assert app.sessions.total == 2


async def test_header_says_live(open_ws: OpenWs) -> None:
    ws = open_ws("sqlite-workspace")
    async with make_app(ws, live=True).run_test(size=SIZE) as pilot:
        app = await open_session(pilot, "gw_named_02")
        await wait_for(pilot, lambda: "● live" in screen_text(app))
