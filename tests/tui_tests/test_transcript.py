"""The virtualized transcript, driven through a fake million-message session."""

from __future__ import annotations

import threading

from textual import events
from textual.widgets import Footer

from storage.models import Changes, SkippedLine, StoredMessage
from tests.tui_tests.fakes import FakeSource, TranscriptApp, screen_lines, settle
from tui.render import DEFAULT_THEME
from tui.widgets.transcript import Transcript

SIZE = (80, 24)
MILLION = 1_000_000


def headers(transcript: Transcript) -> list[str]:
    """The ``#index role`` part of every header line on screen."""
    found = []
    for line in screen_lines(transcript):
        body = line[2:].split("  ")[0].strip()
        if body.startswith("#"):
            found.append(body)
    return found


def first_header(transcript: Transcript) -> str:
    return headers(transcript)[0]


async def test_opens_a_million_messages_at_the_tail() -> None:
    source = FakeSource(MILLION)
    app = TranscriptApp(source)
    async with app.run_test(size=SIZE, message_hook=app.record) as pilot:
        await settle(pilot)
        transcript = app.transcript
        assert headers(transcript)[-1] == "#999999 assistant"
        assert screen_lines(transcript)[-2].strip() == "▌ message 999999"
        assert transcript.selected_index == MILLION - 1
        assert transcript.follow and transcript.count == MILLION
        assert source.served <= Transcript.TAIL_SIZE
        opened = app.posted_of(Transcript.Opened)
        assert len(opened) == 1 and opened[0].cursor == MILLION


async def test_jumps_to_top_middle_and_back_reading_a_bounded_amount() -> None:
    source = FakeSource(MILLION)
    app = TranscriptApp(source)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        transcript = app.transcript
        await pilot.press("g")
        await settle(pilot)
        assert first_header(transcript) == "#0 user"
        assert transcript.selected_index == 0 and not transcript.follow

        transcript.scroll_to_index(500_000)
        await settle(pilot)
        assert first_header(transcript) == "#500000 user"
        assert transcript.selected_index == 500_000

        await pilot.press("G")
        await settle(pilot)
        assert headers(transcript)[-1] == "#999999 assistant"
        assert transcript.follow
        assert source.served < 1_000
        assert not [call for call in source.calls if call[0] == "count_messages"]


async def test_scrollbar_maps_to_message_position() -> None:
    app = TranscriptApp(FakeSource(MILLION))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        transcript = app.transcript
        assert transcript.scroll_y == transcript.max_scroll_y  # at the bottom
        transcript.scroll_to(y=250_000, animate=False)
        await settle(pilot)
        assert first_header(transcript) == "#250000 user"
        assert not transcript.follow
        transcript.scroll_to(y=transcript.max_scroll_y, animate=False)
        await settle(pilot)
        assert transcript.follow
        assert headers(transcript)[-1] == "#999999 assistant"


async def test_keys_move_the_selection_and_post_selection_changed() -> None:
    app = TranscriptApp(FakeSource(100))
    async with app.run_test(size=SIZE, message_hook=app.record) as pilot:
        await settle(pilot)
        transcript = app.transcript
        await pilot.press("k", "up", "k")
        assert transcript.selected_index == 96
        await pilot.press("j")
        assert transcript.selected_index == 97
        changed = app.posted_of(Transcript.SelectionChanged)
        assert [m.index for m in changed][-4:] == [98, 97, 96, 97]
        last = changed[-1].message
        assert last is not None and last.content == "message 97"
        selected = [line for line in screen_lines(transcript) if line.startswith("▌ #")]
        assert selected == [line for line in screen_lines(transcript) if "#97 " in line]


async def test_selection_scrolls_into_view_and_pauses_follow() -> None:
    app = TranscriptApp(FakeSource(100))
    async with app.run_test(size=SIZE, message_hook=app.record) as pilot:
        await settle(pilot)
        transcript = app.transcript
        for _ in range(12):
            await pilot.press("k")
        await settle(pilot)
        assert transcript.selected_index == 87
        assert "#87 assistant" in headers(transcript)
        assert not transcript.follow
        follow = app.posted_of(Transcript.FollowChanged)
        assert follow and follow[-1].follow is False


async def test_page_keys_scroll_and_keep_selection_on_screen() -> None:
    app = TranscriptApp(FakeSource(1_000))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        transcript = app.transcript
        await pilot.press("pageup")
        await settle(pilot)
        before = first_header(transcript)
        await pilot.press("pageup")
        await settle(pilot)
        assert first_header(transcript) != before
        assert transcript.selected_index in transcript.visible_range()
        await pilot.press("space")
        await settle(pilot)
        assert first_header(transcript) == before


async def test_enter_expands_and_collapses_the_selected_message() -> None:
    app = TranscriptApp(FakeSource(11))  # message 10 is the long one (index % 7 == 3)
    async with app.run_test(size=(80, 50)) as pilot:
        await settle(pilot)
        transcript = app.transcript
        assert transcript.selected_index == 10
        text = "\n".join(screen_lines(transcript))
        assert "… 18 more lines (Enter to expand)" in text
        await pilot.press("enter")
        await settle(pilot)
        assert transcript.is_expanded(10)
        text = "\n".join(screen_lines(transcript))
        assert "message 10 line 29" in text and "more lines" not in text
        await pilot.press("enter")
        assert "… 18 more lines" in "\n".join(screen_lines(transcript))


async def test_follow_keeps_new_messages_in_view() -> None:
    source = FakeSource(50)
    app = TranscriptApp(source)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        transcript = app.transcript
        transcript.append_messages(source.grow(3))
        await settle(pilot)
        assert headers(transcript)[-1] == "#52 user"
        assert transcript.selected_index == 52 and transcript.follow
        assert "new message" not in "\n".join(screen_lines(transcript))


async def test_scrolled_up_shows_new_message_marker_and_g_resumes() -> None:
    source = FakeSource(50)
    app = TranscriptApp(source)
    async with app.run_test(size=SIZE, message_hook=app.record) as pilot:
        await settle(pilot)
        transcript = app.transcript
        await pilot.press("g")
        await settle(pilot)
        transcript.apply_changes(Changes(messages=tuple(source.grow(3)), cursor=53))
        await settle(pilot)
        assert first_header(transcript) == "#0 user"
        assert screen_lines(transcript)[-1].strip() == "3 new messages ↓ (G)"
        assert transcript.pending_new == 3
        follow = app.posted_of(Transcript.FollowChanged)[-1]
        assert (follow.follow, follow.pending) == (False, 3)
        await pilot.press("G")
        await settle(pilot)
        assert transcript.follow and transcript.pending_new == 0
        assert headers(transcript)[-1] == "#52 user"
        assert "new message" not in "\n".join(screen_lines(transcript))


async def test_f_toggles_follow() -> None:
    source = FakeSource(50)
    app = TranscriptApp(source)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        transcript = app.transcript
        await pilot.press("f")
        assert not transcript.follow
        transcript.append_messages(source.grow(1))
        await settle(pilot)
        assert headers(transcript)[-1] == "#49 assistant"
        assert "1 new message ↓ (G)" in screen_lines(transcript)[-1]
        await pilot.press("f")
        await settle(pilot)
        assert transcript.follow
        assert headers(transcript)[-1] == "#50 user"


async def test_unknown_count_shows_the_tail_then_enables_scrolling() -> None:
    gate = threading.Event()
    source = FakeSource(MILLION, index_known=False, count_gate=gate)
    app = TranscriptApp(source)
    async with app.run_test(size=SIZE, message_hook=app.record) as pilot:
        await pilot.pause(0.2)
        transcript = app.transcript
        assert not transcript.index_known
        assert headers(transcript)[-1] == "#? assistant"
        assert transcript.selected_index is None
        transcript.scroll_to_index(10)  # waits for the count
        gate.set()
        await settle(pilot)
        assert transcript.index_known and transcript.count == MILLION
        assert first_header(transcript) == "#10 user"
        await pilot.press("G")
        await settle(pilot)
        assert headers(transcript)[-1] == "#999999 assistant"
        counted = app.posted_of(Transcript.CountChanged)
        assert counted[-1].index_known and counted[-1].count == MILLION


async def test_set_count_from_the_app() -> None:
    source = FakeSource(5_000, index_known=False)
    app = TranscriptApp(source, auto_count=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        transcript = app.transcript
        assert headers(transcript)[-1] == "#? assistant"
        transcript.set_count(5_000)
        await settle(pilot)
        assert headers(transcript)[-1] == "#4999 assistant"
        assert transcript.selected_index == 4_999
        assert not [call for call in source.calls if call[0] == "count_messages"]


async def test_skipped_lines_are_shown_in_place() -> None:
    skipped = [
        SkippedLine(
            line=41, offset=4000, length=30, reason="not JSON", preview="{oops", before_index=40
        ),
        SkippedLine(
            line=53, offset=5000, length=9, reason="torn last line", preview='{"ro', before_index=50
        ),
    ]
    app = TranscriptApp(FakeSource(50, skipped=skipped))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        transcript = app.transcript
        lines = screen_lines(transcript)
        assert "line 53 skipped by ZeroClaw" in lines[-3]  # after the last message
        transcript.scroll_to_index(39)
        await settle(pilot)
        lines = [line.strip() for line in screen_lines(transcript)]
        warning = next(i for i, line in enumerate(lines) if "line 41 skipped by ZeroClaw" in line)
        assert lines[warning - 3].startswith("▌ #39") and lines[warning + 3].startswith("▏ #40")


async def test_search_terms_are_marked_on_screen() -> None:
    app = TranscriptApp(FakeSource(100))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        transcript = app.transcript
        transcript.scroll_to_index(42, terms=["message 42"])
        await settle(pilot)
        line = next(
            s for s in (transcript.render_line(y) for y in range(24)) if "message 42" in s.text
        )
        search = DEFAULT_THEME.search.bgcolor
        assert [seg.text for seg in line if seg.style and seg.style.bgcolor == search] == [
            "message 42"
        ]


async def test_read_failure_is_shown_and_posted() -> None:
    app = TranscriptApp(FakeSource(10, fail=OSError("disk on fire\nsecond line")))
    async with app.run_test(size=SIZE, message_hook=app.record) as pilot:
        await settle(pilot)
        failed = app.posted_of(Transcript.LoadFailed)
        assert failed and failed[0].error == "disk on fire"
        assert "could not read the session: disk on fire" in screen_lines(app.transcript)[0]


async def test_a_failing_range_read_is_reported_once_not_retried() -> None:
    source = FakeSource(1_000, fail_ranges=OSError("gone"))
    app = TranscriptApp(source)
    async with app.run_test(size=SIZE, message_hook=app.record) as pilot:
        await settle(pilot)
        await pilot.press("g")
        await settle(pilot)
        await pilot.pause(0.2)
        failed = [call for call in source.calls if call[0] == "read_range failed"]
        assert len(failed) == 1
        assert len(app.posted_of(Transcript.LoadFailed)) == 1
        assert "#1 not available" in "\n".join(screen_lines(app.transcript))


def wheel(kind: type[events.MouseEvent], widget: Transcript) -> events.MouseEvent:
    return kind(widget, 4, 4, 0, 0, 0, False, False, False)


async def test_mouse_wheel_scrolls_lines_and_pauses_follow() -> None:
    app = TranscriptApp(FakeSource(200))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        transcript = app.transcript
        before = screen_lines(transcript)
        transcript.post_message(wheel(events.MouseScrollUp, transcript))
        await settle(pilot)
        after = screen_lines(transcript)
        assert after[Transcript.WHEEL_LINES :] == before[: -Transcript.WHEEL_LINES]
        assert not transcript.follow
        transcript.post_message(wheel(events.MouseScrollDown, transcript))
        await settle(pilot)
        assert screen_lines(transcript) == before
        assert transcript.follow


async def test_click_selects_a_message() -> None:
    app = TranscriptApp(FakeSource(50))
    async with app.run_test(size=SIZE, message_hook=app.record) as pilot:
        await settle(pilot)
        transcript = app.transcript
        row = next(y for y, line in enumerate(screen_lines(transcript)) if "#47 " in line)
        await pilot.click(Transcript, offset=(4, row))
        assert transcript.selected_index == 47
        assert app.posted_of(Transcript.SelectionChanged)[-1].index == 47


async def test_resize_keeps_the_bottom_pinned_and_rewraps() -> None:
    app = TranscriptApp(FakeSource(60))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.resize_terminal(40, 30)
        await settle(pilot)
        transcript = app.transcript
        lines = screen_lines(transcript)
        assert headers(transcript)[-1] == "#59 assistant"
        assert {len(line) for line in lines} == {transcript.scrollable_content_region.width}


async def test_stays_bounded_while_scrolling_everywhere() -> None:
    source = FakeSource(MILLION)
    app = TranscriptApp(source)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        transcript = app.transcript
        for target in range(0, MILLION, 50_000):
            transcript.scroll_to_index(target)
            await settle(pilot)
            assert first_header(transcript).startswith(f"#{target} ")
        for _ in range(10):
            await pilot.press("pageup")
        await settle(pilot)
        # 20 jumps + paging: each read is at most one screen plus prefetch, never the session.
        assert source.served <= 21 * (2 * Transcript.PREFETCH + 24) + Transcript.TAIL_SIZE
        assert max(stop - start for _, start, stop in source.calls) <= Transcript.FETCH_MAX
        assert len(transcript._messages) <= Transcript.MESSAGE_CACHE


async def test_set_messages_without_a_source() -> None:
    app = TranscriptApp(None)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        transcript = app.transcript
        messages = [StoredMessage(index=i, role="user", content=f"m{i}") for i in range(95, 100)]
        transcript.set_messages(messages, count=100)
        await settle(pilot)
        assert headers(transcript)[-1] == "#99 user"
        assert transcript.has_index(0) and not transcript.has_index(100)
        await pilot.press("g")
        assert "#0 not loaded" in screen_lines(transcript)[0]


async def test_bindings_have_footer_descriptions() -> None:
    app = TranscriptApp(FakeSource(3))
    async with app.run_test(size=(120, 24)) as pilot:
        await settle(pilot)
        app.transcript.focus()
        await pilot.pause()
        active = app.screen.active_bindings.values()
        mine = [a.binding for a in active if a.node is app.transcript]
        # The footer keeps the transcript's own commands; moving keys are in the help screen.
        assert {b.description for b in mine if b.show} == {"Expand", "Follow"}
        assert {"Previous", "Next", "Top", "Bottom"} <= {b.description for b in mine}
        assert app.query_one(Footer).display
