"""In-process measurements with Textual's ``App.run_test()``: each isolates one step that the
terminal runs also include (tmux polling, process start, the typing debounce).

- paging: a key press until the transcript's visible lines hold no ``loading…`` placeholder,
  and random jumps (``Transcript.scroll_to_index``) anywhere in the 1M-message session;
- SQLite search: Enter until the first hit is in the pane, and from the search's start (the
  pane's debounced ``QueryChanged``) until then;
- JSONL search: the event loop's worst stall while a full scan runs (how long a key press
  could wait), and Escape mid-scan until the search worker has stopped.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual import events

from tests.benchmarks.content import HALF_WORD, RARE_JSONL, RARE_SQLITE
from tests.benchmarks.context import Ctx
from tests.benchmarks.results import Row, median
from tests.benchmarks.workloads import BIG_KEY

SIZE = (120, 40)


def make_app(ctx: Ctx, workspace: Path, session: str | None = None) -> Any:
    from storage.journal import Journal
    from storage.workspace import open_workspace
    from tui.app import ZcSessionsApp

    journal = Journal(root=ctx.loads.state)
    ws = open_workspace(workspace, journal=journal)
    return ZcSessionsApp(ws, session=session, journal=journal)


async def until(test: Callable[[], bool], timeout: float = 60.0, what: str = "") -> float:
    start = time.perf_counter()
    while not test():
        if time.perf_counter() - start > timeout:
            raise TimeoutError(f"headless: no {what or 'condition'} after {timeout:.0f} s")
        await asyncio.sleep(0.0005)
    return time.perf_counter() - start


def busy(app: Any, group: str) -> bool:
    return any(w.group == group and w.is_running for w in app.workers)


async def settle(app: Any, quiet: float = 1.0, timeout: float = 300.0) -> None:
    """Until no counting worker has run for ``quiet`` seconds (counts start when rows paint)."""
    start = last_busy = time.perf_counter()
    while time.perf_counter() - last_busy < quiet:
        if time.perf_counter() - start > timeout:
            raise TimeoutError("headless: the app never settled")
        if busy(app, "counts"):
            last_busy = time.perf_counter()
        await asyncio.sleep(0.05)


def screen_text(widget: Any) -> str:
    return "\n".join(widget.render_line(y).text for y in range(widget.size.height))


# --- paging --------------------------------------------------------------------------------


async def _paging(ctx: Ctx) -> dict[str, list[float]]:
    n = ctx.loads.facts["jsonl"]["big"]["messages"]
    app = make_app(ctx, ctx.loads.jsonl, BIG_KEY)
    got: dict[str, list[float]] = {"page": [], "jump": []}
    async with app.run_test(size=SIZE) as pilot:
        t = app.transcript
        await until(lambda: t.index_known and t.count == n, 180, "index")
        await settle(app)
        t.focus()
        await pilot.pause()

        def ready() -> bool:
            return "loading…" not in screen_text(t)

        for key, times in (("pageup", 10), ("pagedown", 10), ("home", 1), ("pagedown", 5)):
            for _ in range(times):
                before = screen_text(t)
                t0 = time.perf_counter()
                # Not pilot.press: it waits for idle in steps, which adds ~60 ms of its own.
                app.post_message(events.Key(key, None))
                await until(lambda b=before: ready() and screen_text(t) != b, 10, "page")
                got["page"].append(time.perf_counter() - t0)
                await pilot.pause(0.05)
        rng = random.Random(7)
        for index in [rng.randrange(n) for _ in range(20)]:
            t0 = time.perf_counter()
            t.scroll_to_index(index)
            await until(lambda i=index: ready() and t.visible_range().start == i, 10, "jump")
            got["jump"].append(time.perf_counter() - t0)
            await pilot.pause(0.05)
    return got


# --- SQLite search -------------------------------------------------------------------------


def _search_hook() -> tuple[dict[str, float], Callable[[object], None]]:
    """When the (debounced) query reached the app, and when its first hits did."""
    from tui.messages import SearchHitsFound
    from tui.widgets.search_pane import SearchPane

    seen: dict[str, float] = {}

    def hook(message: object) -> None:
        if isinstance(message, SearchPane.QueryChanged) and message.query:
            seen.setdefault("query", time.perf_counter())
        if isinstance(message, SearchHitsFound) and message.hits:
            seen.setdefault("hits", time.perf_counter())
        if isinstance(message, SearchHitsFound) and message.done:
            seen.setdefault("done", time.perf_counter())

    return seen, hook


async def _sqlite_search(ctx: Ctx) -> dict[str, list[float]]:
    seen, hook = _search_hook()
    got: dict[str, list[float]] = {"rare": [], "rare_search": [], "half": [], "half_search": []}
    app = make_app(ctx, ctx.loads.sqlite)
    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        await until(lambda: app.sessions.total > 0, 60, "listing")
        await pilot.pause(0.5)
        await pilot.press("slash")
        pane = app.search_pane
        for _ in range(ctx.runs):
            for label, word in (("rare", RARE_SQLITE), ("half", HALF_WORD)):
                await _clear(pilot, pane)
                seen.clear()
                await pilot.press(*word)
                t0 = time.perf_counter()
                await pilot.press("enter")
                await until(lambda: bool(pane.hits), 30, "hits")
                t1 = time.perf_counter()
                got[label].append(t1 - t0)
                # Timed by the message hook: pilot.press returns only once the app is idle,
                # and Enter now also opens the first hit.
                got[label + "_search"].append(seen["hits"] - seen["query"])
                await until(lambda: not pane.searching, 30, "search end")
    return got


# --- JSONL search: responsiveness and cancel -------------------------------------------------


async def _jsonl_search(ctx: Ctx) -> dict[str, list[float]]:
    got: dict[str, list[float]] = {
        "first": [],
        "done": [],
        "lag_max": [],
        "lag_p99": [],
        "cancel": [],
    }
    seen, hook = _search_hook()
    app = make_app(ctx, ctx.loads.jsonl)
    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        await until(lambda: app.sessions.total > 0, 60, "listing")
        await settle(app)
        await pilot.press("slash")
        pane = app.search_pane
        for _ in range(ctx.runs):
            await _clear(pilot, pane)
            seen.clear()
            await pilot.press(*RARE_JSONL)
            lags: list[float] = []
            stop = asyncio.Event()
            monitor = asyncio.create_task(_lag_monitor(lags, stop))
            # No Enter: it would open the first hit mid-scan, and that is not the scan's cost.
            await until(lambda: "query" in seen, 5, "search start")
            await until(lambda: bool(pane.hits), 60, "first hit")
            t0 = seen["query"]
            got["first"].append(seen["hits"] - t0)  # hook times: see _sqlite_search
            await until(lambda: not pane.searching and "hits" in _status(pane), 120, "done")
            got["done"].append(seen["done"] - t0)
            stop.set()
            await monitor
            got["lag_max"].append(max(lags))
            got["lag_p99"].append(statistics.quantiles(lags, n=100)[98] if len(lags) > 2 else 0)
            got["cancel"].append(await _cancel(pilot, app))
    return got


async def _clear(pilot: Any, pane: Any) -> None:
    """An empty search box and no hits (the focus may have moved to the results)."""
    pane.focus_input()
    await pilot.press("ctrl+u")
    await until(lambda: not pane.hits and not pane.query_text, 10, "cleared")
    await pilot.pause(0.3)


def _status(pane: Any) -> str:
    return str(pane.query_one("#search-status").render())


async def _lag_monitor(lags: list[float], stop: asyncio.Event, tick: float = 0.005) -> None:
    """How late a 5 ms sleep wakes up on the app's event loop: what a key press would wait."""
    while not stop.is_set():
        t = time.perf_counter()
        await asyncio.sleep(tick)
        lags.append(time.perf_counter() - t - tick)


async def _cancel(pilot: Any, app: Any) -> float:
    """Escape 0.3 s into a full scan for an absent word: seconds until no search worker runs."""
    pane = app.search_pane
    await _clear(pilot, pane)
    await pilot.press(*"absentwordneverthere")  # the search starts after the debounce
    await until(lambda: busy(app, "search"), 5, "search start")
    await asyncio.sleep(0.3)
    if not busy(app, "search"):
        return float("nan")
    # Watched from a thread: pilot.press itself returns only once the app has repainted the
    # screen without the pane (~150 ms), which is not part of stopping the search.
    stopped: list[float] = []

    def watch() -> None:
        while busy(app, "search"):
            time.sleep(0.0005)
        stopped.append(time.perf_counter())

    t0 = time.perf_counter()
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    await pilot.press("escape")
    await until(lambda: bool(stopped), 30, "search stop")
    took = stopped[0] - t0
    await pilot.press("slash")
    return took


def run(ctx: Ctx) -> list[Row]:
    paging = asyncio.run(_paging(ctx))
    sq = asyncio.run(_sqlite_search(ctx))
    js = asyncio.run(_jsonl_search(ctx))
    n = ctx.loads.facts["jsonl"]["big"]["messages"]
    rows = []

    def row(
        what: str, target: str, xs: list[float], limit: float, how: str, **extra: object
    ) -> Row:
        xs = [x for x in xs if x == x]  # drop NaN (a scan that ended before the cancel)
        med = median(xs)
        return Row(
            what=what + " (headless)",
            target=target,
            unit="s",
            ours=xs,
            met=med is not None and med <= limit,
            reason=f"median {med * 1000:.0f} ms, max {max(xs) * 1000:.0f} ms"
            if xs
            else "no samples",
            how=how,
            extra=dict(extra),
            group="headless",
        )

    rows.append(
        row(
            f"page down/up in the {n:,}-message session",
            "<= 50 ms per screen",
            paging["page"],
            0.05,
            "a Key event posted to the app until the transcript's rendered lines changed "
            "and hold no 'loading…'; "
            "10 PageUp from the end, 10 PageDown, Home, 5 PageDown per run (one run)",
        )
    )
    rows.append(
        row(
            f"jump anywhere in the {n:,}-message session",
            "<= 50 ms per screen",
            paging["jump"],
            0.05,
            "Transcript.scroll_to_index(random index) until that message is on the top "
            "line and nothing is 'loading…'; 20 random indices",
        )
    )
    how = (
        "the time from the search's start (the pane's debounced QueryChanged reaching "
        "the app) until the hits are in the pane (SearchPane.hits); the 150 ms debounce is "
        "excluded here and included in the tmux rows"
    )
    rows.append(
        row(
            "search a rare word, 1M SQLite messages: hits in the pane",
            "<= 300 ms after Enter",
            sq["rare_search"],
            0.3,
            how,
            **{
                "pilot Enter to hits (ms; pilot.press waits for idle)": [
                    round(x * 1000) for x in sq["rare"]
                ]
            },
        )
    )
    rows.append(
        row(
            "search a word in half of all messages: first page in the pane",
            "<= 300 ms after Enter",
            sq["half_search"],
            0.3,
            how,
            **{"pilot Enter to hits (ms)": [round(x * 1000) for x in sq["half"]]},
        )
    )
    rows.append(row("JSONL search: first hit in the pane", "<= 300 ms", js["first"], 0.3, how))
    rows.append(
        row(
            "JSONL search: full scan of the workspace finished",
            "<= 3 s",
            js["done"],
            3.0,
            "from the search's start until the pane's status says done",
        )
    )
    rows.append(
        row(
            "JSONL search: UI responsive during the full scan (worst event-loop stall)",
            "responsive throughout (here: worst stall <= 100 ms)",
            js["lag_max"],
            0.1,
            "a 5 ms asyncio.sleep on the app's loop, over and over during the scan: how "
            "late it wakes is how long a key press would wait",
            **{"p99 stall (ms)": [round(x * 1000, 1) for x in js["lag_p99"]]},
        )
    )
    rows.append(
        row(
            "JSONL search: Escape mid-scan until the search worker stopped",
            "cancellable (here: <= 100 ms)",
            js["cancel"],
            0.1,
            "Escape 0.3 s into a full scan for an absent word, until no worker of the "
            "'search' group is running (watched from a thread: the time pilot.press takes to "
            "return, the repaint without the pane, is not counted)",
        )
    )
    return rows
