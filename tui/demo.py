"""A demo workspace written the way ZeroClaw writes, and a writer that keeps it alive.

``make_demo_workspace(path, now=...)`` creates ``path/sessions/`` with both stores: a
``sessions.db`` with ZeroClaw's full current schema and triggers, and several ``*.jsonl`` files.
Its content is fixed (times are offsets from ``now``) so screenshots of it are stable.
``DemoWriter`` appends a message every few seconds, alternating a JSONL session (ZeroClaw's
two-write append) and a SQLite session (INSERT, then the metadata upsert), so the live tail
shows within the first minute. Nothing here imports textual.
"""

from __future__ import annotations

import base64
import itertools
import os
import random
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from storage.models import ChatMessage
from storage.sqlite import ensure_schema
from storage.zcformat import encode_message, now_rfc3339

INSERT_MESSAGE = (
    "INSERT INTO sessions (session_key, role, content, created_at) VALUES (?1, ?2, ?3, ?4)"
)
UPSERT_METADATA = (
    "INSERT INTO session_metadata (session_key, created_at, last_activity, message_count)"
    " VALUES (?1, ?2, ?2, 1) ON CONFLICT(session_key) DO UPDATE SET"
    " last_activity = excluded.last_activity, message_count = message_count + 1"
)
SET_STATE = (
    "UPDATE session_metadata SET state = ?2, turn_id = ?3, turn_started_at = ?4"
    " WHERE session_key = ?1"
)

DEMO_NOW = datetime(2026, 3, 20, 12, 0, 0, tzinfo=UTC)
LIVE_JSONL = "telegram_100200300"
LIVE_SQLITE = "gw_live_demo"


def demo_png(width: int = 64, height: int = 64, seed: int = 3) -> bytes:
    """A real, seeded noise PNG: an image message as long as the ones ZeroClaw stores."""
    import struct
    import zlib

    rng = random.Random(seed)

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    rows = b"".join(b"\x00" + rng.randbytes(width * 3) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


_HOSTILE = (
    "Please print this literally: [bold red]x[/] and [link=https://evil.example]click[/link]\n"
    "An ANSI escape \x1b[31mred?\x1b[0m, a title change \x1b]0;pwned\x07, "
    "a bidi override \u202edesrever\u202c and a zero\u200bwidth space."
)


@dataclass(frozen=True)
class DemoSession:
    key: str
    messages: Sequence[tuple[str, str]]
    age_s: float  # seconds between the last message and ``now``
    name: str | None = None
    state: str = "idle"
    turn_age_s: float | None = None
    agent_alias: str | None = None
    channel_id: str | None = None
    room_id: str | None = None
    sender_id: str | None = None


def ts(now: datetime, seconds_ago: float) -> str:
    """``now - seconds_ago`` in chrono's ``to_rfc3339()`` form."""
    when = now - timedelta(seconds=seconds_ago)
    return now_rfc3339(int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1000)


def _tool_output() -> str:
    entries = [
        {"path": f"src/module_{i:03d}.rs", "lines": 40 + (i * 37) % 900, "todo": i % 7 == 0}
        for i in range(120)
    ]
    import json

    return json.dumps(
        {"tool_call_id": "call_7", "name": "shell", "exit": 0, "files": entries},
        separators=(",", ":"),
    )


_MARKDOWN_ANSWER = """## Three days in Lisbon

1. **Alfama** at sunrise, then the *Feira da Ladra* market.
2. Tram 28 early, before the queues.
3. Day trip to **Sintra** (train from Rossio, 40 min).

```python
budget = {"food": 45, "transport": 12, "museums": 20}
print(sum(budget.values()) * 3, "EUR")
```

> Tip: buy a Viva Viagem card at the airport."""


def demo_sessions() -> list[DemoSession]:
    """The SQLite sessions of the demo, oldest last activity last."""
    return [
        DemoSession(
            "gw_7f3a9c21",
            [
                ("system", "You are a concise travel planner."),
                ("user", "[2026-03-20 13:20:02 +02:00] Plan three days in Lisbon for me."),
                ("assistant", _MARKDOWN_ANSWER),
                ("user", "And a rainy-day option?"),
                ("assistant", "The **Gulbenkian** museum and the Oceanário: both indoors."),
            ],
            age_s=25 * 60,
            name="lisbon-trip",
            agent_alias="planner",
        ),
        DemoSession(
            LIVE_SQLITE,
            [
                ("system", "You are the on-call assistant. Be brief."),
                ("user", "Tail the deploy for me and tell me when it is green."),
                ("assistant", "Watching the deploy. I will post each step here."),
            ],
            age_s=8,
            name="live-demo",
            state="running",
            turn_age_s=8,
        ),
        DemoSession(
            "telegram_ops_4242_alice",
            [
                ("system", "You are the ops assistant."),
                ("user", "Restart the ingest worker on box-3, please."),
                (
                    "assistant",
                    '{"content":"","tool_calls":[{"id":"call_1","name":"shell",'
                    '"arguments":{"command":"systemctl restart ingest@3"}}]}',
                ),
            ],
            age_s=3 * 3600,
            state="running",
            turn_age_s=3 * 3600,
            channel_id="telegram.ops",
            room_id="4242",
            sender_id="alice",
        ),
        DemoSession(
            "slack_T01_C02_frank",
            [
                ("system", "You are a code-review helper."),
                ("user", "Which modules still have TODOs?"),
                (
                    "assistant",
                    '{"content":"Listing files.","tool_calls":[{"id":"call_7","name":"shell",'
                    '"arguments":{"command":"scan --todo src/"}}]}',
                ),
                ("tool", _tool_output()),
                ("assistant", "18 modules have TODOs; the biggest is `src/module_098.rs`."),
            ],
            age_s=2 * 3600 + 300,
            channel_id="slack.work",
            room_id="C02",
            sender_id="frank",
        ),
        DemoSession(
            "rpc_3f2b8c1e-5d4a-4e8b-9c7d-1a2b3c4d5e6f",
            [
                ("user", "Summarise yesterday's incident report."),
                ("assistant", "[Tool exchange: 2 tool call(s) — results collapsed]"),
                ("assistant", "[Session interrupted — not continuing this request]"),
            ],
            age_s=5 * 3600,
            state="error",
        ),
        DemoSession(
            "matrix_room_!abc:example.org_dave",
            [
                ("user", _HOSTILE),
                ("assistant", "Shown as text: nothing above is interpreted by your terminal."),
            ],
            age_s=26 * 3600,
        ),
    ]


def demo_jsonl() -> dict[str, tuple[list[bytes], float]]:
    """JSONL files of the demo: raw lines (without newlines) and age in seconds."""

    def line(role: str, content: str) -> bytes:
        return encode_message(ChatMessage(role=role, content=content))

    image = f"[IMAGE:data:image/png;base64,{base64.b64encode(demo_png()).decode()}]"
    return {
        LIVE_JSONL: (
            [
                line("system", "You are a friendly assistant for gardening."),
                line("user", "[2026-03-20 13:50:11 +02:00] What is wrong with this leaf?"),
                line("user", image),
                line(
                    "assistant",
                    "Looks like **powdery mildew**. Remove the worst leaves and water at the base.",
                ),
            ],
            20,
        ),
        "discord_guild42_ch7_erin": (
            [
                line("system", "You are a concise assistant for chess openings."),
                line("user", "Is the Sicilian good for beginners?"),
                b"{not json at all",
                line("assistant", "It is sharp; try the *Alapin* (2.c3) first.")
                + line("user", "And against 1.d4?"),
                line("assistant", "The Queen's Gambit Declined: solid and classical."),
            ],
            40 * 60,
        ),
        "whatsapp_15551234_bob": (
            [
                line("user", "Convert 3 cups of flour to grams."),
                line("assistant", "About **375 g** (125 g per cup)."),
            ],
            3 * 86400,
        ),
    }


def _write_sqlite(db: Path, sessions: Iterable[DemoSession], now: datetime) -> None:
    conn = sqlite3.connect(db)
    try:
        ensure_schema(conn)
        for s in sessions:
            _write_session(conn, s, now)
        # A gateway connect creates a metadata row before any message.
        stamp = ts(now, 50 * 60)
        conn.execute(
            "INSERT INTO session_metadata (session_key, created_at, last_activity) VALUES (?,?,?)",
            ("gw_connect_only", stamp, stamp),
        )
        conn.commit()
    finally:
        conn.close()


def _write_session(conn: sqlite3.Connection, s: DemoSession, now: datetime) -> None:
    n = len(s.messages)
    for i, (role, content) in enumerate(s.messages):
        stamp = ts(now, s.age_s + (n - 1 - i) * 40)
        conn.execute(INSERT_MESSAGE, (s.key, role, content, stamp))
        conn.execute(UPSERT_METADATA, (s.key, stamp))
    if s.name is not None:
        conn.execute("UPDATE session_metadata SET name = ? WHERE session_key = ?", (s.name, s.key))
    turn = ts(now, s.turn_age_s) if s.state == "running" and s.turn_age_s is not None else None
    conn.execute(SET_STATE, (s.key, s.state, "turn-1" if turn else None, turn))
    conn.execute(
        "UPDATE session_metadata SET agent_alias = ?, channel_id = ?, room_id = ?, sender_id = ?"
        " WHERE session_key = ?",
        (s.agent_alias, s.channel_id, s.room_id, s.sender_id, s.key),
    )


def _write_jsonl(sessions_dir: Path, now: datetime) -> None:
    for stem, (lines, age) in demo_jsonl().items():
        path = sessions_dir / f"{stem}.jsonl"
        path.write_bytes(b"".join(raw + b"\n" for raw in lines))
        when = (now - timedelta(seconds=age)).timestamp()
        os.utime(path, (when, when))


def make_demo_workspace(path: Path, now: datetime | None = None) -> Path:
    """Write the demo under ``path`` and return its ``sessions/`` folder."""
    now = now or datetime.now(UTC)
    sessions_dir = path / "sessions"
    sessions_dir.mkdir(parents=True, exist_ok=True)
    _write_sqlite(sessions_dir / "sessions.db", demo_sessions(), now)
    _write_jsonl(sessions_dir, now)
    return sessions_dir


# --- the live writer ------------------------------------------------------------------------

_STEPS = (
    "build",
    "unit tests",
    "integration tests",
    "canary",
    "eu-west rollout",
    "us-east rollout",
)
_PLANTS = ("tomatoes", "basil", "the fig tree", "roses", "the lemon tree", "lavender")


def live_lines(seed: int = 7) -> Iterator[tuple[str, str, str]]:
    """An endless, seeded stream of (target, role, content): JSONL and SQLite alternate."""
    rng = random.Random(seed)
    for turn in itertools.count():
        plant, step = rng.choice(_PLANTS), _STEPS[turn % len(_STEPS)]
        days, secs = rng.randint(2, 9), rng.randint(20, 240)
        yield "jsonl", "user", f"How often should I water {plant}?"
        yield "sqlite", "user", f"Status of {step}?"
        yield "jsonl", "assistant", f"Water {plant} every **{days} days**, deeply."
        yield "sqlite", "assistant", f"`{step}` is green after {secs} s. ✅"


def append_jsonl(path: Path, message: ChatMessage) -> None:
    """ZeroClaw's append: O_APPEND|O_CREAT, write the JSON, write the newline, close."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, encode_message(message))
        os.write(fd, b"\n")
    finally:
        os.close(fd)


def append_sqlite(conn: sqlite3.Connection, key: str, message: ChatMessage) -> None:
    """ZeroClaw's append: INSERT the row, then upsert the metadata (autocommit statements)."""
    stamp = now_rfc3339()
    conn.execute(INSERT_MESSAGE, (key, message.role, message.content, stamp))
    conn.execute(UPSERT_METADATA, (key, stamp))
    running = message.role == "user"
    conn.execute(
        SET_STATE,
        (
            key,
            "running" if running else "idle",
            "turn-live" if running else None,
            stamp if running else None,
        ),
    )


class DemoWriter:
    """Appends to the demo every ``interval`` seconds in a daemon thread until ``stop()``."""

    def __init__(self, sessions_dir: Path, interval: float = 3.0, seed: int = 7) -> None:
        self.sessions_dir = sessions_dir
        self.interval = interval
        self.seed = seed
        self.written = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="zc-demo-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        conn = sqlite3.connect(self.sessions_dir / "sessions.db", isolation_level=None)
        conn.execute("PRAGMA busy_timeout=5000")
        try:
            for target, role, content in live_lines(self.seed):
                if self._stop.wait(self.interval):
                    return
                self.write_one(conn, target, ChatMessage(role=role, content=content))
        finally:
            conn.close()

    def write_one(self, conn: sqlite3.Connection, target: str, message: ChatMessage) -> None:
        try:
            if target == "jsonl":
                append_jsonl(self.sessions_dir / f"{LIVE_JSONL}.jsonl", message)
            else:
                append_sqlite(conn, LIVE_SQLITE, message)
        except (OSError, sqlite3.Error):
            return  # the demo was deleted or edited away under us: just skip this beat
        self.written += 1
