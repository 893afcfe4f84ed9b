"""Hostile keys and paths: ``../../etc/passwd`` as a key, names with ``/``, keys that sanitize
to the same file (``a/b`` and ``a:b`` are both ``a_b.jsonl``, as in ZeroClaw).

Nothing is ever read or written outside ``sessions/`` and the state directory: a sentinel
folder beside the workspace keeps every byte and mtime, and (where strace exists) every
syscall of the CLI that writes, creates, renames or removes a file names a path inside them.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from storage.errors import StorageError
from storage.journal import Journal, state_dir
from storage.jsonl import JsonlBackend
from storage.models import ChatMessage
from storage.sqlite import SqliteBackend
from storage.workspace import open_workspace
from tests.trust_tests.app_driver import RecordingApp, more_notes, wait_for
from tests.trust_tests.conftest import (
    ROOT,
    assert_one_line_error,
    cli,
    folder_state,
    new_sqlite_store,
)
from tui.screens.confirm import ConfirmScreen

HOSTILE_KEYS = [
    "../../etc/passwd",
    "../outside/sentinel",
    "/etc/passwd",
    "a/b",
    "a:b",
    "..",
    ".",
    "x\x00y",
    "\u202e\u0000/..",
    "k" * 300,
    "",
]


def layout(tmp_path: Path) -> tuple[Path, Path]:
    """data/sessions (empty) and, beside it, a sentinel folder nothing may touch."""
    root = tmp_path / "ws" / "data"
    (root / "sessions").mkdir(parents=True)
    sentinel = tmp_path / "ws" / "outside"
    sentinel.mkdir()
    (sentinel / "sentinel.jsonl").write_bytes(b'{"role":"user","content":"do not touch"}\n')
    (sentinel / "passwd").write_text("root:x:0:0\n")
    return root, sentinel


def message(n: int) -> ChatMessage:
    return ChatMessage(role=("user", "assistant")[n % 2], content=f"m{n}")


def test_jsonl_keys_stay_inside_sessions(tmp_path: Path) -> None:
    root, sentinel = layout(tmp_path)
    sessions = root / "sessions"
    before = folder_state(sentinel)
    backend = JsonlBackend(sessions, journal=Journal())
    for key in HOSTILE_KEYS:
        try:
            for n in range(3):
                backend.append(key, message(n))
        except StorageError as err:
            assert "\n" not in str(err)  # an empty key, a name too long: one clear line
            continue
        stem = backend.resolve_key(key)
        assert (sessions / f"{stem}.jsonl").is_file()
        assert "/" not in stem and stem not in (".", "..")
        backend.rollback(key, 1)
        backend.compact(key)
        backend.set_session_name(key, "../../name")
        report = backend.delete_session(key)
        backend.restore(str(report.journal_id))
    names = sorted(p.name for p in sessions.iterdir())
    assert names == sorted(
        [
            "______etc_passwd.jsonl",
            "___outside_sentinel.jsonl",
            "_etc_passwd.jsonl",
            "a_b.jsonl",
            "__.jsonl",
            "_.jsonl",
            "x_y.jsonl",
            "_____.jsonl",
            ".zc-sessions-names.json",
        ]
    ), names
    assert folder_state(sentinel) == before


def test_keys_that_sanitize_alike_share_one_file_as_in_zeroclaw(tmp_path: Path) -> None:
    root, sentinel = layout(tmp_path)
    before = folder_state(sentinel)
    backend = JsonlBackend(root / "sessions", journal=Journal())
    backend.append("a/b", ChatMessage(role="user", content="from a/b"))
    backend.append("a:b", ChatMessage(role="user", content="from a:b"))
    assert backend.list_sessions() == ["a_b"]
    assert [m.content for m in backend.load("a/b")] == ["from a/b", "from a:b"]
    assert [m.content for m in backend.load("a:b")] == ["from a/b", "from a:b"]
    shown = cli(root, "show", "a:b", "--json").json()
    assert shown["key"] == "a_b" and len(shown["messages"]) == 2
    assert sorted(p.name for p in (root / "sessions").iterdir()) == ["a_b.jsonl"]
    assert folder_state(sentinel) == before


def test_sqlite_keys_are_only_strings(tmp_path: Path) -> None:
    root, sentinel = layout(tmp_path)
    db = new_sqlite_store(root / "sessions")
    before = folder_state(sentinel)
    store = SqliteBackend(db, journal=Journal())
    for key in HOSTILE_KEYS:
        for n in range(3):
            store.append(key, message(n))
    assert sorted(store.list_sessions()) == sorted(HOSTILE_KEYS)
    for key in HOSTILE_KEYS:
        store.rollback(key, 1)
        store.set_session_name(key, "../../name")
        store.restore(str(store.delete_session(key).journal_id))
        assert [m.content for m in store.load(key)] == ["m0"]
    assert (
        sorted(
            p.name for p in (root / "sessions").iterdir() if not p.name.startswith("sessions.db")
        )
        == []
    )
    assert folder_state(sentinel) == before


def showing(app: RecordingApp, ref: object) -> bool:
    return app.open_ref == ref and app.transcript.count == 1


async def test_the_browser_with_hostile_keys(tmp_path: Path) -> None:
    """Hostile SQLite keys listed, opened, exported (e), deleted (d) and undone (ctrl+z)."""
    root, sentinel = layout(tmp_path)
    store = SqliteBackend(new_sqlite_store(root / "sessions"), journal=Journal())
    keys = ["../../etc/passwd", "\u202e\u0000/..", "k" * 300]
    for key in keys:
        store.append(key, message(0))
    store.close()
    before = folder_state(sentinel)
    exports = Path.cwd()
    ws = open_workspace(root, journal=Journal())
    app = RecordingApp(ws, live=False, export_dir=exports)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.sessions.total == len(keys), what="the listing")
        for ref in list(app.sessions.refs):
            app.sessions.select(ref)
            shown = functools.partial(showing, app, ref)
            await wait_for(pilot, shown, what=f"{ref.key!r} to open")
            seen = len(app.notes)
            await pilot.press("e")
            await wait_for(pilot, more_notes(app, seen), what="the export")
            assert app.notes[-1].startswith("exported"), app.notes[-1]
            await pilot.press("d")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="dialog")
            seen = len(app.notes)
            await pilot.press("y")
            await wait_for(pilot, more_notes(app, seen), what="the delete")
            seen = len(app.notes)
            await pilot.press("ctrl+z")
            await wait_for(pilot, more_notes(app, seen), what="the undo")
            assert app.notes[-1].startswith("undid"), app.notes[-1]
        await pilot.press("q")
    ws.close()
    assert folder_state(sentinel) == before
    written = sorted(p.name for p in exports.iterdir())
    assert len(written) == len(keys) and all(
        "/" not in n and n.endswith(".md") and len(n.encode()) < 120 for n in written
    )
    assert sorted(SqliteBackend(root / "sessions" / "sessions.db").list_sessions()) == sorted(keys)


# --- every write the CLI makes, seen by strace ------------------------------------------------

WRITE_CALL = re.compile(r"^\d+\s+(\w+)\((.*)\)\s+=\s+(-?\d+)")
WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC")
PATH_CALLS = {
    "unlink",
    "unlinkat",
    "rename",
    "renameat",
    "renameat2",
    "link",
    "linkat",
    "mkdir",
    "mkdirat",
    "rmdir",
    "truncate",
    "symlink",
    "symlinkat",
    "chmod",
    "fchmodat",
    "utimensat",
}


def written_paths(trace: str, cwd: Path) -> set[str]:
    """Paths the traced processes opened for writing, created, renamed or removed."""
    found: set[str] = set()
    for line in trace.splitlines():
        m = WRITE_CALL.match(line)
        if m is None or int(m.group(3)) < 0:
            continue
        call, args = m.group(1), m.group(2)
        paths = re.findall(r'"((?:[^"\\]|\\.)*)"', args)
        if call in ("openat", "open", "creat"):
            if any(flag in args for flag in WRITE_FLAGS) and paths:
                found.add(paths[0])
        elif call in PATH_CALLS:
            found.update(paths)
    return {os.path.normpath(p if p.startswith("/") else str(cwd / p)) for p in found}


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_the_cli_writes_only_inside_sessions_and_the_state_dir(tmp_path: Path) -> None:
    root, sentinel = layout(tmp_path)
    sessions = root / "sessions"
    backend = JsonlBackend(sessions, journal=Journal())
    for key in ("../../etc/passwd", "a/b", "a:b"):
        backend.append(key, message(0))
        backend.append(key, message(1))
    store = SqliteBackend(new_sqlite_store(root / "db" / "sessions"), journal=Journal())
    store.append("../../etc/passwd", message(0))
    store.append("../../etc/passwd", message(1))
    store.close()
    commands = [
        [str(root), "rollback", "../../etc/passwd", "--messages", "1", "--yes"],
        [str(root), "delete", "a:b", "--yes"],
        [str(root), "undo"],
        [str(root / "db"), "delete", "../../etc/passwd", "--yes"],
    ]
    before = folder_state(sentinel)
    allowed = [str(sessions), str(root / "db" / "sessions"), str(state_dir()), "/dev/null"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    seen: set[str] = set()
    for ws, *args in commands:
        out = tmp_path / "trace.txt"
        argv = ["strace", "-f", "-qq", "-o", str(out), "-e", "trace=%file,%desc"]
        argv += [sys.executable, "-m", "storage.cli", "--workspace", ws, *args]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
        assert result.returncode == 0, (args, result.stderr[-500:])
        paths = written_paths(out.read_text(errors="replace"), Path.cwd())
        for path in paths:
            assert any(path == a or path.startswith(a + os.sep) for a in allowed), (args, path)
        seen |= paths
    assert folder_state(sentinel) == before
    # the trace did see the edits: the sessions, the database and the journal were written
    assert any(p.startswith(str(sessions) + os.sep) for p in seen)
    assert str(root / "db" / "sessions" / "sessions.db") in seen
    assert any(p.startswith(str(state_dir()) + os.sep) for p in seen)


def test_cli_refuses_keys_it_cannot_map(tmp_path: Path) -> None:
    root, sentinel = layout(tmp_path)
    before = folder_state(sentinel)
    for key, command in (
        ("../../etc/passwd", ["show"]),
        ("../outside/sentinel", ["rollback", "--yes"]),
        ("/etc/passwd", ["delete", "--yes"]),
        ("..", ["export"]),
        ("", ["rename", "x"]),
    ):
        args = [command[0], key, *command[1:]]
        assert "no session" in assert_one_line_error(cli(root, *args, timeout=20))
    assert folder_state(sentinel) == before
