"""Browser test fixtures: writable fixture copies, opened workspaces, a fixed clock, and waiting.

The root conftest already points ``XDG_STATE_HOME`` at a temp dir; here ``HOME`` and the current
folder move to temp dirs as well, so neither the undo journal nor an export can reach the real
home.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from storage.journal import Journal
from storage.workspace import Workspace, open_workspace
from tests.helpers import copy_fixture
from tui.app import ZcSessionsApp

# Just after the sqlite fixture's writes (2026-11-23T17:18Z): stable relative times.
FIXED_NOW = datetime(2026, 11, 23, 17, 30, 0, tzinfo=UTC)
SIZE = (120, 40)


def fixed_clock() -> datetime:
    return FIXED_NOW


@pytest.fixture(autouse=True)
def private_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HOME, XDG_STATE_HOME and the working folder all point into temp dirs."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".state"))
    cwd = tmp_path_factory.mktemp("cwd")
    monkeypatch.chdir(cwd)
    return home


def tree_digest(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


@pytest.fixture
def open_ws(tmp_path: Path) -> Iterator[Callable[..., Workspace]]:
    """``open_ws("jsonl-workspace", read_only=False)``: a copy of the fixture, opened."""
    opened: list[Workspace] = []

    def make(name: str, *, read_only: bool = False, backend: Any = "auto") -> Workspace:
        root = copy_fixture(name, tmp_path)
        ws = open_workspace(root, backend=backend, read_only=read_only, journal=Journal())
        opened.append(ws)
        return ws

    yield make
    for ws in opened:
        ws.close()


def make_app(ws: Workspace, **kwargs: Any) -> ZcSessionsApp:
    kwargs.setdefault("clock", fixed_clock)
    kwargs.setdefault("live", False)
    return ZcSessionsApp(ws, **kwargs)


async def wait_for(
    pilot: Pilot[Any], predicate: Callable[[], object], timeout: float = 5.0, what: str = ""
) -> None:
    """Let the app run until ``predicate()`` is true; fail with ``what`` after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await pilot.pause(0.02)


async def settle(pilot: Pilot[Any]) -> None:
    """Wait until no worker of the app is running."""
    app = pilot.app
    await wait_for(
        pilot,
        lambda: not [w for w in app.workers if w.is_running and w.group != "feed"],
        what="workers to finish",
    )
    await pilot.pause()


_SVG_TEXT = re.compile(r'<text class="[^"]*" x="([\d.]+)" y="([\d.]+)"[^>]*>(.*?)</text>')


def screen_text(app: Any) -> str:
    """What the screen shows, as plain text (from the app's own SVG screenshot)."""
    rows: dict[float, list[tuple[float, str]]] = {}
    for m in _SVG_TEXT.finditer(app.export_screenshot()):
        x, y = float(m.group(1)), float(m.group(2))
        rows.setdefault(y, []).append((x, html.unescape(m.group(3)).replace("\xa0", " ")))
    return "\n".join("".join(t for _, t in sorted(rows[y])) for y in sorted(rows))


def shown_keys(app: ZcSessionsApp) -> list[str]:
    """The keys in the session list, in display order."""
    return [ref.key for ref in app.sessions.refs]


def listed_count(app: ZcSessionsApp, key: str | None = None) -> int | None:
    """The count the list shows for ``key`` (default: the open session); None if unknown."""
    ref = next((r for r in app.sessions.refs if r.key == key), None) if key else app.open_ref
    row = app.sessions.row(ref) if ref is not None else None
    return None if row is None else row.count
