"""Hostile folders and databases: odd names, a directory or FIFO called ``x.jsonl``, a symlink
out of ``sessions/``, a ``sessions.db`` that is not a database, one locked by another writer,
one with a damaged search index, and a read-only file system.

Each gives what ZeroClaw's reader gives, or one clear line; never a crash, never a hang.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from storage.errors import StorageError
from storage.journal import Journal
from storage.jsonl import JsonlBackend
from storage.workspace import open_workspace
from tests.helpers import copy_fixture
from tests.trust_tests.app_driver import RecordingApp, wait_for
from tests.trust_tests.conftest import assert_one_line_error, cli, folder_state, zc_line
from tests.unit_storage.sqlite_helpers import fts_integrity_ok

# --- odd entries in sessions/ -----------------------------------------------------------------


def hostile_folder(tmp_path: Path) -> tuple[Path, Path]:
    """A workspace with one good session and every odd entry, and a folder outside it."""
    root = tmp_path / "data"
    sessions = root / "sessions"
    sessions.mkdir(parents=True)
    (sessions / "good.jsonl").write_bytes(zc_line("hello") + zc_line("hi", "assistant"))
    (sessions / "dir.jsonl").mkdir()
    os.mkfifo(sessions / "fifo.jsonl")
    os.close(os.open(os.fsencode(sessions) + b"/bad\xff\xfe.jsonl", os.O_CREAT | os.O_WRONLY))
    (sessions / ".jsonl").write_bytes(zc_line("no stem"))
    (sessions / "upper.JSONL").write_bytes(zc_line("not ours"))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.jsonl").write_bytes(zc_line("secret outside sessions/"))
    (sessions / "escape.jsonl").symlink_to(outside / "secret.jsonl")
    (sessions / "alias.jsonl").symlink_to(sessions / "good.jsonl")  # inside: fine
    return root, outside


def test_odd_entries_are_skipped_and_nothing_outside_is_touched(tmp_path: Path) -> None:
    root, outside = hostile_folder(tmp_path)
    before = folder_state(outside)
    listed = cli(root, "list", "--json", timeout=20)
    assert listed.code == 0, listed
    assert sorted(r["key"] for r in listed.json()) == ["alias", "good"]
    assert cli(root, "show", "good", "--json", timeout=20).json()["messages"][1]["content"] == "hi"
    for key, args in (
        ("dir", ["show"]),
        ("fifo", ["show"]),
        ("escape", ["show"]),
        ("escape", ["rollback", "--yes"]),
        ("bad\udcff\udcfe", ["compact", "--yes"]),
        ("../outside/secret", ["delete", "--yes"]),
    ):
        command = [args[0], key, *args[1:]]
        assert "no session" in assert_one_line_error(cli(root, *command, timeout=20))
    assert "secret" not in cli(root, "search", "secret", "--json", timeout=20).out
    assert folder_state(outside) == before


async def test_the_browser_lists_a_hostile_folder(tmp_path: Path) -> None:
    root, outside = hostile_folder(tmp_path)
    before = folder_state(outside)
    ws = open_workspace(root, journal=Journal())
    app = RecordingApp(ws, live=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.sessions.total == 2, what="the listing")
        assert sorted(r.key for r in app.sessions.refs) == ["alias", "good"]
        for ref in app.sessions.refs:
            app.sessions.select(ref)
            await wait_for(pilot, lambda: app.transcript.count == 2, what=f"{ref.key} to open")
        await pilot.press("q")
    ws.close()
    assert not [n for n in app.notes if "error" in n.lower()], app.notes
    assert folder_state(outside) == before


# --- sessions.db ------------------------------------------------------------------------------


def test_a_sessions_db_that_is_not_a_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "data"
    (root / "sessions").mkdir(parents=True)
    (root / "sessions" / "sessions.db").write_bytes(os.urandom(8192))
    (root / "sessions" / "chat.jsonl").write_bytes(zc_line("still readable"))
    for args in (["list"], ["show", "chat"], ["search", "x"], ["rollback", "chat", "--yes"]):
        assert "not a SQLite database" in assert_one_line_error(cli(root, *args, timeout=20))
    beside = cli(root, "--backend", "jsonl", "show", "chat", timeout=20)  # the JSONL store alone
    assert beside.code == 0 and "still readable" in beside.out
    from tui.app import run_app

    assert run_app(workspace=root) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a SQLite database" in err[0]


LOCKER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA journal_mode=WAL")
conn.execute("BEGIN IMMEDIATE")
conn.execute("INSERT INTO sessions (session_key, role, content, created_at)"
             " VALUES ('gw_named_02', 'user', 'uncommitted', '2026-11-23T17:20:00+00:00')")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("ROLLBACK")
"""


def test_a_database_locked_by_another_writer(tmp_path: Path) -> None:
    """Reads go on (WAL); an edit waits the 5 s busy timeout, then fails with one line."""
    root = copy_fixture("sqlite-workspace", tmp_path)
    db = root / "sessions" / "sessions.db"
    locker = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(db), "10"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert locker.stdout is not None and locker.stdout.readline() == "locked\n"
        for args in (["list", "--json"], ["show", "gw_named_02", "--json"], ["search", "travel"]):
            started = time.monotonic()
            result = cli(root, *args, timeout=20)
            assert result.code == 0, result
            assert time.monotonic() - started < 4.0, f"{args} waited for the lock"
        assert "uncommitted" not in cli(root, "show", "gw_named_02").out
        started = time.monotonic()
        error = assert_one_line_error(cli(root, "rollback", "gw_named_02", "--yes", timeout=20))
        assert "locked by another writer" in error
        assert time.monotonic() - started < 9.0, "the edit waited past its bound"
        assert locker.poll() is None, "the lock was gone before the edit gave up"
    finally:
        locker.kill()
        locker.wait()
    assert Journal().entries() == [], "a failed edit left a journal entry"


def corrupt_fts(db: Path, how: str) -> None:
    conn = sqlite3.connect(db)
    blob = "randomblob(length(block))" if how == "garbage" else "zeroblob(length(block))"
    conn.execute(f"UPDATE sessions_fts_data SET block = {blob} WHERE id > 10")
    conn.commit()
    conn.close()


@pytest.mark.parametrize("how", ["garbage", "zeroed"])
def test_a_damaged_search_index(tmp_path: Path, how: str) -> None:
    """Garbage blocks: search says so in one line (and how to repair). Zeroed blocks: SQLite
    itself sees no damage and finds nothing (ZeroClaw's search too); compact notices, rebuilds,
    and search finds everything again."""
    root = copy_fixture("sqlite-workspace", tmp_path)
    db = root / "sessions" / "sessions.db"
    want = cli(root, "search", "travel", "--json").json()
    assert want
    corrupt_fts(db, how)
    assert not fts_integrity_ok(db)
    result = cli(root, "search", "travel", "--json", timeout=20)
    if result.code == 0:
        assert result.json() in (want, [])
    else:
        assert "compact rebuilds it" in assert_one_line_error(result)
    assert how == "zeroed" or result.code == 1
    assert cli(root, "show", "gw_named_02", "--json").code == 0  # messages are fine
    report = cli(root, "compact", "gw_named_02", "--yes", "--json", timeout=30)
    assert report.code == 0, report
    assert "the search index was stale: rebuilt it" in report.json()["warnings"]
    assert fts_integrity_ok(db)
    assert cli(root, "search", "travel", "--json").json() == want


# --- a read-only file system ---------------------------------------------------------------------

RO_SCRIPT = """
set -e
mount --bind "$1" "$1"
mount -o remount,bind,ro "$1"
shift
exec "$@"
"""

RO_DRIVER = """
import json, subprocess, sys
ws = sys.argv[1]
out = {}
for cmd in json.loads(sys.argv[2]):
    p = subprocess.run([sys.executable, "-m", "storage.cli", "--workspace", ws, *cmd],
                       capture_output=True, text=True, timeout=30)
    out[" ".join(cmd)] = [p.returncode, p.stderr]
print(json.dumps(out))
"""


def under_read_only_mount(
    folder: Path, *command: str, **run: Any
) -> subprocess.CompletedProcess[Any]:
    """``command`` in a private mount namespace where ``folder`` is bind-mounted read-only."""
    argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", RO_SCRIPT, "sh"]
    return subprocess.run([*argv, str(folder), *command], capture_output=True, **run)


def can_mount_read_only(tmp_path: Path) -> bool:
    probe = tmp_path / "probe"
    probe.mkdir()
    if shutil.which("unshare") is None:
        return False
    check = f"! touch {probe}/x 2>/dev/null"
    return under_read_only_mount(probe, "sh", "-c", check, timeout=20).returncode == 0


def run_read_only(ws: Path, commands: list[list[str]]) -> dict[str, Any]:
    import json

    result = under_read_only_mount(
        ws,
        sys.executable,
        "-c",
        RO_DRIVER,
        str(ws),
        json.dumps(commands),
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert result.returncode == 0, result.stderr
    out: dict[str, Any] = json.loads(result.stdout)
    return out


@pytest.mark.parametrize(
    ("fixture", "key"),
    [
        ("sqlite-workspace", "gw_named_02"),
        pytest.param("jsonl-workspace", "gw_a1b2c3", marks=pytest.mark.soak),
    ],
)
def test_a_read_only_file_system(tmp_path: Path, fixture: str, key: str) -> None:
    """As root, chmod cannot make a folder read-only; a read-only bind mount in a private mount
    namespace (``unshare -m``) can. Reads work without ``--read-only``; every edit fails with one
    line, and the undo journal (elsewhere, writable) is left with nothing pending."""
    if not can_mount_read_only(tmp_path):
        pytest.skip("no unshare -m here: see test_edits_fail_cleanly_when_the_os_refuses_writes")
    ws = copy_fixture(fixture, tmp_path)
    before = folder_state(ws)
    reads = [["list"], ["show", key], ["search", "travel"], ["export", key]]
    edits = [
        ["rollback", key, "--yes"],
        ["compact", key, "--yes"],
        ["delete", key, "--yes"],
        ["rename", key, "x"],
    ]
    results = run_read_only(ws, reads + edits)
    for cmd in reads:
        assert results[" ".join(cmd)][0] == 0, (cmd, results[" ".join(cmd)])
    for cmd in edits:
        code, err = results[" ".join(cmd)]
        lines = err.strip().splitlines()
        assert code == 1 and len(lines) == 1 and "Traceback" not in err, (cmd, err)
        assert "read-only" in lines[0].lower(), (cmd, lines[0])
    assert folder_state(ws) == before
    assert Journal().entries() == [], "a refused edit left a journal entry"


def test_edits_fail_cleanly_when_the_os_refuses_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same, where no mount namespace is allowed: EROFS from every write of the store."""
    sessions = copy_fixture("jsonl-workspace", tmp_path) / "sessions"
    before = folder_state(sessions)
    real_open, real_unlink = os.open, os.unlink

    def refuse(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        writing = flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
        if writing and str(sessions) in os.fsdecode(path):
            raise OSError(errno.EROFS, "Read-only file system", os.fsdecode(path))
        return real_open(path, flags, *args, **kwargs)

    def refuse_unlink(path: Any, *args: Any, **kwargs: Any) -> None:
        if str(sessions) in os.fsdecode(path):
            raise OSError(errno.EROFS, "Read-only file system", os.fsdecode(path))
        real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    monkeypatch.setattr(os, "unlink", refuse_unlink)
    journal = Journal()
    backend = JsonlBackend(sessions, journal=journal)
    assert backend.count_messages("gw_a1b2c3") == 31
    for edit in (
        lambda: backend.rollback("gw_a1b2c3", 3),
        lambda: backend.compact("gw_a1b2c3"),
        lambda: backend.delete_session("gw_a1b2c3"),
        lambda: backend.set_session_name("gw_a1b2c3", "x"),
    ):
        with pytest.raises(StorageError) as caught:
            edit()
        assert "Read-only file system" in str(caught.value) and "\n" not in str(caught.value)
    assert folder_state(sessions) == before
    assert journal.entries() == [], "a refused edit left a journal entry"
