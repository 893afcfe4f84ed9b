"""The search pane: hits stream in, Enter opens the session at the hit, n/N walk the hits."""

from __future__ import annotations

from collections.abc import Callable

from textual.pilot import Pilot
from textual.widgets import OptionList

from storage.workspace import Workspace
from tui.app import ZcSessionsApp

from .conftest import SIZE, make_app, screen_text, settle, wait_for
from .test_actions import open_session

OpenWs = Callable[..., Workspace]


async def search(pilot: Pilot[int], query: str) -> ZcSessionsApp:
    app = pilot.app
    assert isinstance(app, ZcSessionsApp)
    await pilot.press("slash", *query)
    await wait_for(pilot, lambda: not app.search_pane.searching and app.search_pane.hits)
    await settle(pilot)
    return app


async def test_enter_opens_the_session_at_the_hit(open_ws: OpenWs) -> None:
    ws = open_ws("sqlite-workspace")
    async with make_app(ws).run_test(size=SIZE) as pilot:
        app = await open_session(pilot, "slack_T01_C02_frank")
        app = await search(pilot, "quokka")
        (hit,) = app.search_pane.hits
        assert (hit.key, hit.index) == ("gw_live_01", 13)
        assert "quokka" in screen_text(app)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.open_ref and app.open_ref.key == "gw_live_01")
        await wait_for(pilot, lambda: app.transcript.selected_index == 13, what="the hit")
        assert app.focused is app.transcript
        assert app.sessions.highlighted == app.open_ref
        assert "quokka" in app.transcript.search_terms


async def test_n_and_shift_n_walk_the_hits(open_ws: OpenWs) -> None:
    ws = open_ws("sqlite-workspace")
    async with make_app(ws).run_test(size=SIZE) as pilot:
        await open_session(pilot, "gw_named_02")
        app = await search(pilot, '"travel plans"')
        hits = app.search_pane.hits
        assert len(hits) >= 3 and {h.key for h in hits} == {"gw_named_02"}
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.transcript.selected_index == hits[0].index)
        await pilot.press("n")
        await wait_for(pilot, lambda: app.transcript.selected_index == hits[1].index)
        await pilot.press("N", "N")
        last = hits[-1]
        await wait_for(pilot, lambda: app.transcript.selected_index == last.index)


async def test_scope_to_the_open_session(open_ws: OpenWs) -> None:
    ws = open_ws("sqlite-workspace")
    async with make_app(ws).run_test(size=SIZE) as pilot:
        await open_session(pilot, "gw_named_02")
        app = await search(pilot, "question")
        assert len({h.key for h in app.search_pane.hits}) == 3
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: {h.key for h in app.search_pane.hits} == {"gw_named_02"})


async def test_typing_cancels_the_previous_search(open_ws: OpenWs) -> None:
    ws = open_ws("sqlite-workspace")
    async with make_app(ws).run_test(size=SIZE) as pilot:
        await open_session(pilot, "gw_named_02")
        app = await search(pilot, "question")
        first = app._search_cancel
        await pilot.press("backspace")
        await wait_for(pilot, lambda: first.is_set(), what="the first search to be cancelled")


async def test_search_in_jsonl_sessions(open_ws: OpenWs) -> None:
    ws = open_ws("jsonl-workspace")
    async with make_app(ws).run_test(size=SIZE) as pilot:
        await open_session(pilot, "gw_a1b2c3")
        app = await search(pilot, "gardening")
        assert {h.key for h in app.search_pane.hits} == {"telegram_100200300"}
        await pilot.press("escape")
        await wait_for(pilot, lambda: not app.search_pane.has_class("-open"))


async def test_enter_typed_faster_than_the_debounce_opens_the_new_querys_first_hit(
    open_ws: OpenWs,
) -> None:
    ws = open_ws("jsonl-workspace")
    async with make_app(ws).run_test(size=SIZE) as pilot:
        await open_session(pilot, "gw_a1b2c3")
        app = await search(pilot, "tax")  # hits from another query are on show
        assert {h.key for h in app.search_pane.hits} != {"telegram_100200300"}
        await pilot.press("ctrl+u", *"gardening", "enter")  # well inside the debounce
        await wait_for(pilot, lambda: app.open_ref == ("jsonl", "telegram_100200300"))
        await wait_for(pilot, lambda: app.focused is app.transcript, what="the hit opened")
        assert app.search_pane.query_text == "gardening"


async def test_escape_from_a_hit_goes_back_to_the_hits_then_closes_the_pane(
    open_ws: OpenWs,
) -> None:
    ws = open_ws("jsonl-workspace")
    async with make_app(ws).run_test(size=SIZE) as pilot:
        await open_session(pilot, "gw_a1b2c3")
        app = await search(pilot, "gardening")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.focused is app.transcript, what="the hit opened")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.focused is app.search_pane.query_one(OptionList))
        assert app.search_pane.has_class("-open")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not app.search_pane.has_class("-open"))
        assert app.focused is app.transcript


async def test_a_query_with_a_quote_never_fails(open_ws: OpenWs) -> None:
    ws = open_ws("sqlite-workspace")
    async with make_app(ws).run_test(size=SIZE) as pilot:
        app = await open_session(pilot, "gw_named_02")
        await pilot.press("slash", *'quo"kka OR (')
        await pilot.pause(0.5)
        await settle(pilot)
        assert not [n for n in app._notifications if n.severity == "error"]
