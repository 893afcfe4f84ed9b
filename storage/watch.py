"""A change feed for a sessions folder: which sessions changed, as soon as the OS says so.

``ChangeFeed`` is an async iterator of sets of names: a JSONL session's file stem, or
``SQLITE`` when ``sessions.db`` or its ``-wal`` changed. It uses watchfiles with a low debounce
(watchfiles' default of 1.6 s is too slow for a live tail) and falls back to polling file stats
when the OS watcher cannot start or dies. It never reads a session: callers ask their backend.
``sessions.db-shm`` is ignored on purpose: readers write to it, so watching it would make every
read of ours look like a change.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal

from watchfiles import Change, awatch

SQLITE = "sqlite"
_SQLITE_FILES = frozenset({"sessions.db", "sessions.db-wal"})
_SUFFIX = ".jsonl"

FeedMode = Literal["starting", "watching", "polling", "stopped"]
FileStat = tuple[int, int, int]


def session_of(name: str) -> str | None:
    """What a file name in ``sessions/`` stands for: a JSONL stem, ``SQLITE``, or None."""
    if name in _SQLITE_FILES:
        return SQLITE
    if name.endswith(_SUFFIX) and len(name) > len(_SUFFIX) and not name.startswith("."):
        return name[: -len(_SUFFIX)]
    return None


def _relevant(_change: Change, path: str) -> bool:
    return session_of(os.path.basename(path)) is not None


def snapshot(sessions_dir: Path) -> dict[str, FileStat]:
    """(mtime_ns, size, inode) of every file the feed cares about; empty if the folder is gone."""
    found: dict[str, FileStat] = {}
    try:
        entries = list(os.scandir(sessions_dir))
    except OSError:
        return found
    for entry in entries:
        if session_of(entry.name) is None:
            continue
        try:
            st = entry.stat()
        except OSError:
            continue
        found[entry.name] = (st.st_mtime_ns, st.st_size, st.st_ino)
    return found


def diff_snapshots(old: dict[str, FileStat], new: dict[str, FileStat]) -> frozenset[str]:
    """Sessions whose files appeared, vanished or changed between two snapshots."""
    names = {n for n in old.keys() | new.keys() if old.get(n) != new.get(n)}
    return frozenset(s for s in map(session_of, names) if s is not None)


class ChangeFeed:
    """``async for changed in ChangeFeed(dir): ...`` until ``stop()``.

    ``mode`` says how changes are found (``watching`` or ``polling``); ``error`` why the OS
    watcher was given up, if it was.
    """

    def __init__(
        self,
        sessions_dir: Path,
        *,
        debounce_ms: int = 20,
        step_ms: int = 5,
        poll_interval: float = 1.0,
        force_polling: bool = False,
    ) -> None:
        self.sessions_dir = sessions_dir
        self.debounce_ms = debounce_ms
        self.step_ms = step_ms
        self.poll_interval = poll_interval
        self.force_polling = force_polling
        self.mode: FeedMode = "starting"
        self.error: str | None = None
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    async def __aiter__(self) -> AsyncIterator[frozenset[str]]:
        if not self.force_polling:
            try:
                async for changed in self._watch():
                    yield changed
            except Exception as err:  # any OS watcher failure: polling still works
                self.error = f"{type(err).__name__}: {err}"
        if not self.stopped:
            async for changed in self._poll():
                yield changed
        self.mode = "stopped"

    async def _watch(self) -> AsyncIterator[frozenset[str]]:
        if not self.sessions_dir.is_dir():
            raise FileNotFoundError(f"no folder {self.sessions_dir}")
        self.mode = "watching"
        async for changes in awatch(
            self.sessions_dir,
            watch_filter=_relevant,
            debounce=self.debounce_ms,
            step=self.step_ms,
            stop_event=self._stop,
            recursive=False,
        ):
            changed = frozenset(
                s for s in (session_of(os.path.basename(p)) for _, p in changes) if s is not None
            )
            if changed:
                yield changed

    async def _poll(self) -> AsyncIterator[frozenset[str]]:
        self.mode = "polling"
        before = await asyncio.to_thread(snapshot, self.sessions_dir)
        while not self.stopped:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.poll_interval)
            if self.stopped:
                return
            after = await asyncio.to_thread(snapshot, self.sessions_dir)
            changed = diff_snapshots(before, after)
            before = after
            if changed:
                yield changed
