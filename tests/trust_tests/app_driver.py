"""Driving the browser headless through its keys, as a user would, with every notification
kept (the toasts themselves expire after a few seconds)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from tui import app as tui_app
from tui.app import ZcSessionsApp
from tui.screens.confirm import ConfirmScreen


async def wait_for(
    pilot: Pilot[int], predicate: Callable[[], object], timeout: float = 15.0, what: str = ""
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            app = pilot.app
            state = f"notes {notes(app)[-3:]}, screens {app.screen_stack}"
            raise AssertionError(f"timed out waiting for {what} ({state})")
        await pilot.pause(0.02)


class RecordingApp(ZcSessionsApp):
    """The app, keeping every notification (the toasts themselves expire)."""

    CSS_PATH = str(Path(tui_app.__file__).with_name("app.tcss"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.notes: list[str] = []

    def notify(self, message: str, *args: Any, **kwargs: Any) -> None:
        self.notes.append(str(message))
        super().notify(message, *args, **kwargs)


def notes(app: object) -> list[str]:
    assert isinstance(app, RecordingApp)
    return app.notes


def more_notes(app: object, seen: int) -> Callable[[], bool]:
    """A wait condition: a notification came after the first ``seen``."""
    return lambda: len(notes(app)) > seen


def dialog_or_note(app: RecordingApp, seen: int) -> Callable[[], bool]:
    return lambda: isinstance(app.screen, ConfirmScreen) or len(notes(app)) > seen


async def confirmed(pilot: Pilot[int], key: str, action: str, key_name: str) -> bool:
    """Press ``key`` and confirm with ``y`` until the edit is done. The app re-plans (a new
    dialog) when the session changed between the dialog and the edit, and a compact gives up
    when the file keeps changing: both are answered by trying again. False: nothing to do."""
    app = pilot.app
    assert isinstance(app, RecordingApp)
    done = f"{action} {key_name}: removed"
    for _ in range(30):
        if not isinstance(app.screen, ConfirmScreen):
            app.sessions.focus()
            before = len(notes(app))
            await pilot.press(key)
            await wait_for(
                pilot,
                dialog_or_note(app, before),
                what=f"a dialog or a notice after {key!r}",
            )
            if "nothing to remove" in " ".join(notes(app)[before:]):
                return False
        if isinstance(app.screen, ConfirmScreen):
            before = len(notes(app))
            await pilot.press("y")
            await wait_for(pilot, more_notes(app, before), what="the edit to finish")
            new = notes(app)[before:]
            if any(n.startswith(done) for n in new):
                return True
            assert all("changed" in n for n in new), new  # anything else is a failure
            # re-planned: a new dialog is on its way (or the compact gave up): go again
            await pilot.pause(0.05)
    raise AssertionError(f"{key!r} never went through: {notes(app)[-5:]}")


async def drive_app(app: RecordingApp, key_name: str, rounds: int) -> int:
    """b + y, c + y, ctrl+z, ``rounds`` times; returns the number of rollbacks done."""
    done = 0
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.sessions.total > 0, what="the listing")
        ref = next(r for r in app.sessions.refs if r.key == key_name)
        app.sessions.select(ref)
        await wait_for(pilot, lambda: app.open_ref == ref, what="the session to open")
        for i in range(rounds):
            done += await confirmed(pilot, "b", "rollback", key_name)
            await confirmed(pilot, "c", "compact", key_name)
            if i % 2 == 1:
                before = len(notes(app))
                await pilot.press("ctrl+z")
                await wait_for(pilot, more_notes(app, before), what="the undo")
                assert notes(app)[-1].startswith("undid"), notes(app)[-1]
        await pilot.press("q")
    return done
