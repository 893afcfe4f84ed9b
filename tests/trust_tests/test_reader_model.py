"""Hostile JSONL files, property-based: every read path agrees with ZeroClaw's reader.

The reference is ``zeroclaw_model`` (written independently of ``storage.zcformat``). Files are
built from hostile pieces: random bytes, glued objects, CRLF, U+2028 inside strings, duplicate
keys, non-string fields, two-element arrays, huge numbers, deep nesting, lone surrogate escapes,
NaN, BOMs, Unicode whitespace, torn last lines. ``load``, ``count_messages``, ``read_range``,
``read_tail``, ``changes_since`` and ``skipped_lines`` must all say what the model says.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage.journal import Journal
from storage.jsonl import JsonlBackend
from storage.zcformat import parse_line
from tests.trust_tests import zeroclaw_model as model

SPECIAL = '\u2028\u2029\u0085\r\t\x00\x1b\\"/\u202e\u200b\ufeff😀é²\x7f'
text_st = st.text(
    alphabet=st.one_of(st.characters(codec="utf-8"), st.sampled_from(SPECIAL)),
    max_size=12,
)
key_st = st.one_of(st.sampled_from(["x", "tool_calls", "role ", "Role", "id", ""]), text_st)


def dumps(value: object, ascii_: bool) -> str:
    return json.dumps(value, ensure_ascii=ascii_)


# Raw JSON fragments json.dumps cannot produce.
RAW_VALUES = [
    "1e999",
    "-1E-999",
    "123456789012345678901234567890123456789012345678901234567890",
    "-0.0e+00",
    "NaN",
    "Infinity",
    "-Infinity",
    "01",
    "1.",
    ".5",
    "+1",
    '"\\ud800"',
    '"\\udc00x"',
    '"\\ud83d\\ude00"',
    '"\\x"',
    '"tab\there"',
    "[1,]",
    '{"a":1,}',
    '{"a":1,"a":2}',
    "[" * 130 + "]" * 130,
    "[" * 2000 + "]" * 2000,
    '{"k":' * 200 + "1" + "}" * 200,
    "[" * 127 + "]" * 126,
    "nul",
    "true",
    "null",
]
RAW_KEYS = ['"\\ud800"', '"\\udc00"', '"\\ud83d\\ude00"', '"r\\u006fle"', '"\\u0063ontent"']
WHITESPACE = [" ", "\t", "\r", "\x0b", "\x0c", "\x1c", "\xa0", "\u3000", "\u2028", "\x85", "\ufeff"]

json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), text_st),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(text_st, inner, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def value_text(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        return draw(st.sampled_from(RAW_VALUES))
    return dumps(draw(json_value), draw(st.booleans()))


@st.composite
def field_value(draw: st.DrawFn, name: str) -> str:
    """A role or content value: mostly a string, sometimes anything else."""
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(value_text())
    if kind == 1:
        return draw(st.sampled_from(['"\\ud800"', '"a\\udc00"', '"\\ud83d\\ude00"', '"\\u0000"']))
    return dumps(
        draw(text_st)
        if name == "content"
        else draw(st.sampled_from(["user", "assistant", "tool", ""])),
        draw(st.booleans()),
    )


@st.composite
def object_line(draw: st.DrawFn) -> str:
    members: list[str] = []
    for name in ("role", "content"):
        if draw(st.integers(0, 15)) != 0:  # sometimes missing
            members.append(f'"{name}":{draw(field_value(name))}')
        if draw(st.integers(0, 12)) == 0:  # sometimes twice
            members.append(f'"{name}":{draw(field_value(name))}')
    for _ in range(draw(st.integers(0, 2))):
        key = (
            draw(st.sampled_from(RAW_KEYS))
            if draw(st.integers(0, 4)) == 0
            else dumps(draw(key_st), draw(st.booleans()))
        )
        members.append(f"{key}:{draw(value_text())}")
    members = draw(st.permutations(members))
    sep = draw(st.sampled_from([",", ", ", " ,\t", ",\r\n"[:2]]))
    body = sep.join(members)
    pad = draw(st.sampled_from(["", " ", "\t"]))
    return "{" + pad + body + pad + "}"


@st.composite
def array_line(draw: st.DrawFn) -> str:
    n = draw(st.integers(0, 3))
    items = [draw(field_value("content")) for _ in range(n)]
    return "[" + ",".join(items) + "]"


@st.composite
def line_bytes(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 11))
    if kind <= 3:
        text = draw(object_line())
    elif kind == 4:
        text = draw(array_line())
    elif kind == 5:  # glued objects, as a torn append leaves them
        text = draw(object_line()) + draw(st.sampled_from(["", " ", "\t"])) + draw(object_line())
    elif kind == 6:  # blank and whitespace-only
        text = "".join(draw(st.lists(st.sampled_from(WHITESPACE), max_size=4)))
    elif kind == 7:
        return draw(st.binary(max_size=30))
    elif kind == 8:  # a valid line with bytes that are not UTF-8 inside the content
        good = json.dumps({"role": "user", "content": "ab"}).encode()
        bad = draw(
            st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80"])
        )
        return good.replace(b"ab", b"a" + bad + b"b")
    elif kind == 9:  # whitespace and junk around an object
        lead = "".join(draw(st.lists(st.sampled_from(WHITESPACE), max_size=2)))
        tail = draw(st.sampled_from(["", "x", ",", " }", "\x00", "\x1c", " \u3000", "{", "]"]))
        text = lead + draw(object_line()) + tail
    elif kind == 10:  # ZeroClaw's own layout
        content = draw(text_st)
        text = json.dumps(
            {"role": "assistant", "content": content}, ensure_ascii=False, separators=(",", ":")
        )
    else:
        text = draw(st.sampled_from(["NaN", "null", "1", '"s"', "[]", "{}", "{", '{"role":"u"']))
    return text.encode("utf-8", "surrogatepass")


@st.composite
def session_file(draw: st.DrawFn) -> bytes:
    torn: bool = draw(st.booleans())
    lines: list[bytes] = draw(st.lists(line_bytes(), max_size=12))
    out = b""
    for line in lines:
        out += line + draw(st.sampled_from([b"\n", b"\n", b"\r\n"]))
    if lines and torn:
        out = out[: -1 if out.endswith(b"\n") else len(out)]
        if out.endswith(b"\r"):
            out = out[:-1]
    return out


def contents(messages: list) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return [(m.role, m.content) for m in messages]


def check_file(data: bytes, split: int, start: int, stop: int, tail: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sessions = Path(tmp) / "sessions"
        sessions.mkdir()
        path = sessions / "s.jsonl"
        backend = JsonlBackend(sessions, journal=Journal(Path(tmp) / "state"))
        everything = model.read_session(data)
        complete = model.read_session(model.complete_part(data))

        # changes_since: the file grows from data[:split] to data
        path.write_bytes(data[:split])
        before = model.read_session(model.complete_part(data[:split]))
        cursor = backend.cursor("s")
        path.write_bytes(data)
        changes = backend.changes_since("s", cursor)
        assert not changes.reset
        assert contents(list(changes.messages)) == complete[len(before) :]
        assert [m.index for m in changes.messages] == list(range(len(before), len(complete)))

        backend = JsonlBackend(sessions, journal=Journal(Path(tmp) / "state"))
        assert contents(backend.load("s")) == everything
        assert backend.count_messages("s") == len(everything)
        stored = backend.load_with_timestamps("s")
        assert [m.index for m in stored] == list(range(len(everything)))
        got = backend.read_range("s", start, stop)
        lo, hi = max(start, 0), max(stop, 0)  # no Python negative indexing here
        assert contents(got) == everything[lo:hi]
        assert [m.index for m in got] == list(range(len(everything)))[lo:hi]
        t = backend.read_tail("s", tail)
        want = complete[max(0, len(complete) - tail) :] if tail else []
        assert contents(list(t.messages)) == want
        lines = model.split_lines(data)
        assert len(backend.skipped_lines("s")) == len(lines) - len(everything)


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    data=session_file(),
    split=st.integers(0, 10_000),
    start=st.integers(-2, 14),
    stop=st.integers(-1, 16),
    tail=st.integers(0, 14),
)
def test_every_read_path_agrees_with_zeroclaw_reader(
    data: bytes, split: int, start: int, stop: int, tail: int
) -> None:
    check_file(data, min(split, len(data)), start, stop, tail)


@pytest.mark.soak
@settings(max_examples=5000, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(data=session_file(), split=st.integers(0, 10_000), tail=st.integers(0, 14))
def test_every_read_path_agrees_with_zeroclaw_reader_soak(
    data: bytes, split: int, tail: int
) -> None:
    check_file(data, min(split, len(data)), 0, 10**9, tail)


@settings(max_examples=300, deadline=None, database=None)
@given(line=line_bytes())
def test_parse_line_never_raises_and_agrees_with_the_model(line: bytes) -> None:
    """One line at a time, also through the line index's fast path (a file of one line)."""
    raw = line.split(b"\n")[0]
    got = parse_line(raw)
    want = model.read_line(raw)
    assert (None if not hasattr(got, "content") else (got.role, got.content)) == want  # type: ignore[union-attr]


# Cases the property found, or that the issue names, pinned so they always run.
PINNED = [
    (b'{"role":"user","content":"a\xe2\x80\xa8b"}', [("user", "a\u2028b")]),
    (b'{"role":"user","content":"x","role":"user"}', []),
    (b'{"role":"user","content":"x"} x', []),
    (b'{"role":"user","content":"x"}{"role":"user","content":"y"}', []),
    (b'["user","x"]', [("user", "x")]),
    (b'["user","x","y"]', []),
    (b'{"role":1,"content":"x"}', []),
    (b'{"role":"user","content":"\\ud800"}', []),
    (b'{"role":"user","content":"x","n":1e999}', [("user", "x")]),
    (b'{"role":"user","content":"x","n":NaN}', []),
    (b'{"role":"user","content":"x","n":' + b"[" * 300 + b"]" * 300 + b"}", [("user", "x")]),
    (b'{"role":"user","content":"x","n":' + b"[" * 5000 + b"]" * 5000 + b"}", [("user", "x")]),
    (b'{"role":"user","content":"x","\\ud800":1}', []),
    (b'{"role":"user","content":"x","n":"\\ud800"}', [("user", "x")]),
    (b'\xef\xbb\xbf{"role":"user","content":"x"}', []),
    (b'\xe3\x80\x80{"role":"user","content":"x"}\x0b', [("user", "x")]),
    (b'{"role":"user","content":"x"}\x1c', []),
    (b'{"role":"user","content":"x"}\r', [("user", "x")]),
    (b"\xff\xfe", []),
]


@pytest.mark.parametrize(("line", "want"), PINNED, ids=[str(i) for i in range(len(PINNED))])
def test_pinned_hostile_lines(line: bytes, want: list[tuple[str, str]]) -> None:
    assert model.read_session(line + b"\n") == want, "the model itself is wrong"
    check_file(line + b"\n" + line, 0, 0, 10, 5)
