"""Closing the terminal quits the browser cleanly: the demo's temp folder goes with it."""

from __future__ import annotations

import os
import pty
import select
import signal
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _read_until(fd: int, needle: bytes, timeout: float) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                seen += os.read(fd, 65536)
            except OSError:
                break
    return seen


def _wait_exit(pid: int, fd: int, timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        _read_until(fd, b"\0never", 0.05)  # keep the terminal drained while it shuts down
    return None


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGTERM])
def test_a_hangup_quits_and_removes_the_demo_folder(tmp_path: Path, signum: int) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path), "TERM": "xterm-256color", "PYTHONPATH": str(ROOT)}
    pid, fd = pty.fork()
    if pid == 0:  # the child: the browser on the demo, in this pseudo-terminal
        os.execve(sys.executable, [sys.executable, "-m", "storage.cli", "--demo"], env)
    code: int | None = None
    try:
        shown = _read_until(fd, b"sessions", timeout=30)
        assert b"sessions" in shown, shown[-500:]
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith("zc-sessions-demo-")]
        os.kill(pid, signum)
        code = _wait_exit(pid, fd, timeout=20)
    finally:
        if code is None:  # still running (or never started): do not leave it behind
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
    assert code == 128 + signum
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("zc-sessions-demo-")]
