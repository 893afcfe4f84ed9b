"""ZeroClaw's session search, and the browser's message search over JSONL files."""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from storage import jsonl as jsonl_module
from storage.errors import StorageError
from storage.jsonl import JsonlBackend, _candidates
from storage.lineindex import LineIndex, lines_of
from storage.models import ChatMessage, SessionMetadata
from storage.query import Prefilter, make_snippet, parse_query
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


_WORDS = ["zebra", "Zebra", "ZEBRA", "zébra", "ze", "bra", "x", " ", "\\u0041", "é", "É"]
_WORDS += ["e\u0301", "\u0301", "ZE\u0301BRA", "Ω", "ω", "日本", "🚀", "ñ", "ü", "ß"]
_words = st.sampled_from(_WORDS)
_block_lines = st.lists(st.lists(_words, max_size=6).map("".join), max_size=12)
_QUERIES = ["zebra", "ze* bra", '"zebra x"', "zébra", "é", "qq", "ω", "日本", "zebra ñ", "ebra"]


@settings(max_examples=500, deadline=None)
@given(_block_lines, st.sampled_from(_QUERIES))
def test_block_candidates_agree_with_the_line_prefilter(lines: list[str], query: str) -> None:
    pre = parse_query(query).prefilter
    block = "\n".join(lines).encode()
    expected = {off for off, raw, _ in lines_of(block) if pre.might_match(raw)}
    assert _candidates(block, pre) == expected


# Bytes that are no UTF-8 on their own: a lead byte, a continuation byte, a mark's halves.
_RAW = [
    w.encode() for w in ["zebra", "ZEBRA", "zébra", "ze", "bra", " ", "é", "\u0301", "日本", "Ω"]
]
_RAW += [b"\xc3", b"\xa9", b"\xcc", b"\x81", b"\xce", b"\xff", b"\\u0041"]
_raw_words = st.sampled_from(_RAW)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.lists(_raw_words, max_size=6).map(b"".join), max_size=12), st.sampled_from(_QUERIES)
)
# Dropping the mark in the first line joins its neighbours into an Ω, which is no Ω to fold.
@example([b"\xce\xcc\x81\xa9", "Ω".encode()], "ω")
def test_block_candidates_agree_on_broken_utf8(lines: list[bytes], query: str) -> None:
    pre = parse_query(query).prefilter
    block = b"\n".join(lines)
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


# --- the search, line by line --------------------------------------------------------------

_PIECES = ["zebra", "Zébra", "ZE\u0301BRA", "cafe", "CAFÉ", "日本", "🚀", "Ω", "ω", " ", "x"]
_PIECES += ["\n", '"', "\\"]
_content = st.lists(st.sampled_from(_PIECES), max_size=8).map("".join)
_BROKEN = [b"{bad", b"", b"\xc3(zebra", b'{"role":"user","content":"zebra \xff"}']
_BROKEN += [b'{"role":"user","content":"zebra cafe"}\r', b'{"role":"user","content":"\\ud800"}']
_session_lines = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["user", "assistant"]), _content).map(
            lambda rc: JsonlKit.line(rc[1], rc[0])
        ),
        _content.map(lambda c: json.dumps({"role": "tool", "content": c}).encode() + b"\n"),
        st.sampled_from(_BROKEN).map(lambda raw: raw + b"\n"),
    ),
    max_size=40,
)
_SEARCHES = ["zebra", "cafe", "café", "日本", "ω", "ze*", '"zebra cafe"', "x zebra", "ebra", "x"]


def _reference(data: bytes, query: str) -> list[tuple[int, str, str, tuple[tuple[int, int], ...]]]:
    """What a search of one session finds: every line parsed, newest message first."""
    q = parse_query(query)
    messages = [
        got for _, raw, _ in lines_of(data) if isinstance(got := parse_line(raw), ChatMessage)
    ]
    found = []
    for index in reversed(range(len(messages))):
        msg = messages[index]
        spans = q.match(msg.content)
        if spans is not None:
            found.append((index, msg.role, *make_snippet(msg.content, spans)))
    return found


@settings(max_examples=250, deadline=None)
@given(
    _session_lines,
    st.booleans(),
    st.sampled_from(_SEARCHES),
    st.sampled_from([16, 100, 1 << 20]),
)
def test_search_finds_what_parsing_every_line_finds(
    lines: list[bytes], torn: bool, query: str, block: int
) -> None:
    data = b"".join(lines)
    if torn and data.endswith(b"\n"):
        data = data[:-1]  # an unterminated last line is searched too
    with (
        tempfile.TemporaryDirectory() as tmp,
        mock.patch.object(jsonl_module, "SEARCH_BLOCK", block),
    ):
        (Path(tmp) / "s.jsonl").write_bytes(data)
        backend = JsonlBackend(Path(tmp))
        got = [
            (h.index, h.role, h.snippet, h.spans)
            for h in backend.search_messages(query, key="s", limit=10_000)
        ]
        assert got == _reference(data, query)


def _counting_parses(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    calls: list[bytes] = []

    def counting(raw: bytes) -> ChatMessage | LineProblem:
        calls.append(raw)
        return parse_line(raw)

    monkeypatch.setattr(jsonl_module, "parse_line", counting)
    return calls


def test_non_ascii_lines_are_judged_without_parsing(
    jsonl: JsonlBackend, kit: JsonlKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    # CJK, emoji and arrows cannot fold to letters; é folds to the "e" of zebra, ñ and ï to
    # letters it lacks: none of these lines can hold the word.
    texts = ["日本語のテキスト 🚀", "→ ✅ Ω", "café données", "señor naïve", "zébr a", "ze bra"]
    body = b"".join(kit.line(f"{texts[i % len(texts)]} {i}") for i in range(20_000))
    kit.write("mixed", body + kit.line("the Zébra") + kit.line("日本 zebra"))
    calls = _counting_parses(monkeypatch)
    assert [h.index for h in jsonl.search_messages("zebra", key="mixed")] == [20_001, 20_000]
    assert len(calls) < 50


def test_lines_where_the_word_starts_no_token_are_not_parsed(
    jsonl: JsonlBackend, kit: JsonlKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = b"".join(kit.line(f"there were seven {i} of thé énés") for i in range(20_000))
    kit.write("short", body + kit.line("point e\nof it") + kit.line("the É"))
    calls = _counting_parses(monkeypatch)
    assert [h.index for h in jsonl.search_messages("e", key="short")] == [20_001, 20_000]
    assert len(calls) < 50


def test_accents_and_marks_fold_as_unicode61_does(jsonl: JsonlBackend, kit: JsonlKit) -> None:
    texts = ["Café crème", "cafe", "CAFÉ!", "cafe\u0301 noir", "cafés", "caf", "日本 café 🚀"]
    kit.write("acc", b"".join(kit.line(t) for t in texts))
    for query in ("cafe", "café", "CAFE\u0301"):
        hits = list(jsonl.search_messages(query, key="acc"))
        assert [h.index for h in hits] == [6, 3, 2, 1, 0], query
        assert [h.snippet[a:b] for h in hits for a, b in h.spans] == [
            "café",
            "cafe\u0301",
            "CAFÉ",
            "cafe",
            "Café",
        ]
    assert [h.index for h in jsonl.search_messages("cafe*", key="acc")] == [6, 4, 3, 2, 1, 0]


@pytest.mark.parametrize("block", [4096, 1 << 20])
def test_a_word_across_a_block_boundary_is_found(
    jsonl: JsonlBackend, kit: JsonlKit, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    monkeypatch.setattr(jsonl_module, "SEARCH_BLOCK", block)
    # The last line is as long as the first block read backwards, but for the word before it.
    tail = kit.line("après " + "y" * (block - 6 - len(kit.line("après "))))
    line = kit.line("é " + "x" * 100 + " ZÉBRA")
    long = kit.line("ü " * block + "zébra " + "日本" * block)  # several blocks long
    data = kit.lines(5) + long + line + tail
    kit.write("wide", data)
    word_end = len(data) - len(tail) - len(b'"}\n')
    word_start = word_end - len("ZÉBRA".encode())
    assert word_start < len(data) - block < word_end
    hits = list(jsonl.search_messages("zebra", key="wide"))
    assert [h.index for h in hits] == [6, 5]
    assert [h.snippet[a:b] for h in hits for a, b in h.spans] == ["ZÉBRA", "zébra"]


# --- cancelling ----------------------------------------------------------------------------


def test_cancel_stops_between_sessions(
    jsonl: JsonlBackend, kit: JsonlKit, sessions: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(6):
        touch(kit.write(f"s{i}", kit.lines(3)), 4_000_000_000 - i)  # s0 newest of all
    cancel = threading.Event()
    opened: list[str] = []
    real_open = os.open

    def watch(path: str, flags: int, *args: int) -> int:
        if str(path).endswith(".jsonl"):
            opened.append(Path(path).stem)
            if len(opened) == 2:
                cancel.set()
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", watch)
    assert list(jsonl.search_messages("absent", cancel=cancel)) == []
    assert opened == ["s0", "s1"]


def test_cancel_stops_within_a_session(
    jsonl: JsonlBackend, kit: JsonlKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jsonl_module, "SEARCH_BLOCK", 4096)
    kit.write("long", kit.lines(5_000))
    cancel = threading.Event()
    blocks: list[bytes] = []

    def counting(block: bytes, pre: Prefilter) -> set[int]:
        blocks.append(block)
        if len(blocks) == 3:
            cancel.set()
        return _candidates(block, pre)

    monkeypatch.setattr(jsonl_module, "_candidates", counting)
    assert list(jsonl.search_messages("absent", key="long", cancel=cancel)) == []
    assert len(blocks) == 3


def test_cancel_stops_numbering_a_hit(
    jsonl: JsonlBackend, kit: JsonlKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jsonl_module, "SEARCH_BLOCK", 4096)
    kit.write("big", kit.lines(30_000) + kit.line("needle"))
    size = kit.path("big").stat().st_size
    cancel = threading.Event()
    real_extend = LineIndex.extend

    def extend(idx: LineIndex, *args: object, **kw: object) -> bool:
        done = real_extend(idx, *args, **kw)  # type: ignore[arg-type]
        cancel.set()
        return done

    monkeypatch.setattr(LineIndex, "extend", extend)
    assert list(jsonl.search_messages("needle", key="big", cancel=cancel)) == []
    assert jsonl._indexes["big"].end < size // 10  # stopped a block or so in


def test_a_hit_is_numbered_without_indexing_the_rest(jsonl: JsonlBackend, kit: JsonlKit) -> None:
    kit.write("big", kit.lines(10) + kit.line("the needle") + kit.lines(70_000, start=10))
    size = kit.path("big").stat().st_size
    assert [h.index for h in jsonl.search_messages("needle", key="big")] == [10]
    assert jsonl._indexes["big"].end < size // 2


def test_a_file_that_became_a_symlink_is_followed_as_before(
    jsonl: JsonlBackend, kit: JsonlKit, sessions: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kit.write("target", kit.line("the needle"))
    (sessions / "alias.jsonl").symlink_to(sessions / "target.jsonl")
    assert sorted(h.key for h in jsonl.search_messages("needle")) == ["alias", "target"]
    # Listed as a plain file, a symlink by the time it is opened.
    monkeypatch.setattr(JsonlBackend, "_by_mtime", lambda self, cancel: [("alias", True)])
    assert [h.key for h in jsonl.search_messages("needle")] == ["alias"]


def test_cancel_stops_listing_the_sessions(
    jsonl: JsonlBackend, kit: JsonlKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(1_100):
        kit.write(f"many{i}", kit.line("needle"))
    cancel = threading.Event()
    listed: list[str] = []
    real = JsonlBackend._entry_stat

    def entry_stat(self: JsonlBackend, entry: os.DirEntry[str]) -> os.stat_result | None:
        listed.append(entry.name)
        if len(listed) == 600:
            cancel.set()
        return real(self, entry)

    monkeypatch.setattr(JsonlBackend, "_entry_stat", entry_stat)
    assert list(jsonl.search_messages("needle", cancel=cancel)) == []
    assert len(listed) < 1_024
