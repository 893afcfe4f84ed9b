"""The browser's message-search language, shared by both stores. Pure: no IO.

Words are ANDed, ``"a quoted phrase"`` matches consecutive tokens, ``word*`` is a prefix.
Nothing a user types can raise: a stray quote opens a phrase that runs to the end, and
operators (``NOT``, ``OR``, ``-``, ``:``, ``^``, parentheses) are just text. Tokens are what
SQLite FTS5's default ``unicode61`` tokenizer makes of the text (see ``storage._fts_table``),
so the JSONL matcher and the SQLite index agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from storage._fts_table import FOLD, SEPARATORS
from storage.zcformat import RUST_WHITESPACE


def _token_class() -> str:
    ranges = [(0x00, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7F), (0xD800, 0xDFFF)]
    ranges += list(SEPARATORS)
    return "[^" + "".join(f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges) + "]+"


_TOKEN = re.compile(_token_class())
_FOLD_TABLE: dict[int, str | None] = {c: chr(c + 32) for c in range(0x41, 0x5B)}
_FOLD_TABLE.update({cp: (s or None) for cp, s in FOLD.items()})
_QUERY_WORD = re.compile(r'"[^"]*"?\*?|[^"\s]+')
# A raw line the ASCII needles cannot judge: non-ASCII bytes or \u escapes may fold to anything.
_NEEDS_PARSE = re.compile(rb"[\x80-\xff]|\\u")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")

Span = tuple[int, int]


def fold(text: str) -> str:
    """unicode61's case and diacritic folding, code point by code point."""
    return text.translate(_FOLD_TABLE)


def tokenize(text: str) -> list[tuple[int, int, str]]:
    """(start, end, folded) for every token, as FTS5 unicode61 splits ``text``."""
    out: list[tuple[int, int, str]] = []
    for m in _TOKEN.finditer(text):
        word = fold(m.group())
        if word:  # a run of combining marks folds to nothing and is no token
            out.append((m.start(), m.end(), word))
    return out


@dataclass(frozen=True)
class Term:
    """Consecutive tokens that must all match; ``prefix`` applies to the last one."""

    words: tuple[str, ...]
    prefix: bool = False

    def positions(self, words: list[str]) -> list[int]:
        n, head = len(self.words), self.words[:-1]
        last = self.words[-1]
        if n == 1 and not self.prefix:
            return [i for i, w in enumerate(words) if w == last]
        found = []
        for i in range(len(words) - n + 1):
            if tuple(words[i : i + n - 1]) != head:
                continue
            w = words[i + n - 1]
            if w == last or (self.prefix and w.startswith(last)):
                found.append(i)
        return found


@dataclass(frozen=True)
class Prefilter:
    """A cheap test on a raw JSONL line: False means the line cannot match.

    ``needles`` are lowercase ASCII that every matching pure-ASCII line contains; lines with
    non-ASCII bytes or ``\\u`` escapes always pass, since accents and escapes hide letters.
    """

    needles: tuple[bytes, ...]
    ascii_possible: bool = True
    empty: bool = False

    def might_match(self, raw: bytes) -> bool:
        if self.empty:
            return False
        if _NEEDS_PARSE.search(raw):
            return True
        if not self.ascii_possible:
            return False
        low = raw.lower()
        return all(n in low for n in self.needles)


@dataclass(frozen=True)
class Query:
    text: str
    terms: tuple[Term, ...]

    @property
    def is_empty(self) -> bool:
        return not self.terms

    @property
    def prefilter(self) -> Prefilter:
        return _prefilter(self.terms)

    def match(self, text: str) -> tuple[Span, ...] | None:
        """Character spans of every match in ``text``; None unless every term matches."""
        if self.is_empty or not _may_contain(fold(text), self.terms):
            return None
        tokens = tokenize(text)
        words = [w for _, _, w in tokens]
        spans: list[Span] = []
        for term in self.terms:
            found = term.positions(words)
            if not found:
                return None
            n = len(term.words)
            spans += [(tokens[i][0], tokens[i + n - 1][1]) for i in found]
        return _merge(spans)


def _may_contain(folded: str, terms: tuple[Term, ...]) -> bool:
    # Folding is per code point, so a token's folded form is a substring of the folded text.
    return all(w in folded for t in terms for w in t.words)


def _merge(spans: list[Span]) -> tuple[Span, ...]:
    out: list[Span] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(end, out[-1][1]))
        else:
            out.append((start, end))
    return tuple(out)


def _prefilter(terms: tuple[Term, ...]) -> Prefilter:
    if not terms:
        return Prefilter((), empty=True)
    words = [w for t in terms for w in t.words]
    if any(not w.isascii() for w in words):
        return Prefilter((), ascii_possible=False)
    return Prefilter(tuple(sorted({w.encode() for w in words}, key=len, reverse=True)))


def _term(chunk: str, quoted: bool) -> Term | None:
    prefix = chunk.endswith("*")
    body = chunk.rstrip("*")
    if quoted:
        body = body[1:].removesuffix('"')
    tokens = tokenize(body)
    if not tokens:
        return None
    # "foo.*" is no prefix query: the star must touch the last token.
    prefix = prefix and (quoted or tokens[-1][1] == len(body))
    return Term(tuple(w for _, _, w in tokens), prefix)


def parse_query(text: str) -> Query:
    """Parse what a user typed; never raises. An empty result matches nothing."""
    terms: list[Term] = []
    for m in _QUERY_WORD.finditer(text):
        chunk = m.group()
        term = _term(chunk, quoted=chunk.startswith('"'))
        if term is not None and term not in terms:
            terms.append(term)
    return Query(text, tuple(terms))


def _fts5_phrase(term: Term) -> str:
    return '"' + " ".join(term.words).replace('"', '""') + '"' + ("*" if term.prefix else "")


def to_fts5(query: Query) -> str:
    """A MATCH expression for ``sessions_fts`` limited to the ``content`` column.

    Every token is quoted, so no user text reaches FTS5's query syntax. An empty query gives
    an empty phrase, which FTS5 accepts and which matches nothing.
    """
    if query.is_empty:
        return 'content : ("")'
    return "content : (" + " AND ".join(_fts5_phrase(t) for t in query.terms) + ")"


_RUST_SPLIT = re.compile(f"[{re.escape(RUST_WHITESPACE)}]+")


def zeroclaw_fts5(text: str) -> str | None:
    """ZeroClaw's own MATCH string: every whitespace-separated word quoted, ORed.

    None where ZeroClaw gets a syntax error and returns nothing: a ``"`` or a NUL (FTS5 stops
    reading there) in the text, or no word at all.
    """
    if '"' in text or "\x00" in text:
        return None
    words = [w for w in _RUST_SPLIT.split(text) if w]
    return " OR ".join(f'"{w}"' for w in words) if words else None


def make_snippet(
    text: str, spans: tuple[Span, ...] | list[Span], width: int = 100
) -> tuple[str, tuple[Span, ...]]:
    """A one-line window of ``text`` around the first span, with spans moved into it."""
    first = spans[0][0] if spans else 0
    begin = max(0, first - width // 4)
    end = min(len(text), begin + width)
    begin = max(0, min(begin, end - width))
    lead = "…" if begin > 0 else ""
    tail = "…" if end < len(text) else ""
    # Control characters become spaces one for one, so offsets stay valid.
    body = _CONTROL.sub(" ", text[begin:end])
    shift = len(lead) - begin
    moved = tuple(
        (max(s, begin) + shift, min(e, end) + shift) for s, e in spans if s < end and e > begin
    )
    return lead + body + tail, moved


# Noncharacters: text from chat users should never hold them, unlike \x02/\x03.
MARK_OPEN = "\ufdd0"
MARK_CLOSE = "\ufdd1"


def strip_marks(marked: str) -> tuple[str, tuple[Span, ...]]:
    """Split text highlighted with MARK_OPEN/MARK_CLOSE (FTS5 ``snippet()``) into text + spans.

    Control characters become spaces one for one, as in ``make_snippet``.
    """
    out: list[str] = []
    spans: list[Span] = []
    pos, start = 0, -1
    for piece in re.split(f"([{MARK_OPEN}{MARK_CLOSE}])", marked):
        if piece == MARK_OPEN:
            start = pos
        elif piece == MARK_CLOSE:
            if 0 <= start < pos:
                spans.append((start, pos))
            start = -1
        else:
            out.append(piece)
            pos += len(piece)
    return _CONTROL.sub(" ", "".join(out)), _merge(spans)
