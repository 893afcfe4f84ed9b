"""The session list's fast paths give the same answers as the slow ones they replace."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable

import pytest
from textual.app import App, ComposeResult

from storage.models import SessionMetadata
from storage.zcformat import parse_rfc3339
from tui.messages import SessionRef
from tui.widgets.session_list import SessionList, activity_of
from tui.widgets.transcript import Transcript

from .conftest import fixed_clock


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-25T14:41:04.625129699+00:00",
        "2026-11-23T01:02:03Z",
        "2026-11-23 01:02:03z",
        "2026-11-23t01:02:03.1-05:30",
        "2026-11-23T01:02:03",
        "2026-11-23T01:02Z",
        "20261123T010203Z",
        "2026-11-23T01:02:03,5Z",
        "2026-11-23T01:02:03.+00:00",
        "2026-11-23T01:02:03+0000",
        "2026-11-23T01:02:03.1234567890Z",
        "2026-13-23T01:02:03Z",
        " 2026-11-23T01:02:03Z",
        "",
        "bad",
    ],
)
def test_activity_of_agrees_with_the_strict_parser(text: str) -> None:
    assert activity_of(text) == parse_rfc3339(text)


def _meta(rnd: random.Random, i: int) -> SessionMetadata:
    t = rnd.randrange(5000)
    return SessionMetadata(
        key=f"k{i:03d}",
        backend="jsonl",
        last_activity=f"2026-11-23T{t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d}+00:00",
        message_count=rnd.choice([None, 1, 5]),
        name=rnd.choice([None, "a", "b"]),
    )


class _ListApp(App[None]):
    def compose(self) -> ComposeResult:
        yield SessionList(clock=fixed_clock, stuck_after=600, id="sessions")


async def test_a_small_upsert_in_place_matches_a_full_rebuild() -> None:
    app = _ListApp()
    async with app.run_test(size=(60, 30)) as pilot:
        lst = app.query_one(SessionList)
        rnd = random.Random(7)
        for _mode in range(2):  # by activity, then by name (both have a total order)
            lst.set_sessions([_meta(rnd, i) for i in range(60)])
            for _ in range(80):
                if rnd.random() < 0.2:
                    lst.cursor = rnd.randrange(60)
                metas = [_meta(rnd, rnd.randrange(66)) for _ in range(rnd.randrange(4))]
                gone = [SessionRef("jsonl", f"k{rnd.randrange(66):03d}")]
                metas = [m for m in metas if m.key != gone[0].key]
                lst.upsert(metas, gone if rnd.random() < 0.3 else [])
                await pilot.pause()
                shown = [lst.render_line(y).text for y in range(lst.size.height)]
                order, highlighted = lst.refs, lst.highlighted
                assert lst._index == {row.ref: i for i, row in enumerate(lst._view)}
                lst._rebuild()
                assert lst.refs == order and lst.highlighted == highlighted
                assert [lst.render_line(y).text for y in range(lst.size.height)] == shown
            lst.cycle_sort()


async def test_counts_are_asked_only_for_painted_rows() -> None:
    wanted: list[SessionRef] = []

    class App2(_ListApp):
        def on_session_list_counts_wanted(self, message: SessionList.CountsWanted) -> None:
            wanted.extend(message.refs)

    app = App2()
    async with app.run_test(size=(60, 30)) as pilot:
        lst = app.query_one(SessionList)
        metas = [
            SessionMetadata(key=f"k{i:04d}", backend="jsonl", last_activity=None)
            for i in range(1000)
        ]
        lst.set_sessions(metas)
        await pilot.pause()
        await pilot.pause()
        assert wanted and len(wanted) <= lst.size.height // SessionList.ROW_HEIGHT + 1
        assert set(wanted) <= set(lst.refs[: len(wanted)])


async def test_g_before_the_index_waits_for_it_with_progress_then_jumps() -> None:
    from .fakes import FakeSource, TranscriptApp
    from .test_transcript import first_header

    gate = threading.Event()

    class Indexed(FakeSource):
        def build_index(
            self,
            key: str,
            progress: Callable[[int, int], None] | None = None,
            cancel: threading.Event | None = None,
        ) -> int | None:
            assert progress is not None and cancel is not None
            progress(50, 100)
            gate.wait(10)
            return None if cancel.is_set() else self.count_messages(key)

    source = Indexed(100_000, index_known=False)
    app = TranscriptApp(source)
    async with app.run_test(size=(80, 24), message_hook=app.record) as pilot:
        transcript = app.transcript
        await pilot.pause(0.2)
        transcript.focus()
        await pilot.press("g")
        await pilot.pause(0.1)
        assert not transcript.index_known and transcript.jump_pending
        assert transcript.indexing == 0.5
        assert app.posted_of(Transcript.IndexProgress)
        gate.set()
        for _ in range(100):
            if transcript.index_known and not transcript.jump_pending:
                break
            await pilot.pause(0.02)
        await pilot.pause()
        assert transcript.indexing is None and first_header(transcript) == "#0 user"
