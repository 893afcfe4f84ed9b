"""Edits while another process appends as ZeroClaw does, and compact killed with SIGKILL."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from storage import jsonl as jsonl_module
from storage.journal import Journal
from storage.jsonl import JsonlBackend
from storage.models import EditReport
from storage.zcformat import parse_line
from tests import helpers
from tests.unit_storage.conftest import JsonlKit

ROOT = Path(__file__).resolve().parents[2]

# ZeroClaw's append: open O_APPEND|O_CREAT, write the JSON, write the newline, close.
APPENDER = """
import json, os, sys, time
path, stop = sys.argv[1], sys.argv[2]
i = 0
while not os.path.exists(stop):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, json.dumps({"role": "user", "content": f"live-{i:06d}"}).encode())
    os.write(fd, b"\\n")
    os.close(fd)
    i += 1
    time.sleep(0.001)
print(i)
"""

COMPACTOR = """
import sys
from pathlib import Path
from storage.journal import Journal
from storage.jsonl import JsonlBackend
backend = JsonlBackend(Path(sys.argv[1]), journal=Journal(Path(sys.argv[2])))
print("ready", flush=True)
backend.compact(sys.argv[3])
print("done", flush=True)
"""


def live_ids(report: EditReport) -> set[str]:
    found = {m.content for m in report.removed}
    found |= {m.content for s in report.removed_lines for m in s.recovered}
    return found


def file_ids(path: Path) -> list[str]:
    """Every message in the file, the ones in glued lines too: none of their bytes are lost."""
    found: list[str] = []
    for raw in path.read_bytes().split(b"\n"):
        got = parse_line(raw)
        found += [got.content] if hasattr(got, "content") else [m.content for m in got.recovered]
    return found


def test_rollback_and_compact_lose_nothing_under_live_appends(
    jsonl: JsonlBackend, kit: JsonlKit, tmp_path: Path
) -> None:
    path = kit.write("live", kit.lines(20))
    stop = tmp_path / "stop"
    appender = subprocess.Popen(
        [sys.executable, "-c", APPENDER, str(path), str(stop)], stdout=subprocess.PIPE
    )
    removed: set[str] = set()
    try:
        time.sleep(0.2)
        for round_ in range(20):
            count = jsonl.count_messages("live")
            removed |= live_ids(jsonl.rollback("live", max(0, count - 2)))
            time.sleep(0.02)
            if round_ % 2 == 0:
                # A blank line for compact to drop; a single write cannot tear a message.
                fd = os.open(path, os.O_WRONLY | os.O_APPEND)
                os.write(fd, b" \n")
                os.close(fd)
                removed |= live_ids(jsonl.compact("live"))
                time.sleep(0.02)
    finally:
        stop.touch()
        out, _ = appender.communicate(timeout=30)
    written = {f"live-{i:06d}" for i in range(int(out))}
    in_file = [c for c in file_ids(path) if c.startswith("live-")]
    assert len(written) > 500, "the appender did not run alongside"
    assert len(in_file) == len(set(in_file)), "a message was carried over twice"
    assert not set(in_file) & removed, "a removed message is still in the file"
    assert written - set(in_file) - removed == set(), "messages were lost"
    assert len(removed) >= 20


def zeroclaw_append(path: Path, content: str) -> None:
    helpers.zeroclaw_append(path, JsonlKit.line(content).rstrip(b"\n"))


def append_during_cut(monkeypatch: pytest.MonkeyPatch, path: Path) -> list[threading.Thread]:
    """Start a ZeroClaw-style append in another thread right before the final check."""
    real = jsonl_module._truncate
    started: list[threading.Thread] = []

    def truncate(*args: Any) -> bytes | None:
        thread = threading.Thread(target=zeroclaw_append, args=(path, "late"))
        thread.start()
        started.append(thread)
        time.sleep(0.1)  # without a lease, the append lands now
        return real(*args)

    monkeypatch.setattr(jsonl_module, "_truncate", truncate)
    return started


def test_the_lease_holds_an_append_off_until_the_cut_is_done(
    jsonl: JsonlBackend, kit: JsonlKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = kit.write("live", kit.lines(5))
    threads = append_during_cut(monkeypatch, path)
    report = jsonl.rollback("live", 3)
    threads[0].join(5)
    assert [m.content for m in report.removed] == ["m3", "m4"]
    assert path.read_bytes() == kit.lines(3) + kit.line("late")


def test_without_a_lease_the_append_is_removed_and_reported(
    jsonl: JsonlBackend, kit: JsonlKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = kit.write("live", kit.lines(5))
    real_fcntl = fcntl.fcntl

    def no_leases(fd: int, cmd: int, arg: int = 0) -> Any:
        if cmd == fcntl.F_SETLEASE:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_fcntl(fd, cmd, arg)

    monkeypatch.setattr(fcntl, "fcntl", no_leases)
    threads = append_during_cut(monkeypatch, path)
    report = jsonl.rollback("live", 3)
    threads[0].join(5)
    assert [m.content for m in report.removed] == ["m3", "m4", "late"]
    assert path.read_bytes() == kit.lines(3)


def test_compact_killed_at_any_moment_leaves_old_or_new_content(tmp_path: Path) -> None:
    rng = random.Random(20260316)
    kit = JsonlKit(tmp_path / "sessions")
    kit.sessions.mkdir()
    pad = "y" * 80
    lines = [kit.line(f"n{i} {pad}", ("user", "assistant")[i % 2]) for i in range(400_000)]
    for at in range(1000, 400_000, 50_000):
        lines[at] = b"{broken line\n"
    old = b"".join(lines)
    new = b"".join(ln for ln in lines if ln != b"{broken line\n")
    assert len(old) > 40_000_000
    digests = {hashlib.sha256(old).hexdigest(): "old", hashlib.sha256(new).hexdigest(): "new"}
    path = kit.write("big", old)
    state = tmp_path / "state"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    seen: list[str] = []
    trials = 8
    for trial in range(trials):
        proc = subprocess.Popen(
            [sys.executable, "-c", COMPACTOR, str(kit.sessions), str(state), "big"],
            stdout=subprocess.PIPE,
            env=env,
        )
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        # One kill in each slice of the ~0.3 s a compact takes here, and some after it.
        time.sleep(rng.uniform(trial, trial + 1) * 0.6 / trials)
        proc.kill()
        proc.wait()
        seen.append(digests.get(hashlib.sha256(path.read_bytes()).hexdigest(), "torn"))
        assert seen[-1] != "torn"
        assert [p.name for p in kit.sessions.iterdir() if ".jsonl" in p.name] == ["big.jsonl"]
        undo_all(JsonlBackend(kit.sessions, journal=Journal(state)), Journal(state))
        assert path.read_bytes() == old, "undo did not bring the old content back"
    assert "old" in seen


def undo_all(backend: JsonlBackend, journal: Journal) -> None:
    """Undo every compact, done or interrupted: the file must come back byte for byte."""
    for entry in journal.entries():
        if entry.status != "undone":
            backend.restore(entry.id)
