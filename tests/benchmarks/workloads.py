"""The benchmark workspaces, generated once and cached under the work dir (default /tmp/zc-bench).

- ``jsonl/``: one 1,000,000-message session (``big``, ~250 MB), 10,000 small sessions and a
  ``live`` session, every line written byte-exactly as ZeroClaw writes it.
- ``jsonl-one/``: one small session (the start-up baseline).
- ``sqlite/``: ``sessions.db`` with ZeroClaw's schema and triggers (``storage.sqlite``), 10,000
  sessions x 100 messages (1,000,000 rows, FTS kept by the triggers), and metadata rows.
- ``sqlite-one/``: one session of 100 messages.

``--quick`` uses a tenth of every size, in ``<work>/quick``. A workload is rebuilt when its
folder or manifest entry is missing, its generator version changed, or its big file no longer
matches what was generated (an interrupted rollback benchmark, say).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from storage.sqlite import ensure_schema
from tests.benchmarks.content import (
    HALF_WORD,
    RARE_COUNT,
    RARE_JSONL,
    RARE_SQLITE,
    conversation,
    encode,
    vocabulary,
)

VERSION = 4
BIG_KEY = "big"
LIVE_KEY = "live"
ONE_KEY = "telegram_100200300"
LAST_MARK = "ZCMARK-LAST-MESSAGE"
LIVE_READY = "LIVE-READY waiting for new messages"
# Where RARE_JSONL is planted in the big session (fractions of its messages).
RARE_JSONL_AT = (0.99, 0.5, 0.01)
NOW = time.time()


@dataclass(frozen=True)
class Sizes:
    big_messages: int
    small_sessions: int
    sqlite_sessions: int
    sqlite_per_session: int
    live_messages: int = 200

    @property
    def label(self) -> str:
        return f"{self.big_messages:,}-message session, {self.small_sessions:,} small sessions"


FULL = Sizes(
    big_messages=1_000_000, small_sessions=10_000, sqlite_sessions=10_000, sqlite_per_session=100
)
QUICK = Sizes(
    big_messages=100_000, small_sessions=1_000, sqlite_sessions=1_000, sqlite_per_session=100
)


@dataclass(frozen=True)
class Workloads:
    root: Path
    sizes: Sizes
    facts: dict[str, Any]

    @property
    def jsonl(self) -> Path:
        return self.root / "jsonl"

    @property
    def jsonl_one(self) -> Path:
        return self.root / "jsonl-one"

    @property
    def sqlite(self) -> Path:
        return self.root / "sqlite"

    @property
    def sqlite_one(self) -> Path:
        return self.root / "sqlite-one"

    @property
    def big_file(self) -> Path:
        return self.jsonl / "sessions" / f"{BIG_KEY}.jsonl"

    @property
    def live_file(self) -> Path:
        return self.jsonl / "sessions" / f"{LIVE_KEY}.jsonl"

    @property
    def db(self) -> Path:
        return self.sqlite / "sessions" / "sessions.db"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def scratch(self) -> Path:
        path = self.root / "scratch"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def reset_live(self) -> None:
        """The live session as generated, ending in LIVE_READY (benchmarks append to it)."""
        base = self.root.joinpath("live.base").read_bytes()
        write_atomic(self.live_file, base + encode("assistant", LIVE_READY))
        os.utime(self.live_file, (NOW, NOW))


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".gen")
    tmp.write_bytes(data)
    tmp.replace(path)


def tail_hash(path: Path, n: int = 1 << 16) -> str:
    with path.open("rb") as f:
        f.seek(max(0, path.stat().st_size - n))
        return hashlib.sha256(f.read()).hexdigest()


def log(msg: str) -> None:
    print(f"[workloads] {msg}", flush=True)


# --- JSONL ---------------------------------------------------------------------------------


def small_key(rng: random.Random, n: int) -> str:
    kind = n % 5
    if kind == 0:
        return f"telegram_{100000000 + n * 7919}"
    if kind == 1:
        return f"discord_guild{n % 97}_ch{n % 13}_user{n}"
    if kind == 2:
        return f"gw_{rng.getrandbits(48):012x}"
    if kind == 3:
        return f"rpc_{rng.getrandbits(128):032x}"
    return f"slack_T0{n % 7}_C{n:06d}_1700000{n:03d}_123_U{n % 31}"


def write_big(path: Path, sizes: Sizes, vocab: list[str]) -> dict[str, Any]:
    """The big session: a long conversation, RARE_JSONL planted, LAST_MARK in the last message."""
    rng = random.Random(1)
    n = sizes.big_messages
    plant = {int(n * f) for f in RARE_JSONL_AT}
    last_turn = [
        ("user", "[2026-03-16 18:00:00 +02:00] Please wrap up and summarize what we did today."),
        (
            "assistant",
            json.dumps(
                {
                    "content": "",
                    "tool_calls": [
                        {
                            "id": "call_end",
                            "type": "function",
                            "function": {"name": "memory_recall", "arguments": '{"q":"today"}'},
                        }
                    ],
                }
            ),
        ),
        ("tool", json.dumps({"tool_call_id": "call_end", "content": "3 items recalled"})),
        ("assistant", f"{LAST_MARK}: all done — the summary is in **NOTES.md**."),
    ]
    body = n - len(last_turn)
    size = 0
    with path.open("wb", buffering=1 << 22) as f:
        for i, (role, content) in enumerate(conversation(rng, vocab, body, images=True)):
            if i in plant:
                content = f"{content} (see {RARE_JSONL} notes)"
            line = encode(role, content)
            size += len(line)
            f.write(line)
        for role, content in last_turn:
            line = encode(role, content)
            size += len(line)
            f.write(line)
    return {
        "messages": n,
        "bytes": size,
        "rare_jsonl_at": sorted(plant),
        "last_turn": len(last_turn),
    }


def build_jsonl(root: Path, sizes: Sizes) -> dict[str, Any]:
    sessions = root / "jsonl" / "sessions"
    shutil.rmtree(root / "jsonl", ignore_errors=True)
    sessions.mkdir(parents=True)
    vocab = vocabulary(random.Random(0))
    log(f"JSONL: big session of {sizes.big_messages:,} messages")
    big = write_big(sessions / f"{BIG_KEY}.jsonl", sizes, vocab)
    os.utime(sessions / f"{BIG_KEY}.jsonl", (NOW - 3600, NOW - 3600))
    log(f"JSONL: {sizes.small_sessions:,} small sessions")
    rng = random.Random(2)
    rare_small = {sizes.small_sessions // 3, sizes.small_sessions // 2}
    small_bytes = small_msgs = 0
    for s in range(sizes.small_sessions):
        key = small_key(rng, s)
        lines = [encode(r, c) for r, c in conversation(rng, vocab, rng.randint(2, 20))]
        if s in rare_small:
            lines.append(encode("user", f"what about {RARE_JSONL}?"))
        data = b"".join(lines)
        path = sessions / f"{key}.jsonl"
        path.write_bytes(data)
        when = NOW - 7200 - s * 250  # older than big; newest first by index
        os.utime(path, (when, when))
        small_bytes += len(data)
        small_msgs += len(lines)
    live = b"".join(encode(r, c) for r, c in conversation(rng, vocab, sizes.live_messages))
    (root / "live.base").write_bytes(live)
    (sessions / f"{LIVE_KEY}.jsonl").write_bytes(live)
    return {
        "big": big,
        "big_tail_sha256": tail_hash(sessions / f"{BIG_KEY}.jsonl"),
        "small_sessions": sizes.small_sessions,
        "small_messages": small_msgs,
        "small_bytes": small_bytes,
        "rare_jsonl_small": len(rare_small),
        "sessions": sizes.small_sessions + 2,
    }


def build_jsonl_one(root: Path, sizes: Sizes) -> dict[str, Any]:
    sessions = root / "jsonl-one" / "sessions"
    shutil.rmtree(root / "jsonl-one", ignore_errors=True)
    sessions.mkdir(parents=True)
    rng = random.Random(3)
    vocab = vocabulary(random.Random(0))
    data = b"".join(encode(r, c) for r, c in conversation(rng, vocab, 40))
    (sessions / f"{ONE_KEY}.jsonl").write_bytes(data)
    return {"sessions": 1, "bytes": len(data)}


# --- SQLite --------------------------------------------------------------------------------

_BASE_TS = 1_773_619_200  # 2026-03-16T00:00:00Z


def rfc3339(ns: int) -> str:
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}+00:00"


def sqlite_key(rng: random.Random, n: int) -> tuple[str, dict[str, Any]]:
    """A key and the channel columns ZeroClaw v0.8 fills for it."""
    kind = n % 4
    if kind == 0:
        return f"gw_{rng.getrandbits(48):012x}", {}
    if kind == 1:
        return f"rpc_{rng.getrandbits(128):032x}", {}
    if kind == 2:
        room = f"{n % 211}"
        return (
            f"telegram.ops_{room}_{n}",
            {"agent_alias": "ops", "channel_id": "telegram", "room_id": room, "sender_id": str(n)},
        )
    room = f"C{n % 97:04d}"
    return (
        f"slack_{room}_1700000000_{n:06d}_U{n % 53}",
        {"channel_id": "slack", "room_id": room, "sender_id": f"U{n % 53}"},
    )


def _row_order(rng: random.Random, sessions: int, per: int) -> list[int]:
    """Session numbers in insert order: waves of 200 sessions whose messages interleave."""
    order: list[int] = []
    for wave in range(0, sessions, 200):
        chunk = [s for s in range(wave, min(wave + 200, sessions)) for _ in range(per)]
        rng.shuffle(chunk)
        order += chunk
    return order


def build_sqlite(root: Path, name: str, sessions: int, per: int, seed: int) -> dict[str, Any]:
    folder = root / name / "sessions"
    shutil.rmtree(root / name, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = random.Random(seed)
    vocab = vocabulary(random.Random(0))
    keys = [sqlite_key(rng, s) for s in range(sessions)]
    total = sessions * per
    half = set(rng.sample(range(total), total // 2))
    rare = set(rng.sample(range(total), min(RARE_COUNT, total)))
    log(f"SQLite {name}: {sessions:,} sessions x {per} messages")
    convs = [conversation(random.Random(seed * 100_003 + s), vocab, per) for s in range(sessions)]
    conn = sqlite3.connect(folder / "sessions.db", isolation_level=None)
    ensure_schema(conn)
    conn.execute("PRAGMA synchronous=OFF")
    first: dict[int, str] = {}
    last: dict[int, str] = {}
    batch: list[tuple[str, str, str, str]] = []
    started = time.monotonic()
    for row, s in enumerate(_row_order(rng, sessions, per)):
        role, content = next(convs[s])
        if row in half:
            words = content.split(" ")
            words.insert(rng.randrange(len(words) + 1), HALF_WORD)
            content = " ".join(words)
        if row in rare:
            content += f" — {RARE_SQLITE} mentioned here"
        when = rfc3339((_BASE_TS + row) * 1_000_000_000 + rng.randrange(1_000_000_000))
        first.setdefault(s, when)
        last[s] = when
        batch.append((keys[s][0], role, content, when))
        if len(batch) >= 20_000:
            _insert(conn, batch)
            batch = []
            if row % 200_000 < 20_000:
                log(f"  {row:,} rows ({time.monotonic() - started:.0f} s)")
    _insert(conn, batch)
    _metadata(conn, rng, keys, first, last, per)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return {
        "sessions": sessions,
        "rows": total,
        "half_rows": len(half),
        "rare_rows": len(rare),
        "db_bytes": (folder / "sessions.db").stat().st_size,
    }


def _insert(conn: sqlite3.Connection, batch: list[tuple[str, str, str, str]]) -> None:
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO sessions (session_key, role, content, created_at) VALUES (?, ?, ?, ?)", batch
    )
    conn.execute("COMMIT")


def _metadata(
    conn: sqlite3.Connection,
    rng: random.Random,
    keys: list[tuple[str, dict[str, Any]]],
    first: dict[int, str],
    last: dict[int, str],
    per: int,
) -> None:
    rows = []
    for s, (key, channel) in enumerate(keys):
        name = (
            f"Project {rng.choice(['atlas', 'borealis', 'cobalt', 'delta'])} {s}"
            if rng.random() < 0.1
            else None
        )
        state, turn_id, started = "idle", None, None
        if rng.random() < 0.002:
            state, turn_id, started = "running", f"turn-{s}", last[s]
        rows.append(
            (
                key,
                first[s],
                last[s],
                per,
                name,
                state,
                turn_id,
                started,
                channel.get("agent_alias"),
                channel.get("channel_id"),
                channel.get("room_id"),
                channel.get("sender_id"),
            )
        )
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO session_metadata (session_key, created_at, last_activity, message_count,"
        " name, state, turn_id, turn_started_at, agent_alias, channel_id, room_id, sender_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    conn.execute("COMMIT")


# --- the cache -----------------------------------------------------------------------------


def _builders(sizes: Sizes) -> dict[str, Callable[[Path], dict[str, Any]]]:
    return {
        "jsonl": lambda root: build_jsonl(root, sizes),
        "jsonl-one": lambda root: build_jsonl_one(root, sizes),
        "sqlite": lambda root: build_sqlite(
            root, "sqlite", sizes.sqlite_sessions, sizes.sqlite_per_session, 11
        ),
        "sqlite-one": lambda root: build_sqlite(root, "sqlite-one", 1, 100, 12),
    }


def _still_good(root: Path, name: str, facts: dict[str, Any]) -> bool:
    if not (root / name / "sessions").is_dir():
        return False
    if name == "jsonl":
        big = root / "jsonl" / "sessions" / f"{BIG_KEY}.jsonl"
        return (
            big.exists()
            and big.stat().st_size == facts["big"]["bytes"]
            and tail_hash(big) == facts["big_tail_sha256"]
        )
    if name.startswith("sqlite"):
        return (root / name / "sessions" / "sessions.db").exists()
    return True


def ensure(work: Path, quick: bool) -> Workloads:
    """The workloads, built where missing or stale."""
    sizes = QUICK if quick else FULL
    root = work / "quick" if quick else work
    root.mkdir(parents=True, exist_ok=True)
    manifest_path = root / "manifest.json"
    manifest: dict[str, Any] = {}
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
    if manifest.get("version") != VERSION or manifest.get("sizes") != asdict(sizes):
        manifest = {"version": VERSION, "sizes": asdict(sizes), "workloads": {}}
    for name, build in _builders(sizes).items():
        facts = manifest["workloads"].get(name)
        if facts is not None and _still_good(root, name, facts):
            continue
        started = time.monotonic()
        facts = build(root)
        facts["built_in_s"] = round(time.monotonic() - started, 1)
        manifest["workloads"][name] = facts
        manifest_path.write_text(json.dumps(manifest, indent=1))
        log(f"{name}: built in {facts['built_in_s']} s")
    (root / "state").mkdir(exist_ok=True)
    loads = Workloads(root, sizes, manifest["workloads"])
    loads.reset_live()
    return loads


if __name__ == "__main__":
    import sys

    w = ensure(Path(os.environ.get("ZC_BENCH_DIR", "/tmp/zc-bench")), "--quick" in sys.argv)
    print(json.dumps(w.facts, indent=1))
