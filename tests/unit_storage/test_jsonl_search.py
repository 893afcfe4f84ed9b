"""ZeroClaw's session search, and the browser's message search over JSONL files."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage import jsonl as jsonl_module
from storage.errors import StorageError
from storage.jsonl import JsonlBackend, _candidates
from storage.lineindex import lines_of
from storage.models import ChatMessage, SessionMetadata
from storage.query import parse_query
from storage.zcformat import LineProblem, parse_line
from tests.unit_storage.conftest import JsonlKit


def keys(found: list[SessionMetadata]) -> list[str]:
    return [m.key for m in found]


def test_session_search_ors_words_like_zeroclaw(jsonl: JsonlBackend) -> None:
    assert keys(jsonl.search("gardening nothing")) == ["telegram_100200300"]
    assert keys(jsonl.search("TAX")) == ["gw_a1b2c3"]
    assert keys(jsonl.search("gardening tax")) == ["gw_a1b2c3", "telegram_100200300"]
    assert keys(jsonl.search("gardening tax", limit=1)) == ["gw_a1b2c3"]
    assert jsonl.search('"gardening"') == []  # a quote is a syntax error in ZeroClaw
    assert jsonl.search("   ") == []


def test_session_search_matches_key_words(jsonl: JsonlBackend) -> None:
    assert keys(jsonl.search("erin")) == ["discord_guild42_ch7_erin"]


def test_session_search_skips_unreadable_lines(jsonl: JsonlBackend) -> None:
    assert keys(jsonl.search("corrupt")) == ["telegram_100200300"]  # "after the corrupt line"
    assert keys(jsonl.search("json")) == []  # only "{not json at all" says it, and is skipped


def touch(path: Path, when: int) -> None:
    os.utime(path, (when, when))


def test_message_search_is_newest_first(jsonl: JsonlBackend, sessions: Path) -> None:
    touch(sessions / "telegram_100200300.jsonl", 3000)
    touch(sessions / "gw_a1b2c3.jsonl", 2000)
    touch(sessions / "discord_guild42_ch7_erin.jsonl", 1000)
    hits = list(jsonl.search_messages("question"))
    assert [h.key for h in hits[:5]] == ["telegram_100200300"] * 4 + ["gw_a1b2c3"]
    assert [h.index for h in hits[:4]] == [7, 5, 3, 1]
    assert all(h.backend == "jsonl" and h.role == "user" for h in hits)


def test_message_search_words_phrases_prefixes(jsonl: JsonlBackend) -> None:
    words = list(jsonl.search_messages("2 question", key="gw_a1b2c3"))
    assert [h.index for h in words] == [3]  # words are tokens: "2" is not "20"
    prefix = list(jsonl.search_messages("question 2*", key="gw_a1b2c3"))
    assert [h.index for h in prefix] == [29, 27, 25, 23, 21, 3]
    phrase = list(jsonl.search_messages('"forms question 28"', key="gw_a1b2c3"))
    assert [h.index for h in phrase] == [29]
    assert list(jsonl.search_messages('"question forms"', key="gw_a1b2c3")) == []


def test_snippet_spans_point_at_the_match(jsonl: JsonlBackend) -> None:
    [hit] = jsonl.search_messages("corrupt", key="telegram_100200300")
    assert hit.index == 9 and hit.snippet == "after the corrupt line"
    assert [hit.snippet[a:b] for a, b in hit.spans] == ["corrupt"]


def test_long_message_snippet_is_short(jsonl: JsonlBackend, kit: JsonlKit) -> None:
    kit.write("long", kit.line("a " * 500 + "needle" + " b" * 500))
    [hit] = jsonl.search_messages("needle", key="long")
    assert len(hit.snippet) <= 102
    assert [hit.snippet[a:b] for a, b in hit.spans] == ["needle"]


def test_limit_and_cancel_stop_the_search(jsonl: JsonlBackend) -> None:
    assert len(list(jsonl.search_messages("question", limit=3))) == 3
    cancel = threading.Event()
    found = []
    for hit in jsonl.search_messages("question", cancel=cancel):
        found.append(hit)
        cancel.set()
    assert len(found) == 1


def test_any_text_is_a_safe_query(jsonl: JsonlBackend) -> None:
    for query in ['"', "*", "NOT (", "a\x00b", "\\u0041", "🙂", ""]:
        assert isinstance(list(jsonl.search_messages(query)), list)
        assert isinstance(jsonl.search(query), list)


def test_indexes_are_absolute_in_a_big_unindexed_file(jsonl: JsonlBackend, kit: JsonlKit) -> None:
    pad = "x" * 60
    body = b"{bad\n" + b"".join(kit.line(f"m{i} {pad}") for i in range(70_000))
    kit.write("big", body + kit.line("the needle"))
    [hit] = jsonl.search_messages("needle", key="big")
    assert hit.index == 70_000


def test_blocks_without_the_words_are_not_parsed(
    jsonl: JsonlBackend, kit: JsonlKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    kit.write("plain", kit.lines(20_000) + kit.line("zebra"))
    calls: list[bytes] = []

    def counting(raw: bytes) -> ChatMessage | LineProblem:
        calls.append(raw)
        return parse_line(raw)

    monkeypatch.setattr(jsonl_module, "parse_line", counting)
    assert [h.index for h in jsonl.search_messages("zebra", key="plain")] == [20_000]
    assert len(calls) < 50


def test_unterminated_valid_last_line_is_searched(jsonl: JsonlBackend, kit: JsonlKit) -> None:
    kit.write("open", kit.lines(2) + kit.line("pending words").rstrip(b"\n"))
    assert [h.index for h in jsonl.search_messages("pending", key="open")] == [2]
    jsonl.append("open", ChatMessage(role="user", content="glued now"))
    assert list(jsonl.search_messages("pending", key="open")) == []  # ZeroClaw lost both


_words = st.sampled_from(
    ["zebra", "Zebra", "ZEBRA", "zébra", "ze", "bra", "x", " ", "\\u0041", "é"]
)
_block_lines = st.lists(st.lists(_words, max_size=6).map("".join), max_size=12)


@settings(max_examples=300, deadline=None)
@given(_block_lines, st.sampled_from(["zebra", "ze* bra", '"zebra x"', "zébra", "é", "qq"]))
def test_block_candidates_agree_with_the_line_prefilter(lines: list[str], query: str) -> None:
    pre = parse_query(query).prefilter
    block = "\n".join(lines).encode()
    expected = {off for off, raw, _ in lines_of(block) if pre.might_match(raw)}
    assert _candidates(block, pre) == expected


def test_an_unreadable_session_is_skipped_in_a_search_of_all(
    jsonl: JsonlBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open

    def deny(path: str, flags: int, *args: int) -> int:
        if str(path).endswith("telegram_100200300.jsonl"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", deny)
    assert {h.key for h in jsonl.search_messages("question")} == {
        "gw_a1b2c3",
        "discord_guild42_ch7_erin",
    }
    with pytest.raises(StorageError, match="Permission denied"):
        list(jsonl.search_messages("question", key="telegram_100200300"))
