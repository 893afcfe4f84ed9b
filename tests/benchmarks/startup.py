"""Start to the session list painted: 10,000 sessions against one, for each store."""

from __future__ import annotations

import re
from pathlib import Path

from tests.benchmarks.context import Ctx
from tests.benchmarks.results import Row, median
from tests.benchmarks.term import Pane


def _paint_time(ctx: Ctx, workspace: Path, sessions: int) -> tuple[float, bool]:
    """Seconds from spawn to the list painted (its status line and first rows on screen), and
    whether a count was still ``…`` then (the list did not wait for counting)."""
    status = re.compile(rf"^\s*{sessions} sessions? · by", re.M)
    row = re.compile(r"^ \S.*(ago|now|-)\s*▕", re.M)
    pane: Pane = ctx.zc("start", workspace)
    with pane:
        elapsed = pane.wait_for(
            lambda s: status.search(s) is not None and row.search(s) is not None,
            what=f"{sessions} sessions listed",
        )
        uncounted = "… msgs" in pane.capture()
    return elapsed, uncounted


def run(ctx: Ctx) -> list[Row]:
    rows = []
    loads = ctx.loads
    for label, many, one, n in (
        ("JSONL", loads.jsonl, loads.jsonl_one, loads.facts["jsonl"]["sessions"]),
        ("SQLite", loads.sqlite, loads.sqlite_one, loads.facts["sqlite"]["sessions"]),
    ):
        big: list[float] = []
        small: list[float] = []
        uncounted = 0
        _paint_time(ctx, one, 1)  # warm the page cache and Python's bytecode cache
        _paint_time(ctx, many, n)
        for _ in range(ctx.runs):
            small.append(_paint_time(ctx, one, 1)[0])
            t, waiting = _paint_time(ctx, many, n)
            big.append(t)
            uncounted += waiting
        ratio = median(big) / median(small)  # type: ignore[operator]
        met = ratio <= 1.5
        reason = f"{ratio:.2f}x the 1-session start"
        if label == "JSONL":
            reason += f"; counts still '…' at first paint in {uncounted}/{ctx.runs} runs"
        rows.append(
            Row(
                what=f"start to session list painted, {n:,} sessions ({label})",
                target="<= 1.5x the 1-session start",
                unit="s",
                ours=big,
                peer=small,
                peer_name="same app, 1 session:",
                ratio=ratio,
                ratio_label=f"{n:,} / 1 sessions",
                met=met,
                reason=reason,
                how="tmux 120x40, capture-pane every 5 ms from spawn until the status line "
                "'N sessions · by' and the first row are on screen; 1-session and "
                f"{n:,}-session starts alternate",
                commands=[ctx.cmd(ctx.zc_argv(many)), ctx.cmd(ctx.zc_argv(one))],
                group="startup",
            )
        )
    return rows
