"""A small program the crash tests kill with SIGKILL in the middle of an edit.

``python -m tests.trust_tests.crash_driver OP ARGS... [--die-at TARGET:N:WHEN]``

It prints ``ready`` once everything is imported, then runs one edit. With ``--die-at`` it
SIGKILLs itself right ``before`` or ``after`` the N-th call of TARGET (a syscall wrapper or a
journal step), so a test can hit the exact windows that matter; without it, the test kills it
at a random moment.
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from storage.journal import Journal
from storage.jsonl import JsonlBackend
from storage.migrate import migrate
from storage.sqlite import SqliteBackend

TARGETS: dict[str, tuple[Any, str]] = {
    "ftruncate": (os, "ftruncate"),
    "replace": (os, "replace"),
    "rename": (os, "rename"),
    "link": (os, "link"),
    "unlink": (os, "unlink"),
    "write": (os, "write"),
    "fsync": (os, "fsync"),
    "journal.begin": (Journal, "begin"),
    "journal.set_status": (Journal, "set_status"),
    "journal.append_blob": (Journal, "append_blob"),
}


def die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def arm(spec: str) -> None:
    """Patch TARGET so that its N-th call kills this process before or after it runs."""
    name, nth, when = spec.split(":")
    owner, attr = TARGETS[name]
    real: Callable[..., Any] = getattr(owner, attr)
    calls = 0

    @functools.wraps(real)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == int(nth) and when == "before":
            die()
        result = real(*args, **kwargs)
        if calls == int(nth) and when == "after":
            die()
        return result

    setattr(owner, attr, wrapper)


def run(op: str, args: list[str], state: Path) -> None:
    journal = Journal(state)
    if op == "compact":
        JsonlBackend(Path(args[0]), journal=journal).compact(args[1])
    elif op == "rollback":
        JsonlBackend(Path(args[0]), journal=journal).rollback(args[1], int(args[2]))
    elif op == "rollback-last":
        backend = JsonlBackend(Path(args[0]), journal=journal)
        backend.rollback_last(args[1], "messages", int(args[2]))
    elif op == "undo":
        backend = JsonlBackend(Path(args[0]), journal=journal)
        entry = journal.latest_undoable(Path(args[0]))
        assert entry is not None
        backend.restore(entry.id)
    elif op == "migrate":
        migrate(Path(args[0]))
    elif op == "sqlite-rollback":
        SqliteBackend(Path(args[0]), journal=journal).rollback(args[1], int(args[2]))
    else:
        raise SystemExit(f"unknown op {op}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("op")
    parser.add_argument("args", nargs="*")
    parser.add_argument("--state", type=Path, required=True, help="the journal's state dir")
    parser.add_argument("--die-at")
    ns = parser.parse_args()
    print("ready", flush=True)
    if ns.die_at:
        arm(ns.die_at)
    run(ns.op, ns.args, ns.state)
    print("done", flush=True)


if __name__ == "__main__":
    main()
