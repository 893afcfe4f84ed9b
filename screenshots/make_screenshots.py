"""Regenerate the screenshots in this folder from the real app, headless.

    python screenshots/make_screenshots.py [--only NAME ...] [--no-png]

Each shot runs ``ZcSessionsApp`` with ``app.run_test(size=(120, 40))`` and a pilot, on a fresh
copy of the demo workspace (``tui.demo.make_demo_workspace`` at ``DEMO_NOW``) or of a shared
fixture (``../shared/fixtures`` beside the repo), with a fixed clock, and saves the screen with
``app.save_screenshot`` as ``<name>.svg`` here. Every workspace, the undo journal, HOME and the
working folder live in one temp dir that is removed at the end: nothing outside the repo is
written, and the header shows a short relative path. The live-tail shot appends to a JSONL file
the way ZeroClaw does (O_APPEND, write the JSON, write the newline, close) while the app runs.

Each SVG is also converted to ``<name>.png`` when a converter is available: ``rsvg-convert``
(Debian: ``apt-get install librsvg2-bin``) or the ``cairosvg`` Python package.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
FIXTURES = REPO.parent / "shared" / "fixtures"
SIZE = (120, 40)

sys.path.insert(0, str(REPO))

from textual.pilot import Pilot  # noqa: E402
from textual.widgets import Input  # noqa: E402

from storage.journal import Journal  # noqa: E402
from storage.models import ChatMessage  # noqa: E402
from storage.workspace import open_workspace  # noqa: E402
from tests.tui_tests.conftest import settle  # noqa: E402
from tests.tui_tests.conftest import wait_for as wait_until  # noqa: E402
from tui.app import ZcSessionsApp  # noqa: E402
from tui.demo import DEMO_NOW, LIVE_JSONL, append_jsonl, make_demo_workspace  # noqa: E402

# Just after the sqlite fixture's writes (the clock the browser tests use).
FIXTURE_NOW = datetime(2026, 11, 23, 17, 30, 0, tzinfo=UTC)

Step = Callable[[Pilot[Any], ZcSessionsApp, Path], Awaitable[None]]


# --- waiting ---------------------------------------------------------------------------------


async def wait_for(pilot: Pilot[Any], predicate: Callable[[], object], what: str) -> None:
    await wait_until(pilot, predicate, timeout=15.0, what=what)  # generous: slow machines too


async def ready(pilot: Pilot[Any], app: ZcSessionsApp) -> None:
    """A session is open and shown, every count is known, nothing is moving."""
    await wait_for(pilot, lambda: app.open_ref is not None, "a session to open")
    await wait_for(pilot, lambda: app.shown_cursor is not None, "the transcript to load")
    await wait_for(pilot, lambda: not app.sessions.uncounted(), "the message counts")
    await wait_for(pilot, lambda: app.transcript.index_known, "the transcript's index")
    await settle(pilot)


async def press(pilot: Pilot[Any], *keys: str) -> None:
    for key in keys:
        await pilot.press(key)
        await settle(pilot)


def still(app: ZcSessionsApp) -> None:
    """No blinking cursor in the shot."""
    for box in app.query(Input):
        box.cursor_blink = False
    for screen in app.screen_stack:
        for box in screen.query(Input):
            box.cursor_blink = False


# --- workspaces ------------------------------------------------------------------------------


def demo(root: Path) -> Path:
    """A fresh demo workspace in ``root/demo``; returns the path to open, relative to ``root``."""
    make_demo_workspace(root / "demo", now=DEMO_NOW)
    return Path("demo")


def fixture(root: Path, name: str) -> Path:
    """A writable copy of a shared fixture, with fixed file times; relative path to open."""
    source = FIXTURES / name
    if not source.is_dir():
        raise SystemExit(f"missing fixture {source} (expected ../shared/fixtures beside the repo)")
    target = root / name
    shutil.copytree(source, target)
    files = sorted(p for p in target.rglob("*") if p.is_file())
    for path in [target, *target.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)
    # File times are what the list shows for JSONL sessions: pin them (newest name first).
    for i, path in enumerate(sorted(files, key=lambda p: p.name)):
        when = (FIXTURE_NOW - timedelta(minutes=7 * (i + 1))).timestamp()
        os.utime(path, (when, when))
    return Path(name)


def zeroclaw_append(path: Path, role: str, content: str) -> None:
    """ZeroClaw's JSONL append: O_APPEND|O_CREAT, write the JSON, write the newline, close."""
    append_jsonl(path, ChatMessage(role=role, content=content))


GARDEN = [
    ("user", "How often should I water the basil?"),
    ("assistant", "Every **2 days** in summer; let the top centimetre dry out first."),
    ("user", "And the fig tree?"),
    ("assistant", "Deeply, about once a **week**; more often in pots."),
    ("user", "Should I prune the roses now?"),
    ("assistant", "Wait for late winter, just before the buds swell."),
    ("user", "What about the lavender?"),
    ("assistant", "Trim it lightly after flowering; never cut into old wood."),
    ("user", "Is coffee ground good compost?"),
    ("assistant", "Yes, in moderation: mix it with dry leaves."),
    ("user", "When do I sow tomatoes?"),
    ("assistant", "Indoors 6–8 weeks before the last frost."),
]
LIVE = [
    ("user", "The lemon tree drops its leaves. Why?"),
    ("assistant", "Usually a draught or cold roots: move it away from the door."),
    ("user", "Thanks!"),
]


# --- the shots -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shot:
    name: str
    about: str
    workspace: Callable[[Path], Path]
    steps: Step
    session: str | None = None
    clock: datetime = DEMO_NOW
    live: bool = False
    prepare: Callable[[Path], None] | None = None


async def list_steps(pilot: Pilot[Any], app: ZcSessionsApp, root: Path) -> None:
    await ready(pilot, app)


async def transcript_steps(pilot: Pilot[Any], app: ZcSessionsApp, root: Path) -> None:
    await ready(pilot, app)
    await press(pilot, "enter")  # into the transcript


async def tools_steps(pilot: Pilot[Any], app: ZcSessionsApp, root: Path) -> None:
    await ready(pilot, app)
    await press(pilot, "enter", "home")
    await wait_for(pilot, lambda: app.transcript.selected_index == 0, "the top of the session")
    await press(pilot, "down", "down", "down")  # select the tool output


async def search_steps(pilot: Pilot[Any], app: ZcSessionsApp, root: Path) -> None:
    await ready(pilot, app)
    await press(pilot, "slash", *"assistant")
    await wait_for(pilot, lambda: app.search_pane.hits and not app.search_pane.searching, "hits")
    await pilot.pause(0.3)  # the debounce, then the last search
    await settle(pilot)
    await press(pilot, "down", "down")  # into the results, on the second hit
    await press(pilot, "enter")  # open it: the transcript marks the words too
    await wait_for(
        pilot,
        lambda: app.open_ref is not None and app.open_ref.key == "gw_live_demo",
        "the hit's session",
    )
    await ready(pilot, app)


async def rollback_steps(pilot: Pilot[Any], app: ZcSessionsApp, root: Path) -> None:
    await ready(pilot, app)
    await press(pilot, "enter", "k", "k", "k")  # select #1: roll back from there
    await wait_for(pilot, lambda: app.transcript.selected_index == 1, "message #1 selected")
    await press(pilot, "b")
    await wait_for(pilot, lambda: len(app.screen_stack) > 1, "the confirm dialog")
    await settle(pilot)


def prepare_live(root: Path) -> None:
    path = root / "demo" / "sessions" / f"{LIVE_JSONL}.jsonl"
    for role, content in GARDEN:
        zeroclaw_append(path, role, content)
    when = (DEMO_NOW - timedelta(seconds=20)).timestamp()
    os.utime(path, (when, when))


async def live_steps(pilot: Pilot[Any], app: ZcSessionsApp, root: Path) -> None:
    await ready(pilot, app)
    await press(pilot, "enter", "pageup")
    await wait_for(pilot, lambda: not app.transcript.follow, "follow mode to pause")
    path = root / "demo" / "sessions" / f"{LIVE_JSONL}.jsonl"
    for role, content in LIVE:
        zeroclaw_append(path, role, content)
    await wait_for(pilot, lambda: app.transcript.pending_new == len(LIVE), "the new messages")
    await wait_for(pilot, lambda: not app.sessions.uncounted(), "the new count")
    await settle(pilot)


async def fixture_steps(pilot: Pilot[Any], app: ZcSessionsApp, root: Path) -> None:
    await ready(pilot, app)
    await press(pilot, "enter")


SHOTS = [
    Shot(
        "session-list",
        "demo workspace, both stores: running/stuck/error/unreadable badges, counts, store",
        demo,
        list_steps,
    ),
    Shot(
        "transcript",
        "markdown: heading, list, bold, highlighted python block, quote",
        demo,
        transcript_steps,
        session="gw_7f3a9c21",
    ),
    Shot(
        "transcript-tools",
        "a tool call and a long tool output, pretty-printed and collapsed",
        demo,
        tools_steps,
        session="slack_T01_C02_frank",
    ),
    Shot(
        "search",
        "search across both stores, matches highlighted in hits and transcript",
        demo,
        search_steps,
        session="gw_7f3a9c21",
    ),
    Shot(
        "rollback-confirm",
        "the rollback dialog listing every message it removes",
        demo,
        rollback_steps,
        session="gw_7f3a9c21",
    ),
    Shot(
        "live-tail",
        "scrolled up while ZeroClaw appends: the new-messages marker",
        demo,
        live_steps,
        session=LIVE_JSONL,
        live=True,
        prepare=prepare_live,
    ),
    Shot(
        "fixture-jsonl",
        "jsonl fixture: a line ZeroClaw skips, shown where it sits",
        lambda root: fixture(root, "jsonl-workspace"),
        fixture_steps,
        session="telegram_100200300",
        clock=FIXTURE_NOW,
    ),
    Shot(
        "fixture-sqlite",
        "sqlite fixture: named sessions, code blocks",
        lambda root: fixture(root, "sqlite-workspace"),
        fixture_steps,
        session="gw_named_02",
        clock=FIXTURE_NOW,
    ),
]


# --- running ---------------------------------------------------------------------------------


@contextmanager
def inside(folder: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


async def take(shot: Shot, tmp: Path) -> Path:
    root = tmp / shot.name
    root.mkdir()
    with inside(root):
        where = shot.workspace(root)
        if shot.prepare is not None:
            shot.prepare(root)
        journal = Journal(root=root / "state")
        ws = open_workspace(where, journal=journal)
        ws.demo = where == Path("demo")
        now = shot.clock
        app = ZcSessionsApp(
            ws,
            session=shot.session,
            clock=lambda: now,
            journal=journal,
            live=shot.live,
            export_dir=root,
        )
        try:
            async with app.run_test(size=SIZE) as pilot:
                await shot.steps(pilot, app, root)
                still(app)
                await pilot.pause(0.1)
                name = app.save_screenshot(filename=f"{shot.name}.svg", path=str(HERE))
                if shot.live and app._feed is not None:
                    app._feed.stop()
        finally:
            ws.close()
    return Path(name)


def for_png(svg: Path) -> bytes:
    """The SVG as the converters should draw it (the .svg file itself is left as Textual wrote it).

    Both converters drop the leading no-break spaces of a ``<text>`` (``live-demo  running``
    would print as ``live-demorunning``): plain spaces with ``xml:space="preserve"`` keep every
    cell. Fira Code is named but rarely installed (the SVG loads it from the web); cairosvg then
    picks a proportional font, so name a monospace one that Debian ships.
    """
    text = svg.read_text(encoding="utf-8").replace("&#160;", " ")
    text = text.replace("<svg ", '<svg xml:space="preserve" ', 1)
    text = text.replace(
        "font-family: Fira Code, monospace;", "font-family: DejaVu Sans Mono, monospace;"
    )
    return text.encode("utf-8")


def converter() -> Callable[[Path, Path], None] | None:
    """SVG -> PNG with rsvg-convert, else cairosvg; None if neither is there."""
    rsvg = shutil.which("rsvg-convert")
    if rsvg is not None:

        def run_rsvg(svg: Path, png: Path) -> None:
            subprocess.run([rsvg, "--format=png", "-o", str(png)], input=for_png(svg), check=True)

        return run_rsvg
    try:
        import cairosvg
    except ImportError:
        return None

    def run_cairo(svg: Path, png: Path) -> None:
        cairosvg.svg2png(bytestring=for_png(svg), write_to=str(png))

    return run_cairo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", help="shot names (default: all)")
    parser.add_argument("--no-png", action="store_true", help="write the SVGs only")
    args = parser.parse_args(argv)
    known = {s.name for s in SHOTS}
    wanted = [s for s in SHOTS if not args.only or s.name in args.only]
    if args.only and (unknown := set(args.only) - known):
        parser.error(f"unknown shot(s): {', '.join(sorted(unknown))}; known: {', '.join(known)}")
    convert = None if args.no_png else converter()
    tmp = Path(tempfile.mkdtemp(prefix="zc-sessions-shots-"))
    saved = {k: os.environ.get(k) for k in ("HOME", "XDG_STATE_HOME")}
    os.environ["HOME"] = str(tmp / "home")
    os.environ["XDG_STATE_HOME"] = str(tmp / "home" / ".state")
    try:
        for shot in wanted:
            svg = asyncio.run(take(shot, tmp))
            line = f"{svg.relative_to(REPO)}"
            if convert is not None:
                png = svg.with_suffix(".png")
                convert(svg, png)
                line += f" + {png.name}"
            print(f"{line:52} {shot.about}")
        if convert is None and not args.no_png:
            print("no SVG converter (rsvg-convert or cairosvg): PNGs not written", file=sys.stderr)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
