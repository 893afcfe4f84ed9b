"""Profile one benchmark scenario with py-spy, in a real terminal, and print where time went.

    python -m tests.benchmarks.profile SCENARIO    # e.g. open, live, rollback (see SCENARIOS)

The app runs under ``py-spy record --threads --format raw`` in a tmux pane; the scenario's
steps run; the app quits; the collapsed stacks are summed per function (self and total time)
per thread, for this repo's code and the libraries it calls. Needs ``pip install py-spy``.
"""

from __future__ import annotations

import collections
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.benchmarks.content import RARE_JSONL
from tests.benchmarks.context import REPO, Ctx, find_toolong
from tests.benchmarks.live import zeroclaw_append
from tests.benchmarks.term import Pane, kill_server, wait_until_idle
from tests.benchmarks.workloads import BIG_KEY, LAST_MARK, LIVE_KEY, ensure

Steps = Callable[[Pane, Ctx], None]


def _startup(pane: Pane, ctx: Ctx) -> None:
    pane.wait_regex(r"\d+ sessions · by", timeout=60)


def _open(pane: Pane, ctx: Ctx) -> None:
    pane.wait_text(LAST_MARK, timeout=60)


def _jump(pane: Pane, ctx: Ctx) -> None:
    pane.wait_text(LAST_MARK, timeout=60)
    pane.wait_text(f"{ctx.loads.facts['jsonl']['big']['messages']} msgs", timeout=120)
    wait_until_idle(pane.pid(), limit=90)
    pane.keys("Enter")
    time.sleep(0.3)
    pane.keys("g")
    pane.wait_regex(r"[▏▌] #0 \w", timeout=30)


def _live(pane: Pane, ctx: Ctx) -> None:
    pane.wait_text("LIVE-READY", timeout=60)
    wait_until_idle(pane.pid(), limit=90)
    for i in range(20):
        mark = f"PROFMARK-{i}"
        zeroclaw_append(str(ctx.loads.live_file), "assistant", f"{mark} new")
        pane.wait_text(mark, timeout=10)
        time.sleep(0.3)


def _rollback(pane: Pane, ctx: Ctx) -> None:
    """b, then y, on the open 1M-message session (the cut bytes are put back afterwards)."""
    from tests.benchmarks.rollback import Restorer

    restorer = Restorer(ctx.loads)
    pane.wait_text(LAST_MARK, timeout=60)
    pane.wait_text(f"{ctx.loads.facts['jsonl']['big']['messages']} msgs", timeout=120)
    wait_until_idle(pane.pid(), limit=90)
    pane.keys("b")
    pane.wait_text("enter confirm", timeout=30)
    pane.keys("y")
    pane.wait_regex(r"removed \d+ message", timeout=30)
    time.sleep(1.0)
    restorer.restore()


def _search_jsonl(pane: Pane, ctx: Ctx) -> None:
    pane.wait_regex(r"\d+ sessions · by", timeout=60)
    wait_until_idle(pane.pid(), limit=90)
    pane.keys("/")
    pane.wait_text("search all sessions")
    pane.type(RARE_JSONL)
    pane.keys("Enter")
    pane.wait_text("enter: open", timeout=120)


SCENARIOS: dict[str, tuple[str, list[str], Steps]] = {
    "startup-jsonl": ("jsonl", [], _startup),
    "startup-sqlite": ("sqlite", [], _startup),
    "open": ("jsonl", ["--session", BIG_KEY], _open),
    "jump": ("jsonl", ["--session", BIG_KEY], _jump),
    "live": ("jsonl", ["--session", LIVE_KEY], _live),
    "search-jsonl": ("jsonl", [], _search_jsonl),
    "rollback": ("jsonl", ["--session", BIG_KEY], _rollback),
}


def summarize(raw: Path, top: int = 25) -> str:
    """Self and total samples per (thread, function) from py-spy's collapsed stacks."""
    self_t: collections.Counter[tuple[str, str]] = collections.Counter()
    total: collections.Counter[tuple[str, str]] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        thread, n = _thread(frames[0]), int(count)
        threads[thread] += n
        names = [_short(f) for f in frames[1:]]
        if names:
            self_t[(thread, names[-1])] += n
        for name in set(names):
            total[(thread, name)] += n
    out = ["samples per thread: " + ", ".join(f"{t}={n}" for t, n in threads.most_common())]
    for title, counter in (("self", self_t), ("total (inclusive)", total)):
        out.append(f"\n-- top {title} --")
        for (thread, name), n in counter.most_common(top):
            out.append(f"{n:7d}  {100 * n / max(1, threads[thread]):5.1f}% of {thread:<14} {name}")
    return "\n".join(out)


def _thread(frame: str) -> str:
    """``thread (0x7f..): MainThread`` -> ``MainThread``."""
    return frame.rsplit(": ", 1)[-1][:14]


def _short(frame: str) -> str:
    """``func (path/to/file.py:123)`` -> ``func (file.py:123)``, repo paths kept relative."""
    m = re.match(r"(.*) \((.*):(\d+)\)$", frame)
    if not m:
        return frame
    func, path, line = m.groups()
    rel = path.replace(str(REPO) + "/", "")
    if "site-packages/" in rel:
        rel = rel.split("site-packages/", 1)[1]
    return f"{func} ({rel}:{line})"


def main(argv: list[str]) -> int:
    name = argv[0] if argv else "open"
    workspace, args, steps = SCENARIOS[name]
    loads = ensure(Path("/tmp/zc-bench"), "--quick" in argv)
    ctx = Ctx(loads=loads, runs=1, quick=False, toolong=find_toolong(), lnav=None)
    out = loads.root / f"profile-{name}.txt"
    out.unlink(missing_ok=True)
    ws = loads.jsonl if workspace == "jsonl" else loads.sqlite
    argv_app = [
        "py-spy",
        "record",
        "--threads",
        "--format",
        "raw",
        "-r",
        "500",
        "-o",
        str(out),
        "--",
        *ctx.zc_argv(ws, *args),
    ]
    pane = Pane(ctx.name("prof"), argv_app, "storage.cli", cwd=REPO, env=ctx.env)
    pane.start()
    try:
        steps(pane, ctx)
        pane.keys("q")
        deadline = time.time() + 30
        while not out.exists() and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(1)
    finally:
        pane.stop()
        kill_server()
        loads.reset_live()
    print(f"raw stacks: {out}")
    print(summarize(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
