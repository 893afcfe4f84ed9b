"""The browser's message-search language, shared by both stores. Pure: no IO.

Words are ANDed, ``"a quoted phrase"`` matches consecutive tokens, ``word*`` is a prefix.
Nothing a user types can raise: a stray quote opens a phrase that runs to the end, and
operators (``NOT``, ``OR``, ``-``, ``:``, ``^``, parentheses) are just text. Tokens are what
SQLite FTS5's default ``unicode61`` tokenizer makes of the text (see ``storage._fts_table``),
so the JSONL matcher and the SQLite index agree.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

from storage._fts_table import FOLD, SEPARATORS
from storage.zcformat import RUST_WHITESPACE


def _token_class() -> str:
    ranges = [(0x00, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7F), (0xD800, 0xDFFF)]
    ranges += list(SEPARATORS)
    return "[^" + "".join(f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges) + "]+"


_TOKEN = re.compile(_token_class())
_ASCII_TOKEN = re.compile(r"[0-9A-Za-z]+")  # _TOKEN on ASCII text, several times faster
_FOLD_TABLE: dict[int, str | None] = {c: chr(c + 32) for c in range(0x41, 0x5B)}
_FOLD_TABLE.update({cp: (s or None) for cp, s in FOLD.items()})
_QUERY_WORD = re.compile(r'"[^"]*"?\*?|[^"\s]+')
# The non-ASCII code points that fold to something else, as UTF-8 (b"" for a dropped mark).
_FOLD_UTF8: dict[bytes, bytes] = {chr(cp).encode(): s.encode() for cp, s in FOLD.items()}
_ASCII = bytes(range(0x80))
_Trie = dict[int, "_Trie"]
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")

Span = tuple[int, int]


def fold(text: str) -> str:
    """unicode61's case and diacritic folding, code point by code point."""
    # On ASCII the table only lowers A-Z, as str.lower() does, many times faster.
    return text.lower() if text.isascii() else text.translate(_FOLD_TABLE)


def tokenize(text: str) -> list[tuple[int, int, str]]:
    """(start, end, folded) for every token, as FTS5 unicode61 splits ``text``."""
    out: list[tuple[int, int, str]] = []
    for m in (_ASCII_TOKEN if text.isascii() else _TOKEN).finditer(text):
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
            return [i for i, w in enumerate(words) if w == last] if last in words else []
        if n > 1 and head[0] not in words:
            return []
        found = []
        for i in range(len(words) - n + 1):
            if tuple(words[i : i + n - 1]) != head:
                continue
            w = words[i + n - 1]
            if w == last or (self.prefix and w.startswith(last)):
                found.append(i)
        return found


class Prefilter:
    """A cheap test on raw JSONL lines: False means the line cannot match.

    A line passes when it holds a ``\\u`` escape (an escape can spell any letter), or when each
    of ``words`` (the query's folded words, UTF-8) starts a token in it, and ends one where the
    query needs the whole token, once its ASCII is lowercased and ``fold`` replaced the
    characters whose unicode61 fold is nothing or a character of some word. Other characters
    may stay: in the folded text they cannot be part of a word either, and next to a word they
    are taken for separators. A message's content is its line's text with a few escapes undone
    (``\\n`` is a separator that leaves a letter before the word), so every line that can
    match passes.
    """

    __slots__ = ("_folds", "_pattern", "_texts", "empty", "finders", "words")

    def __init__(self, whole: Iterable[str], starts: Iterable[str] = ()) -> None:
        """``whole``: words that must be whole tokens; ``starts``: words that need only start
        one (the last word of a prefix term)."""
        need = dict.fromkeys(starts, False) | dict.fromkeys(whole, True)
        texts = sorted(need, key=lambda w: (-len(w.encode()), w))
        self._texts = tuple(texts)
        self.words = tuple(w.encode() for w in texts)  # the longest first
        # ``finders[i]`` finds ``words[i]`` where a token can start (and end) with it.
        self.finders = tuple(_finder(w, need[t]) for w, t in zip(self.words, texts, strict=True))
        self.empty = not texts
        self._folds, self._pattern = _folds_for(frozenset("".join(texts)))

    def might_match(self, raw: bytes) -> bool:
        if self.empty:
            return False
        if b"\\u" in raw:
            return True
        folded = self.fold(raw.lower())
        return all(finder.search(folded) for finder in self.finders)

    def fold(self, low: bytes) -> bytes:
        """``low`` with each character of ``_folds`` replaced by its fold, in one pass."""
        return self._pattern.sub(self._replace, low)

    def _replace(self, m: re.Match[bytes]) -> bytes:
        return self._folds[m.group()]

    def fold_block(self, low: bytes) -> bytes | None:
        """``fold(low)`` for lowercased lines that are not all ASCII, or None when none of them
        can hold every word (what a line holds after ``fold`` is all that counts).

        A few C-level passes instead of a regex pass over the block: the characters to fold are
        found among its non-ASCII bytes alone, then each is replaced with ``bytes.replace``.
        That is the same as one pass unless a fold is empty (a dropped mark joins its
        neighbours, which may hold broken UTF-8); then the regex pass runs. When no fold is
        empty, each run of a word's characters that no fold here makes must be in ``low`` as
        it is: if one is not, no line can hold the word.
        """
        found = self._pattern.findall(low.translate(None, _ASCII))
        if not found:
            return low
        folds = [(key, self._folds[key]) for key in sorted(set(found))]
        if not all(value for _, value in folds):
            return self.fold(low)
        made = {value.decode() for _, value in folds}
        runs = {run for word in self._texts for run in _runs_without(word, made)}
        if any(run.encode() not in low for run in sorted(runs, key=len, reverse=True)):
            return None
        for key, value in folds:
            low = low.replace(key, value)
        return low


def _finder(word: bytes, whole: bool) -> re.Pattern[bytes]:
    """A regex for ``word`` where no ASCII letter or digit runs on before it (or after it, for
    a ``whole`` word). A letter right after a backslash is part of an escape, a separator."""
    w = re.escape(word)
    start = rb"(?:(?<![0-9a-z]" + w + rb")|(?<=\\[bfnrt]" + w + rb"))"
    return re.compile(w + start + (rb"(?![0-9a-z])" if whole else b""))


def _runs_without(word: str, chars: set[str]) -> list[str]:
    """The maximal runs of ``word`` without any of ``chars``."""
    if not chars:
        return [word]
    return [run for run in re.split("|".join(map(re.escape, sorted(chars))), word) if run]


@functools.lru_cache(maxsize=64)
def _folds_for(chars: frozenset[str]) -> tuple[dict[bytes, bytes], re.Pattern[bytes]]:
    """The UTF-8 characters that fold to nothing or to one of ``chars``, with their folds, and
    a regex that finds exactly those characters."""
    folds = {k: v for k, v in _FOLD_UTF8.items() if not v or v.decode() in chars}
    return folds, re.compile(_alternatives(folds))


def _alternatives(keys: Iterable[bytes]) -> bytes:
    """A regex for exactly ``keys``, byte strings none of which is a prefix of another, as a
    trie: the regex engine then tries one branch per byte."""
    tree: _Trie = {}
    for key in keys:
        node = tree
        for b in key:
            node = node.setdefault(b, {})

    def branch(node: _Trie) -> bytes:
        last = [re.escape(bytes([b])) for b, sub in sorted(node.items()) if not sub]
        alts = [re.escape(bytes([b])) + branch(sub) for b, sub in sorted(node.items()) if sub]
        if last:
            alts.insert(0, b"[" + b"".join(last) + b"]")
        return alts[0] if len(alts) == 1 else b"(?:" + b"|".join(alts) + b")"

    return branch(tree)


@dataclass(frozen=True)
class Query:
    text: str
    terms: tuple[Term, ...]

    @property
    def is_empty(self) -> bool:
        return not self.terms

    @functools.cached_property
    def prefilter(self) -> Prefilter:
        whole = [w for t in self.terms for w in (t.words[:-1] if t.prefix else t.words)]
        return Prefilter(whole, [t.words[-1] for t in self.terms if t.prefix])

    def match(self, text: str) -> tuple[Span, ...] | None:
        """Character spans of every match in ``text``; None unless every term matches."""
        if self.is_empty:
            return None
        folded = fold(text)
        if not _may_contain(folded, self.terms):
            return None
        # Folding turns token characters into token characters or nothing and leaves the
        # others alone, so the tokens of the folded text are the folded tokens, in order: a
        # text is ruled out without the positions of its tokens.
        words = (_ASCII_TOKEN if folded.isascii() else _TOKEN).findall(folded)
        found = []
        for term in self.terms:
            at = term.positions(words)
            if not at:
                return None
            found.append(at)
        tokens = tokenize(text)
        spans: list[Span] = []
        for term, at in zip(self.terms, found, strict=True):
            n = len(term.words)
            spans += [(tokens[i][0], tokens[i + n - 1][1]) for i in at]
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
