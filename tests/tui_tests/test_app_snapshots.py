"""SVG snapshots of the main screens: fixed size, fixed clock, relative paths, no blinking cursor.

Update the baselines with ``pytest tests/tui_tests/test_app_snapshots.py --snapshot-update``
after checking the report shows the change you meant.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from storage.journal import Journal
from storage.workspace import open_workspace
from tui.app import ZcSessionsApp
from tui.demo import DEMO_NOW, make_demo_workspace

from .conftest import copy_fixture, fixed_clock, settle, wait_for

SnapCompare = Callable[..., bool]
SIZE = (120, 40)


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Work in ``tmp_path`` so the header shows a relative, stable path."""
    monkeypatch.chdir(tmp_path)
    yield tmp_path


def fixture_app(here: Path, name: str = "sqlite-workspace", **kwargs: Any) -> ZcSessionsApp:
    copy_fixture(name, here)
    ws = open_workspace(Path(name), journal=Journal())
    kwargs.setdefault("session", "gw_named_02")
    return ZcSessionsApp(ws, clock=fixed_clock, live=False, **kwargs)


def demo_app(here: Path) -> ZcSessionsApp:
    make_demo_workspace(here / "demo", now=DEMO_NOW)
    ws = open_workspace(Path("demo"), journal=Journal())
    ws.demo = True
    return ZcSessionsApp(ws, clock=lambda: DEMO_NOW, live=False, session="gw_7f3a9c21")


def ready(*keys: str) -> Callable[[Pilot[Any]], Awaitable[None]]:
    """Wait for the open session, press ``keys``, wait again, and stop cursors blinking."""

    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, ZcSessionsApp)
        await wait_for(pilot, lambda: app.open_ref is not None and app.shown_cursor is not None)
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)
        for box in app.query(Input):
            box.cursor_blink = False
        await pilot.pause()

    return run_before


def test_main_screen(snap_compare: SnapCompare, here: Path) -> None:
    assert snap_compare(fixture_app(here), terminal_size=SIZE, run_before=ready())


def test_main_screen_80x24(snap_compare: SnapCompare, here: Path) -> None:
    assert snap_compare(fixture_app(here), terminal_size=(80, 24), run_before=ready())


def test_demo_screen(snap_compare: SnapCompare, here: Path) -> None:
    assert snap_compare(demo_app(here), terminal_size=SIZE, run_before=ready())


def test_help_screen(snap_compare: SnapCompare, here: Path) -> None:
    assert snap_compare(fixture_app(here), terminal_size=SIZE, run_before=ready("question_mark"))


def test_rollback_dialog(snap_compare: SnapCompare, here: Path) -> None:
    assert snap_compare(fixture_app(here), terminal_size=SIZE, run_before=ready("b"))


def test_search_pane(snap_compare: SnapCompare, here: Path) -> None:
    keys = ("slash", *"question", "down")
    assert snap_compare(fixture_app(here), terminal_size=SIZE, run_before=ready(*keys))


def test_rename_dialog(snap_compare: SnapCompare, here: Path) -> None:
    assert snap_compare(fixture_app(here), terminal_size=SIZE, run_before=ready("r"))
