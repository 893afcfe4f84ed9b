"""Hostile content in the browser: shown literally, never obeyed, never freezing the UI.

Two views of the same workspace:

- headless (``run_test``): the screen text shows markup as typed (``[bold red]x[/]``),
  escapes as visible stand-ins (``␛[2J``), and the warning for a line ZeroClaw skips;
- the real app in a pseudo-terminal (``pty.fork``): the raw bytes it writes to the terminal
  hold none of the content's sequences (no OSC title, no clear screen, no bell, no OSC 8 link,
  no bidi override or zero-width character, no NUL).

A 10 MB single line and a 100,000-line message must not freeze it: a key still gets its answer
within a generous bound (10 s; speed targets belong to the benchmarks).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from storage.journal import Journal
from storage.workspace import open_workspace
from tests.trust_tests.app_driver import RecordingApp, wait_for
from tests.trust_tests.conftest import ROOT
from tests.tui_tests.conftest import screen_text
from tui.screens.help import HelpScreen

# (content, what the screen must show for it)
HOSTILE = [
    ("markup [bold red]x[/] end", "markup [bold red]x[/] end"),
    ("link [link=https://evil.example]click[/link]", "[link=https://evil.example]click[/link]"),
    ("unterminated [/ and [bold", "unterminated [/ and [bold"),
    ("csi \x1b[31mred\x1b[0m", "csi ␛[31mred␛[0m"),
    ("osc \x1b]0;PWNED-TITLE\x07 end", "osc ␛]0;PWNED-TITLE␇ end"),
    ("CLEAR\x1b[2JSCREEN", "CLEAR␛[2JSCREEN"),
    ("osc8 \x1b]8;;https://evil.example\x1b\\LINK\x1b]8;;\x1b\\", "osc8 ␛]8;;https://evil.example"),
    ("bell \x07\x07 twice", "bell ␇␇ twice"),
    ("bidi \u202eevil\u202c end", "bidi <U+202E>evil<U+202C> end"),
    ("zero\u200bwidth\u2060join", "zero<U+200B>width<U+2060>join"),
    ("NUL\x00BYTE", "NUL␀BYTE"),
    ("c1 \x9b2J csi", "c1 <U+009B>2J csi"),
]
# Bytes the content holds that must never reach the terminal as they are.
FORBIDDEN = [
    b"\x1b]0;",
    b"PWNED-TITLE\x07",
    b"CLEAR\x1b[2J",
    b"\x1b[2JSCREEN",
    b"\x1b[31mred",
    b"\x1b]8;",
    "\u202e".encode(),
    "\u202c".encode(),
    "\u200b".encode(),
    "\u2060".encode(),
    b"\x00",
    "\x9b".encode(),
]
# The only BEL Textual itself writes ends its own pointer-shape OSC 22.
OWN_OSC = re.compile(rb"\x1b\]22;[^\x07\x1b]*\x07")
SURROGATE_LINE = b'{"role":"user","content":"lone \\ud800 surrogate"}'


def hostile_workspace(root: Path) -> Path:
    sessions = root / "sessions"
    sessions.mkdir(parents=True)
    lines = []
    for i, (content, _) in enumerate(HOSTILE):
        role = ("user", "assistant")[i % 2]  # plain text and markdown both
        lines.append(json.dumps({"role": role, "content": content}, ensure_ascii=False))
    lines.insert(3, SURROGATE_LINE.decode())
    tool = {"tool_calls": [{"name": "x", "arguments": "\x1b]0;PWNED-TITLE\x07 [bold]j[/]"}]}
    lines.append(json.dumps({"role": "tool", "content": json.dumps(tool)}))
    (sessions / "hostile.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    huge = {"role": "user", "content": "A" * 10_000_000}
    (sessions / "huge.jsonl").write_text(
        json.dumps(huge) + "\n" + json.dumps({"role": "assistant", "content": "after huge"}) + "\n"
    )
    tall = "\n".join(f"line {i}" for i in range(100_000))
    (sessions / "tall.jsonl").write_text(
        json.dumps({"role": "user", "content": tall})
        + "\n"
        + json.dumps({"role": "assistant", "content": "after tall"})
        + "\n"
    )
    return root


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return hostile_workspace(tmp_path / "data")


# --- headless: what the screen shows ----------------------------------------------------------


async def open_in_app(app: RecordingApp, pilot: object, key: str) -> None:
    ref = next(r for r in app.sessions.refs if r.key == key)
    app.sessions.select(ref)
    await wait_for(pilot, lambda: app.open_ref == ref and app.shown_cursor is not None)  # type: ignore[arg-type]


async def test_hostile_content_is_shown_literally(workspace: Path) -> None:
    ws = open_workspace(workspace, journal=Journal())
    app = RecordingApp(ws, live=False)
    async with app.run_test(size=(150, 70)) as pilot:
        await wait_for(pilot, lambda: app.sessions.total == 3, what="the listing")
        await open_in_app(app, pilot, "hostile")
        await wait_for(pilot, lambda: "tool_calls" in screen_text(app), what="the tail drawn")
        shown = screen_text(app)
        for _, expected in HOSTILE:
            assert expected in shown, f"{expected!r} is not on the screen"
        assert "skipped by ZeroClaw" in shown and "lone surrogate" in shown
        assert "\\u001b]0;PWNED-TITLE\\u0007 [bold]j[/]" in shown  # JSON tool output: as escapes
        for raw, _ in HOSTILE:
            assert not re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f\u200b\u202c\u202e\u2060]", shown)
            assert raw not in shown or raw.isprintable()
        await pilot.press("q")
    ws.close()


async def answer_time(
    pilot: object, app: RecordingApp, key: str, done: Callable[[], bool]
) -> float:
    started = time.monotonic()
    await pilot.press(key)  # type: ignore[attr-defined]
    await wait_for(pilot, done, timeout=10, what=f"an answer to {key!r}")  # type: ignore[arg-type]
    return time.monotonic() - started


@pytest.mark.parametrize("key", ["huge", "tall"])
async def test_a_huge_message_does_not_freeze_the_browser(workspace: Path, key: str) -> None:
    """10 MB on one line, or 100,000 lines in one message: open, expand, move, ask for help."""
    ws = open_workspace(workspace, journal=Journal())
    app = RecordingApp(ws, live=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.sessions.total == 3, what="the listing")
        started = time.monotonic()
        await open_in_app(app, pilot, key)
        await wait_for(pilot, lambda: f"after {key}" in screen_text(app), timeout=10)
        assert time.monotonic() - started < 10
        app.transcript.focus()
        await answer_time(pilot, app, "k", lambda: app.transcript.selected_index == 0)
        await answer_time(pilot, app, "enter", lambda: app.transcript.is_expanded(0))
        shown = screen_text(app)
        assert "more lines" in shown  # capped, and it says so
        await answer_time(pilot, app, "question_mark", lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("escape")
        await pilot.press("q")
    ws.close()


# --- the real terminal -------------------------------------------------------------------------


class Terminal:
    """The real app (``zc-sessions --workspace WS --session KEY``) in tmux: a real terminal
    emulator whose screen can be read (``capture-pane``) and whose raw input, every byte the
    app wrote, is copied to a file (``pipe-pane``)."""

    def __init__(self, workspace: Path, session: str, raw: Path) -> None:
        self.socket = f"zc-trust-{os.getpid()}-{time.monotonic_ns()}"
        self.raw_file = raw
        env = {
            "PYTHONPATH": str(ROOT),
            "XDG_STATE_HOME": os.environ["XDG_STATE_HOME"],
            "HOME": os.environ["HOME"],
            "TERM": "xterm-256color",
            "COLORTERM": "truecolor",
        }
        app = shlex.join(
            [
                sys.executable,
                "-m",
                "storage.cli",
                "--workspace",
                str(workspace),
                "--session",
                session,
            ]
        )
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        # the app starts once the pipe is in place, so that no byte of it is missed
        self.tmux(
            "new-session",
            "-d",
            "-x",
            "140",
            "-y",
            "40",
            "-s",
            "app",
            f"sleep 0.5; exec env {exports} {app}",
        )
        self.tmux("pipe-pane", "-t", "app", "-o", f"cat >> {shlex.quote(str(raw))}")

    def tmux(self, *args: str) -> str:
        result = subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            timeout=20,
        )
        return result.stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-t", "app", "-p")

    def wait_for(self, text: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.screen():
                return True
            time.sleep(0.05)
        return False

    def press(self, *keys: str, settle: float = 0.15) -> None:
        for key in keys:
            self.tmux("send-keys", "-t", "app", key)
            time.sleep(settle)

    @property
    def raw(self) -> bytes:
        return self.raw_file.read_bytes() if self.raw_file.exists() else b""

    def close(self) -> None:
        self.press("q", settle=0.5)
        self.tmux("kill-server")


needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


@needs_tmux
def test_the_terminal_never_receives_the_contents_escape_sequences(
    workspace: Path, tmp_path: Path
) -> None:
    term = Terminal(workspace, "hostile", tmp_path / "raw.bin")
    try:
        assert term.wait_for("tool_calls", 20), term.screen()
        term.press("Enter", settle=1.0)  # to the transcript (a key typed in the list filters it)
        term.press("g")  # the top of the transcript
        assert term.wait_for("#0 user", 10), term.screen()
        screens = [term.screen()]
        term.press("G", "k", "k", "Enter", "k", "Enter", "j", "j")
        screens.append(term.screen())
    finally:
        term.close()
    shown = "\n".join(screens)
    for _, expected in HOSTILE:
        assert expected in shown, f"{expected!r} is not on the terminal's screen"
    assert "skipped by ZeroClaw" in shown
    raw = OWN_OSC.sub(b"", term.raw)
    assert b"[bold red]x[/]" in raw and "␛[31mred␛[0m".encode() in raw
    for sequence in FORBIDDEN:
        assert sequence not in raw, f"{sequence!r} reached the terminal"
    assert b"\x07" not in raw, "a bell reached the terminal"


@needs_tmux
def test_the_terminal_answers_a_key_next_to_a_10_mb_line(workspace: Path, tmp_path: Path) -> None:
    term = Terminal(workspace, "huge", tmp_path / "raw.bin")
    try:
        assert term.wait_for("after huge", 20), term.screen()
        started = time.monotonic()
        term.press("?", settle=0)
        assert term.wait_for("Everywhere", 10), "no help screen within 10 s"
        assert time.monotonic() - started < 10
    finally:
        term.close()
    assert b"\x00" not in term.raw
