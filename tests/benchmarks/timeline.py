"""Where the start-up time goes: the app's milestones, timed inside the real app in tmux.

    python -m tests.benchmarks.timeline jsonl --session big     # open the 1M-message session
    python -m tests.benchmarks.timeline sqlite                  # the 10,000-session list

The app runs as ``python -m tests.benchmarks.timeline --child ...``: this module wraps a few
methods (listing, set_sessions, open_session, read_tail, the first paints) with timestamps,
then calls ``storage.cli.main``. The source is not changed; the wrappers cost microseconds.
Times are ms since the child's interpreter reached this module (about 30 ms after spawn).
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.util
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

T0 = time.perf_counter()
LOG: list[tuple[int, str]] = []


def mark(name: str) -> None:
    LOG.append((round((time.perf_counter() - T0) * 1000), name))


def _wrap(cls: Any, name: str, label: str) -> None:
    func = getattr(cls, name)

    @functools.wraps(func)
    def timed(*args: Any, **kwargs: Any) -> Any:
        mark(f"{label} start")
        try:
            return func(*args, **kwargs)
        finally:
            mark(f"{label} end")

    setattr(cls, name, timed)


def _first(cls: Any, name: str, label: str, ready: Callable[[Any], bool]) -> None:
    func = getattr(cls, name)
    done = False

    def first(self: Any, *args: Any) -> Any:
        nonlocal done
        if not done and ready(self):
            done = True
            mark(label)
        return func(self, *args)

    setattr(cls, name, first)


def _wrap_ui(app_module: Any) -> None:
    from tui.widgets.session_list import SessionList
    from tui.widgets.transcript import Transcript

    app = app_module.ZcSessionsApp
    for cls, name, label in (
        (app, "on_mount", "on_mount"),
        (SessionList, "set_sessions", "SessionList.set_sessions (UI)"),
        (app, "open_session", "open_session (UI)"),
        (Transcript, "_apply_tail", "Transcript._apply_tail (UI)"),
    ):
        _wrap(cls, name, label)
    _first(SessionList, "render_line", "first session row painted", lambda s: bool(s._view))
    _first(Transcript, "render_line", "first transcript line painted", lambda s: s._opened)


class _AfterAppImport(importlib.abc.MetaPathFinder):
    """Wraps the browser's methods once ``tui.app`` is imported, not before: the CLI opens the
    workspace and starts listing before that import, and the timeline must show that order."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != "tui.app":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.loader is not None
        run = spec.loader.exec_module

        def exec_module(module: Any) -> None:
            run(module)
            mark("tui.app imported")
            _wrap_ui(module)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def child(argv: list[str]) -> int:
    import storage.cli
    from storage.jsonl import JsonlBackend
    from storage.sqlite import SqliteBackend

    mark("storage.cli imported")
    for cls, name, label in (
        (JsonlBackend, "list_newest", "jsonl first page (thread)"),
        (SqliteBackend, "list_newest", "sqlite first page (thread)"),
        (JsonlBackend, "list_sessions_with_metadata", "jsonl listing (thread)"),
        (SqliteBackend, "list_sessions_with_metadata", "sqlite listing (thread)"),
        (JsonlBackend, "read_tail", "jsonl read_tail"),
        (SqliteBackend, "read_tail", "sqlite read_tail"),
    ):
        _wrap(cls, name, label)
    sys.meta_path.insert(0, _AfterAppImport())
    try:
        return storage.cli.main(argv)
    finally:
        Path(os.environ["ZC_TIMELINE"]).write_text("".join(f"{t:6d} ms  {n}\n" for t, n in LOG))


def main(argv: list[str]) -> int:
    from tests.benchmarks.context import REPO, Ctx
    from tests.benchmarks.term import Pane, kill_server
    from tests.benchmarks.workloads import LAST_MARK, ensure

    loads = ensure(Path("/tmp/zc-bench"), False)
    ctx = Ctx(loads=loads, runs=1, quick=False, toolong=None, lnav=None)
    workspace = loads.root / argv[0]
    out = loads.root / "timeline.txt"
    marker = LAST_MARK if "--session" in argv else r"\d+ sessions? · by"
    env = ctx.env | {"ZC_TIMELINE": str(out)}
    for _ in range(2):  # the first warms the page cache
        pane = Pane(
            ctx.name("timeline"),
            [
                sys.executable,
                "-m",
                "tests.benchmarks.timeline",
                "--child",
                "--workspace",
                str(workspace),
                *argv[1:],
            ],
            "timeline",
            cwd=REPO,
            env=env,
        )
        pane.start()
        seen = pane.wait_regex(marker, timeout=60)
        time.sleep(0.3)
        out.unlink(missing_ok=True)
        pane.keys("q")
        deadline = time.time() + 15  # quitting waits for running thread workers
        while not out.exists() and time.time() < deadline:
            time.sleep(0.1)
        pane.stop()
    kill_server()
    print(f"on screen {seen * 1000:.0f} ms after spawn (tmux)\n{out.read_text()}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        sys.exit(child(sys.argv[2:]))
    sys.exit(main(sys.argv[1:]))
