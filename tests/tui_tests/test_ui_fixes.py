"""Regression tests for problems found by using the browser as a new user would."""

from __future__ import annotations

from collections.abc import Callable

from textual.widgets import Input

from storage.models import Changes, StoredMessage
from storage.workspace import Workspace
from tests.tui_tests.fakes import FakeSource, TranscriptApp, screen_lines
from tests.tui_tests.fakes import settle as settle_transcript
from tui.render import DEFAULT_THEME, render_message

from .conftest import SIZE, make_app, screen_text, settle, shown_keys, wait_for
from .test_actions import confirm_dialog, notices, open_session

OpenWs = Callable[..., Workspace]


def test_search_marks_the_content_not_the_header() -> None:
    message = StoredMessage(index=2, role="assistant", content="the assistant said so")
    strips = render_message(message, 60, highlight=["assistant"])
    marked = [
        (row, seg.text)
        for row, strip in enumerate(strips)
        for seg in strip
        if seg.style and seg.style.bgcolor == DEFAULT_THEME.search.bgcolor
    ]
    assert marked == [(1, "assistant")]  # row 0 is the "#2 assistant" header


async def test_new_messages_marker_is_styled() -> None:
    source = FakeSource(50)
    app = TranscriptApp(source)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle_transcript(pilot)
        transcript = app.transcript
        await pilot.press("g")
        await settle_transcript(pilot)
        transcript.apply_changes(Changes(messages=tuple(source.grow(2)), cursor=52))
        await settle_transcript(pilot)
        line = transcript.render_line(transcript.scrollable_content_region.height - 1)
        marker = [seg for seg in line if "new messages" in seg.text]
        assert marker and marker[0].style is not None and marker[0].style.bold


async def test_an_empty_session_says_so() -> None:
    app = TranscriptApp(FakeSource(0))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle_transcript(pilot)
        assert screen_lines(app.transcript)[0].strip() == "no messages in this session"


async def test_the_list_cursor_highlights_the_whole_row(open_ws: OpenWs) -> None:
    ws = open_ws("jsonl-workspace")
    async with make_app(ws).run_test(size=SIZE) as pilot:
        app = await open_session(pilot, "gw_a1b2c3")
        app.sessions.focus()
        await settle(pilot)
        cursor = app.sessions.get_component_rich_style("session-list--cursor").bgcolor
        row = app.sessions.refs.index(app.open_ref)  # type: ignore[arg-type]
        for y in (2 * row, 2 * row + 1):
            line = app.sessions.render_line(y)
            assert {seg.style.bgcolor for seg in line if seg.style} == {cursor}


async def test_escape_in_the_list_clears_the_filter(open_ws: OpenWs) -> None:
    ws = open_ws("jsonl-workspace")
    async with make_app(ws).run_test(size=SIZE) as pilot:
        app = await open_session(pilot, "gw_a1b2c3")
        app.sessions.focus()
        await pilot.press("ctrl+f", *"zzz", "enter")  # a filter that hides everything
        await settle(pilot)
        assert app.focused is app.sessions and shown_keys(app) == []
        await pilot.press("escape")
        await settle(pilot)
        assert app.filter_box.value == "" and len(shown_keys(app)) == 4


async def test_undo_and_search_keys_belong_to_a_focused_text_box(open_ws: OpenWs) -> None:
    ws = open_ws("sqlite-workspace")
    async with make_app(ws).run_test(size=SIZE) as pilot:
        app = await open_session(pilot, "gw_named_02")
        await pilot.press("b")
        await confirm_dialog(pilot)
        await pilot.press("y")
        await wait_for(pilot, lambda: app.transcript.count == 3, what="the rollback")
        await settle(pilot)
        app.filter_box.focus()
        await pilot.pause()
        assert isinstance(app.focused, Input)
        shown = {b.binding.action for b in app.screen.active_bindings.values()}
        assert "undo" not in shown and "search" not in shown
        await pilot.press("ctrl+z")
        await settle(pilot)
        assert app.transcript.count == 3  # ctrl+z in the filter did not undo the rollback
        app.sessions.focus()
        await pilot.press("ctrl+z")
        await wait_for(pilot, lambda: app.transcript.count == 5, what="the undo")


async def test_a_hit_in_a_filtered_out_session_clears_the_filter(open_ws: OpenWs) -> None:
    ws = open_ws("jsonl-workspace")
    async with make_app(ws).run_test(size=SIZE) as pilot:
        app = await open_session(pilot, "gw_a1b2c3")
        await pilot.press("ctrl+f", *"discord", "enter")
        await settle(pilot)
        assert shown_keys(app) == ["discord_guild42_ch7_erin"]
        await pilot.press("slash", *"gardening")
        await wait_for(pilot, lambda: bool(app.search_pane.hits), what="hits")
        await settle(pilot)
        hit = next(h for h in app.search_pane.hits if h.key == "telegram_100200300")
        app.show_hit(hit)
        await wait_for(pilot, lambda: app.open_ref is not None and app.open_ref.key == hit.key)
        await settle(pilot)
        assert app.filter_box.value == "" and len(shown_keys(app)) == 4
        assert app.sessions.highlighted == app.open_ref


async def test_the_open_session_vanishing_is_not_an_error(open_ws: OpenWs) -> None:
    ws = open_ws("jsonl-workspace")
    async with make_app(ws).run_test(size=SIZE) as pilot:
        app = await open_session(pilot, "discord_guild42_ch7_erin")
        (ws.sessions_dir / "discord_guild42_ch7_erin.jsonl").unlink()  # deleted under us
        app.note_changes({"discord_guild42_ch7_erin"})  # what the change feed then reports
        await wait_for(pilot, lambda: "discord_guild42_ch7_erin" not in shown_keys(app))
        await settle(pilot)
        assert not [n for n in app._notifications if n.severity == "error"], notices(app)


async def test_the_footer_fits_the_new_width_after_a_resize(open_ws: OpenWs) -> None:
    ws = open_ws("jsonl-workspace")
    async with make_app(ws).run_test(size=(160, 40)) as pilot:
        app = await open_session(pilot, "gw_a1b2c3")
        assert not app.footer.compact
        await pilot.resize_terminal(80, 24)
        await settle(pilot)
        assert app.footer.compact
        await pilot.resize_terminal(160, 40)
        await settle(pilot)
        assert not app.footer.compact


async def test_every_footer_key_fits_at_120_columns(open_ws: OpenWs) -> None:
    ws = open_ws("jsonl-workspace")
    async with make_app(ws).run_test(size=(120, 40)) as pilot:
        app = await open_session(pilot, "gw_a1b2c3")
        for focus in (app.sessions, app.transcript):
            focus.focus()
            await settle(pilot)
            assert "q Quit" in screen_text(app).splitlines()[-1], focus


async def test_no_session_open_is_not_reading() -> None:
    app = TranscriptApp(None)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle_transcript(pilot)
        assert "reading session" not in "\n".join(screen_lines(app.transcript))
