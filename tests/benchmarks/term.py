"""A real terminal for the benchmarks: a tmux pane, polled with ``capture-pane`` for text.

Every tmux call goes to a private server (``tmux -L zc-bench -f /dev/null``), so the
benchmarks never touch anyone's own tmux sessions. Times are ``time.perf_counter`` seconds.
Process facts (RSS, CPU) come from ``/proc`` of the app process: the descendant of the pane's
process whose command line matches.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

SOCKET = "zc-bench"
POLL = 0.005
CLK_TCK = os.sysconf("SC_CLK_TCK")


class Timeout(Exception):
    pass


def tmux(*args: str, check: bool = True) -> str:
    out = subprocess.run(
        ["tmux", "-L", SOCKET, "-f", "/dev/null", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if check and out.returncode != 0:
        raise RuntimeError(f"tmux {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout


def kill_server() -> None:
    tmux("kill-server", check=False)


# --- /proc ---------------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children(p)
    return out


def cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def status_kb(pid: int, field_name: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def wait_until_idle(
    pid: int, *, window: float = 1.0, below: float = 0.03, limit: float = 90.0
) -> float:
    """Wait until ``pid`` uses less than ``below`` of a core over ``window``; the time waited."""
    start = time.perf_counter()
    while time.perf_counter() - start < limit:
        before = cpu_seconds(pid)
        time.sleep(window)
        if (cpu_seconds(pid) - before) / window < below:
            break
    return time.perf_counter() - start


def cpu_share(pid: int, seconds: float) -> float:
    """Fraction of one core ``pid`` used over the next ``seconds``."""
    t0, c0 = time.perf_counter(), cpu_seconds(pid)
    time.sleep(seconds)
    return (cpu_seconds(pid) - c0) / (time.perf_counter() - t0)


# --- the pane ------------------------------------------------------------------------------


@dataclass
class Pane:
    """A command running in a detached tmux session of ``width`` x ``height``."""

    name: str
    argv: Sequence[str]
    match: str  # a piece of the app process's command line
    cwd: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    width: int = 120
    height: int = 40
    started: float = 0.0

    def start(self) -> float:
        """Start the command; returns the start time (just before tmux is asked)."""
        tmux("kill-session", "-t", self.name, check=False)
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items())
        cd = f"cd {shlex.quote(str(self.cwd))} && " if self.cwd else ""
        command = f"{cd}exec env {env} {shlex.join(self.argv)}"
        for attempt in range(5):  # a tmux server that is just shutting down refuses once
            self.started = time.perf_counter()
            try:
                tmux(
                    "new-session",
                    "-d",
                    "-s",
                    self.name,
                    "-x",
                    str(self.width),
                    "-y",
                    str(self.height),
                    command,
                )
                break
            except RuntimeError:
                if attempt == 4:
                    raise
                time.sleep(0.3)
        return self.started

    def capture(self) -> str:
        return tmux("capture-pane", "-p", "-t", self.name, check=False)

    def wait_for(
        self,
        test: Callable[[str], bool],
        *,
        since: float | None = None,
        timeout: float = 60.0,
        what: str = "text",
    ) -> float:
        """Seconds from ``since`` (default: the start) until ``test(screen)`` holds."""
        origin = self.started if since is None else since
        deadline = time.perf_counter() + timeout
        while True:
            screen = self.capture()
            now = time.perf_counter()
            if test(screen):
                return now - origin
            if now > deadline:
                tail = "\n".join(screen.splitlines()[-12:])
                raise Timeout(f"{self.name}: no {what} after {timeout:.0f} s; screen ends:\n{tail}")
            time.sleep(POLL)

    def wait_text(
        self, text: str, *, since: float | None = None, timeout: float = 60.0, what: str = ""
    ) -> float:
        return self.wait_for(
            lambda s: text in s, since=since, timeout=timeout, what=what or repr(text)
        )

    def wait_regex(
        self, pattern: str, *, since: float | None = None, timeout: float = 60.0, what: str = ""
    ) -> float:
        rx = re.compile(pattern, re.M)
        return self.wait_for(
            lambda s: rx.search(s) is not None, since=since, timeout=timeout, what=what or pattern
        )

    def keys(self, *keys: str) -> float:
        """Send tmux key names (``Enter``, ``PageUp``, ``C-u``); returns the time just before."""
        t = time.perf_counter()
        tmux("send-keys", "-t", self.name, *keys)
        return t

    def type(self, text: str) -> float:
        t = time.perf_counter()
        tmux("send-keys", "-t", self.name, "-l", text)
        return t

    def pid(self) -> int:
        """The app process: the pane's own process or a descendant, by command line."""
        pane_pid = int(tmux("display", "-p", "-t", self.name, "#{pane_pid}").strip())
        for pid in descendants(pane_pid):
            if self.match in cmdline(pid):
                return pid
        return pane_pid

    def rss_mb(self) -> tuple[float, float]:
        """(VmRSS, VmHWM) of the app process in MB."""
        pid = self.pid()
        return (status_kb(pid, "VmRSS") or 0) / 1024, (status_kb(pid, "VmHWM") or 0) / 1024

    def stop(self) -> None:
        tmux("kill-session", "-t", self.name, check=False)

    def __enter__(self) -> Pane:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
