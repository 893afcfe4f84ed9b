"""A smoke test of the benchmark machinery on tiny workloads (not part of the default run:
pytest's addopts ignore tests/benchmarks). Run it with ``pytest tests/benchmarks -p no:cacheprovider
-o addopts=''``."""

from __future__ import annotations

import json
import random
from pathlib import Path

from storage.jsonl import JsonlBackend
from storage.models import ChatMessage
from storage.sqlite import SqliteBackend
from storage.zcformat import parse_line
from tests.benchmarks.content import RARE_JSONL, RARE_SQLITE, conversation, encode, vocabulary
from tests.benchmarks.results import Row, table
from tests.benchmarks.workloads import BIG_KEY, LAST_MARK, Sizes, build_jsonl, build_sqlite
from tests.benchmarks.zeroclaw import load, rollback_turn

TINY = Sizes(big_messages=2_000, small_sessions=20, sqlite_sessions=5, sqlite_per_session=100)


def test_lines_are_zeroclaw_bytes() -> None:
    vocab = vocabulary(random.Random(0), 200)
    for role, content in conversation(random.Random(1), vocab, 500, images=True):
        line = encode(role, content)
        assert line.endswith(b"\n")
        got = parse_line(line[:-1])
        assert isinstance(got, ChatMessage)
        assert (got.role, got.content) == (role, content)
        assert (
            json.dumps(
                {"role": role, "content": content}, ensure_ascii=False, separators=(",", ":")
            ).encode()
            + b"\n"
            == line
        )


def test_jsonl_workload_reads_back(tmp_path: Path) -> None:
    facts = build_jsonl(tmp_path, TINY)
    backend = JsonlBackend(tmp_path / "jsonl" / "sessions", read_only=True)
    assert backend.count_messages(BIG_KEY) == TINY.big_messages
    assert LAST_MARK in backend.read_tail(BIG_KEY, 1).messages[-1].content
    assert len(backend.list_sessions()) == facts["sessions"]
    hits = list(backend.search_messages(RARE_JSONL, limit=100))
    assert len(hits) == len(facts["big"]["rare_jsonl_at"]) + facts["rare_jsonl_small"]


def test_sqlite_workload_reads_back(tmp_path: Path) -> None:
    build_sqlite(tmp_path, "sqlite", TINY.sqlite_sessions, TINY.sqlite_per_session, 11)
    backend = SqliteBackend(tmp_path / "sqlite" / "sessions" / "sessions.db", read_only=True)
    metas = backend.list_sessions_with_metadata()
    assert len(metas) == TINY.sqlite_sessions
    assert all(backend.count_messages(m.key) == TINY.sqlite_per_session for m in metas)
    assert len(list(backend.search_messages(RARE_SQLITE))) == 3


def test_zeroclaw_emulation_drops_the_last_turn(tmp_path: Path) -> None:
    build_jsonl(tmp_path, TINY)
    big = tmp_path / "jsonl" / "sessions" / f"{BIG_KEY}.jsonl"
    out = tmp_path / "out"
    out.mkdir()
    assert rollback_turn(big, out) == 4
    assert len(load(out / big.name)) == TINY.big_messages - 4


def test_table_renders_missed_rows() -> None:
    row = Row(what="x", target="<= 1 ms", unit="s", ours=[0.5, 0.7], met=False, reason="slow")
    text = table([row])
    assert "**MISSED**: slow" in text and "600 ms" in text
