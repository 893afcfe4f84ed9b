"""The search language: parsing, FTS5 quoting, the pure matcher, snippets, prefilter."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage import _fts_table
from storage.query import (
    _FOLD_TABLE,
    _TOKEN,
    Prefilter,
    fold,
    make_snippet,
    parse_query,
    to_fts5,
    tokenize,
    zeroclaw_fts5,
)

VOCAB = ["alpha", "alps", "beta", "bet", "café", "cafe", "Ünïcode", "日本", "x1", "gamma"]
SEPARATORS = [" ", "  ", ", ", "-", "\n", ". ", "'", "_", "/", ":"]


@pytest.fixture(scope="module")
def fts() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE f USING fts5(session_key, content)")
    conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab(f, 'instance')")
    yield conn
    conn.close()


def fts_matches(conn: sqlite3.Connection, docs: list[str], match: str) -> set[int]:
    conn.execute("DELETE FROM f")
    # The key column holds every vocabulary word: to_fts5 must ignore it.
    key = " ".join(VOCAB)
    conn.executemany(
        "INSERT INTO f(rowid, session_key, content) VALUES (?, ?, ?)",
        [(i, key, d) for i, d in enumerate(docs)],
    )
    return {r for (r,) in conn.execute("SELECT rowid FROM f WHERE f MATCH ?", (match,))}


# --- parsing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hello world", (("hello",), False, ("world",), False)),
        ('"hello wor', (("hello", "wor"), False)),
        ('"a b"*', (("a", "b"), True)),
        ("wor*", (("wor",), True)),
        ("foo.*", (("foo",), False)),
        ("Café-Bar", (("cafe", "bar"), False)),
        ("NOT ( - : ^ * )", (("not",), False)),
    ],
)
def test_parse_examples(text: str, expected: tuple[object, ...]) -> None:
    flat: list[object] = []
    for term in parse_query(text).terms:
        flat += [term.words, term.prefix]
    assert tuple(flat) == expected


@pytest.mark.parametrize("text", ["", "   ", '"', '""', "* - ( ) ^ :", '"*"'])
def test_query_without_tokens_is_empty_and_matches_nothing(
    fts: sqlite3.Connection, text: str
) -> None:
    query = parse_query(text)
    assert query.is_empty
    assert query.match("anything at all") is None
    assert not query.prefilter.might_match(b'{"role":"user","content":"anything"}')
    assert fts_matches(fts, ["anything at all"], to_fts5(query)) == set()


@given(st.text())
@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_text_is_a_safe_fts5_query(fts: sqlite3.Connection, text: str) -> None:
    query = parse_query(text)
    fts.execute("SELECT count(*) FROM f WHERE f MATCH ?", (to_fts5(query),)).fetchone()
    assert query.match(text) is None or not query.is_empty


@given(st.text(st.characters(exclude_categories=["Cs"]), max_size=60))
@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_tokenizer_agrees_with_unicode61(fts: sqlite3.Connection, text: str) -> None:
    if sqlite3.sqlite_version != _fts_table.SQLITE_VERSION:
        pytest.skip("table probed from another SQLite version")
    fts.execute("DELETE FROM f")
    fts.execute("INSERT INTO f(rowid, session_key, content) VALUES (1, '', ?)", (text,))
    got = [t for (t,) in fts.execute("SELECT term FROM v WHERE col = 'content' ORDER BY offset")]
    assert [w for _, _, w in tokenize(text)] == got


# --- the matcher agrees with FTS5 -----------------------------------------------------------

words = st.sampled_from(VOCAB)
docs = st.lists(
    st.lists(st.tuples(words, st.sampled_from(SEPARATORS)), min_size=1, max_size=8).map(
        lambda pairs: "".join(w.upper() if len(w) == 4 else w + s for w, s in pairs)
    ),
    min_size=1,
    max_size=6,
)


@st.composite
def queries(draw: st.DrawFn) -> str:
    parts = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["word", "phrase", "prefix"]))
        if kind == "word":
            parts.append(draw(words))
        elif kind == "prefix":
            parts.append(draw(words)[: draw(st.integers(1, 3))] + "*")
        else:
            parts.append('"' + " ".join(draw(st.lists(words, min_size=2, max_size=3))) + '"')
    return " ".join(parts)


@given(docs, queries())
@settings(max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_matcher_agrees_with_fts5(fts: sqlite3.Connection, corpus: list[str], text: str) -> None:
    query = parse_query(text)
    expected = fts_matches(fts, corpus, to_fts5(query))
    mine = {i for i, d in enumerate(corpus) if query.match(d) is not None}
    assert mine == expected


@given(docs, queries())
@settings(max_examples=300)
def test_prefilter_never_drops_a_match(corpus: list[str], text: str) -> None:
    query = parse_query(text)
    for doc in corpus:
        if query.match(doc) is None:
            continue
        for ascii_only in (False, True):
            line = json.dumps({"role": "user", "content": doc}, ensure_ascii=ascii_only)
            assert query.prefilter.might_match(line.encode())


def test_prefilter_rejects_ascii_lines_without_the_words() -> None:
    pre = parse_query("alpha beta").prefilter
    assert pre.might_match(b'{"role":"user","content":"ALPHA and Beta"}')
    assert not pre.might_match(b'{"role":"user","content":"alpha only"}')
    assert not parse_query("日本").prefilter.might_match(b'{"role":"user","content":"x"}')


def _line(content: str) -> bytes:
    return json.dumps({"role": "user", "content": content}, ensure_ascii=False).encode()


def test_prefilter_judges_non_ascii_lines_by_their_folds() -> None:
    pre = parse_query("zebra").prefilter
    # No character here folds into a letter of "zebra" where it would make the word.
    for text in ["日本語 🚀 → naïve señor Ω", "zébr", "zeb ra", "café bra"]:
        assert not pre.might_match(_line(text)), text
    for text in ["ZÉBRA", "ze\u0301bra", "日本 Zébra!", "ZEBRA 🚀"]:
        assert pre.might_match(_line(text)), text
    assert pre.might_match(_line("zebra").replace(b"z", b"\\u007a"))  # escapes spell anything
    omega = parse_query("ωmega").prefilter
    assert omega.might_match(_line("ΩMEGA")) and not omega.might_match(_line("omega"))


def test_prefilter_needs_each_word_to_start_a_token() -> None:
    pre = parse_query("zebra").prefilter
    for text in ["azebra", "zebras", "2zebra", "zebra2", "ézebra"]:
        assert not pre.might_match(_line(text)), text
    for text in ["a-zebra", "\nzebra", "\\zebra", "ZEBRA!", "日本zebra", "zebra\t", "(zebra)"]:
        assert pre.might_match(_line(text)), text
    prefix = parse_query("zeb*").prefilter
    assert prefix.might_match(_line("zebras")) and not prefix.might_match(_line("azebras"))
    phrase = parse_query('"zebra x" y*').prefilter
    assert phrase.might_match(_line("zebra x yak")) and not phrase.might_match(_line("zebrax yak"))


# Pieces of content: letters that fold (with and without a combining mark, in both cases),
# marks alone, characters that fold to non-ASCII or not at all, and what JSON escapes.
FOLDING = ["zebra", "Zébra", "ZE\u0301BRA", "cafe", "CAFÉ", "x1", "Ωmega", "ω", "ü", "ß", "日本"]
FOLDING += ["🚀", "\u0301", "\u0332", " ", ", ", "\n", "\t", '"', "\\", "/"]


@given(st.lists(st.sampled_from(FOLDING), min_size=1, max_size=10).map("".join), st.data())
@settings(max_examples=400)
def test_prefilter_keeps_every_line_that_matches(content: str, data: st.DataObject) -> None:
    tokens = tokenize(content)
    if not tokens:
        return
    i = data.draw(st.integers(0, len(tokens) - 1))
    word = content[tokens[i][0] : tokens[i][1]]
    kind = data.draw(st.sampled_from(["word", "prefix", "phrase"]))
    if kind == "prefix":
        text = word[: data.draw(st.integers(1, len(word)))] + "*"
    elif kind == "phrase" and i + 1 < len(tokens):
        text = f'"{word} {content[tokens[i + 1][0] : tokens[i + 1][1]]}"'
    else:
        text = word
    query = parse_query(text)
    if query.match(content) is None:
        return
    for ascii_only in (False, True):
        line = json.dumps({"role": "user", "content": content}, ensure_ascii=ascii_only)
        assert query.prefilter.might_match(line.encode())


@given(st.text())
@settings(max_examples=300)
def test_fold_agrees_with_the_table(text: str) -> None:
    assert fold(text) == text.translate(_FOLD_TABLE)
    # match finds the words in the folded text: they must be the tokens, folded
    assert _TOKEN.findall(fold(text)) == [w for _, _, w in tokenize(text)]


def test_folding_keeps_token_characters_in_tokens() -> None:
    every = "".join(map(chr, range(0x110000)))
    separators = _TOKEN.sub("", every)
    assert fold(separators) == separators
    assert _TOKEN.sub("", fold("".join(_TOKEN.findall(every)))) == ""


ALL_FOLDS = "".join(sorted(set(_fts_table.FOLD.values())))


@pytest.mark.parametrize("words", [["zebra"], ["ωmega", "日本"], [ALL_FOLDS]])
def test_the_byte_pattern_finds_exactly_the_characters_to_fold(words: list[str]) -> None:
    every = "".join(chr(c) for c in range(0x80, 0x110000) if not 0xD800 <= c <= 0xDFFF)
    chars = set("".join(words))
    wanted = {cp: s or None for cp, s in _fts_table.FOLD.items() if not s or s in chars}
    assert Prefilter(words).fold(every.encode()) == every.translate(wanted).encode()


def test_match_spans_cover_every_occurrence() -> None:
    text = "Alpha beta, ALPHA! alphabet"
    spans = parse_query("alpha").match(text)
    assert spans == ((0, 5), (12, 17))
    assert parse_query("alp*").match(text) == ((0, 5), (12, 17), (19, 27))
    assert parse_query('"beta alpha"').match(text) == ((6, 17),)
    assert parse_query("alpha gamma").match(text) is None


# --- snippets ----------------------------------------------------------------------------------


@given(st.text(min_size=1, max_size=400), st.integers(10, 120))
def test_snippet_spans_point_into_the_snippet(text: str, width: int) -> None:
    words = [w for _, _, w in tokenize(text)]
    if not words:
        return
    spans = parse_query(words[-1]).match(text)
    assert spans is not None
    snippet, moved = make_snippet(text, spans, width)
    assert len(snippet) <= width + 2
    assert "\n" not in snippet
    assert moved
    for start, end in moved:
        assert 0 <= start < end <= len(snippet)


def test_snippet_centres_on_a_late_match() -> None:
    text = "x " * 500 + "needle" + " y" * 500
    spans = parse_query("needle").match(text)
    assert spans is not None
    snippet, moved = make_snippet(text, spans, 60)
    assert snippet.startswith("…") and snippet.endswith("…")
    assert [snippet[s:e] for s, e in moved] == ["needle"]


# --- ZeroClaw's own query ------------------------------------------------------------------------


def test_zeroclaw_query_examples() -> None:
    assert zeroclaw_fts5("travel release") == '"travel" OR "release"'
    assert zeroclaw_fts5('say "hi"') is None
    assert zeroclaw_fts5("  \u3000 ") is None


@given(st.text(st.characters(exclude_categories=["Cs"]).filter(lambda c: c != '"')))
@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_zeroclaw_query_never_errors_without_quotes(fts: sqlite3.Connection, text: str) -> None:
    match = zeroclaw_fts5(text)
    if match is not None:
        fts.execute("SELECT count(*) FROM f WHERE f MATCH ?", (match,)).fetchone()
