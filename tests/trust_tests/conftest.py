"""Shared kit for the trust tests: ZeroClaw-like daemons in other processes, the CLI as a
subprocess, fingerprints of whole folders, and a private HOME and working folder per test.

The root conftest already points ``XDG_STATE_HOME`` (the undo journal) at a temp dir; here
``HOME`` and the current folder move too, so an export or a stray write cannot reach the real
home. Helpers that exist elsewhere are reused: ``JsonlKit`` (tests/unit_storage/conftest.py),
``file_ids`` (test_jsonl_concurrency.py), the SQLite helpers (sqlite_helpers.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from storage.journal import Journal, JournalEntry
from storage.models import ChatMessage
from storage.sqlite import ensure_schema
from storage.zcformat import LineProblem, parse_line

ROOT = Path(__file__).resolve().parents[2]
CLI_TIMEOUT = 60.0


@pytest.fixture(autouse=True)
def private_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
    return home


# --- the command line, as a user runs it ------------------------------------------------------


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def cli(
    workspace: Path, *args: str, read_only: bool = False, timeout: float = CLI_TIMEOUT
) -> CliResult:
    """``python -m storage.cli --workspace WS [--read-only] ARGS`` in a subprocess."""
    argv = [sys.executable, "-m", "storage.cli", "--workspace", str(workspace)]
    argv += ["--read-only"] if read_only else []
    proc = subprocess.run(
        [*argv, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=os.getcwd(),
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def assert_one_line_error(result: CliResult) -> str:
    """Exit 1 with exactly one line on stderr, never a traceback."""
    assert result.code == 1, result
    lines = result.err.strip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith("zc-sessions: error: "), result.err
    assert "Traceback" not in result.err
    return lines[0]


# --- ZeroClaw-like daemons ---------------------------------------------------------------------

# ZeroClaw's JSONL append, at about ``rate`` messages a second in bursts: open O_APPEND|O_CREAT,
# write the JSON, write "\n", close. User and assistant alternate, so a "turn" always exists.
# Contents are unique ("<prefix>-<n>"); at the end it prints how many it wrote.
JSONL_DAEMON = r"""
import json, os, sys, time
path, stop, rate, burst, pause, prefix = sys.argv[1:7]
rate, burst, pause = float(rate), int(burst), float(pause)
i = 0
while not os.path.exists(stop):
    for n in range(burst):
        if n % 50 == 49 and os.path.exists(stop):
            break
        role = ("user", "assistant")[i % 2]
        line = json.dumps({"role": role, "content": f"{prefix}-{i:07d}"}, separators=(",", ":"))
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(fd, line.encode())
        os.write(fd, b"\n")
        os.close(fd)
        i += 1
        time.sleep(1 / rate)
    time.sleep(pause)
print(i, flush=True)
"""

# ZeroClaw's SQLite append: an autocommit INSERT, then the metadata upsert, both with the
# timestamp chrono would write (nanoseconds), WAL, synchronous=NORMAL, busy_timeout 5000.
# It records every failure and the slowest append; prints a JSON summary when it stops.
SQLITE_DAEMON = r"""
import json, sqlite3, sys, time, pathlib
db, key, stop, rate, burst, pause = sys.argv[1:7]
stop, rate, burst, pause = pathlib.Path(stop), float(rate), int(burst), float(pause)
conn = sqlite3.connect(db, isolation_level=None, timeout=5)
conn.execute("PRAGMA busy_timeout=5000")
conn.execute("PRAGMA journal_mode=WAL")
conn.execute("PRAGMA synchronous=NORMAL")
def now():
    ns = time.time_ns()
    s, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)) + f".{frac:09d}+00:00"
written, errors, slowest, i = [], [], 0.0, 0
while not stop.exists():
    for n in range(burst):
        if n % 50 == 49 and stop.exists():
            break
        i += 1
        content = f"daemon-{i:07d}"
        role = ("user", "assistant")[i % 2]
        ts = now()
        started = time.monotonic()
        try:
            conn.execute("INSERT INTO sessions (session_key, role, content, created_at)"
                         " VALUES (?1, ?2, ?3, ?4)", (key, role, content, ts))
            written.append(content)
            conn.execute("INSERT INTO session_metadata (session_key, created_at, last_activity,"
                         " message_count) VALUES (?1, ?2, ?3, 1) ON CONFLICT(session_key) DO"
                         " UPDATE SET last_activity = excluded.last_activity,"
                         " message_count = message_count + 1", (key, ts, ts))
        except sqlite3.Error as err:
            errors.append(f"{content}: {err}")
        slowest = max(slowest, time.monotonic() - started)
        time.sleep(1 / rate)
    time.sleep(pause)
conn.close()
print(json.dumps({"written": written, "errors": errors, "slowest": slowest}), flush=True)
"""


class Daemon:
    """A ZeroClaw-like writer in another process; ``stop()`` returns what it printed."""

    def __init__(self, script: str, args: list[str], stop: Path) -> None:
        self.stop_file = stop
        self.proc = subprocess.Popen(
            [sys.executable, "-c", script, *args], stdout=subprocess.PIPE, text=True
        )
        self.output: str | None = None

    def stop(self) -> str:
        if self.output is None:
            self.stop_file.touch()
            out, _ = self.proc.communicate(timeout=30)
            self.output = out.strip()
        return self.output


def jsonl_daemon(
    path: Path,
    stop: Path,
    *,
    rate: float = 1000,
    burst: int = 1_000_000,
    pause: float = 0.0,
    prefix: str = "live",
) -> Daemon:
    args = [str(path), str(stop), str(rate), str(burst), str(pause), prefix]
    return Daemon(JSONL_DAEMON, args, stop)


def sqlite_daemon(
    db: Path,
    key: str,
    stop: Path,
    *,
    rate: float = 1000,
    burst: int = 1_000_000,
    pause: float = 0.0,
) -> Daemon:
    args = [str(db), key, str(stop), str(rate), str(burst), str(pause)]
    return Daemon(SQLITE_DAEMON, args, stop)


def wait_until(predicate: Any, timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(0.02)


# --- stores ----------------------------------------------------------------------------------


def zc_line(content: str, role: str = "user") -> bytes:
    obj = {"role": role, "content": content}
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def new_sqlite_store(sessions: Path) -> Path:
    """An empty store with ZeroClaw's current schema, as its daemon creates it."""
    sessions.mkdir(parents=True, exist_ok=True)
    db = sessions / "sessions.db"
    conn = sqlite3.connect(db, isolation_level=None)
    ensure_schema(conn)
    conn.close()
    return db


def contents_of(data: bytes) -> list[str]:
    """Every message content in JSONL bytes, the ones glued into one line included."""
    found: list[str] = []
    for raw in data.split(b"\n"):
        got = parse_line(raw)
        if isinstance(got, ChatMessage):
            found.append(got.content)
        elif isinstance(got, LineProblem):
            found += [m.content for m in got.recovered]
    return found


def contents_in_file(path: Path) -> list[str]:
    return contents_of(path.read_bytes())


def removed_in_blob(journal: Journal, entry: JournalEntry) -> list[str]:
    """What a JSONL cut really removed: the messages in its journal blob (which also holds what
    the daemon appended while the cut ran)."""
    return contents_of(journal.blob(entry))


def folder_state(folder: Path) -> dict[str, tuple[str, int, int]]:
    """Every entry under ``folder`` (hidden ones, -wal/-shm included): sha256, mtime_ns, mode."""
    out: dict[str, tuple[str, int, int]] = {}
    for p in sorted(folder.rglob("*")):
        st = p.lstat()
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        out[str(p.relative_to(folder))] = (digest, st.st_mtime_ns, st.st_mode)
    st = folder.lstat()
    out["."] = ("dir", st.st_mtime_ns, st.st_mode)
    return out
