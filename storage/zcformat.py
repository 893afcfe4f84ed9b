"""ZeroClaw's on-disk rules as pure functions: key sanitizing, line parsing, encoding, clocks.

Nothing here touches a file. Each rule mirrors ZeroClaw's Rust code (serde_json, chrono), which
differs from Python's defaults in places: those places are commented.
"""

from __future__ import annotations

import bisect
import functools
import json
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from storage.models import ChatMessage

# Rust's char::is_whitespace (the Unicode White_Space property). Python's str.strip() also strips
# U+001C..U+001F, which Rust's str::trim keeps.
RUST_WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)

# serde_json refuses to nest deeper than this many arrays/objects, but only in values it
# deserializes: the message itself and its two strings. Unknown fields are skipped by its
# ``ignore_value``, which has no depth limit. Lines nested deeper than this are walked by hand
# (``_parse_deep``) instead of with Python's recursive ``json``.
SERDE_MAX_DEPTH = 127


def rust_is_alphanumeric(ch: str) -> bool:
    """Rust's ``char::is_alphanumeric`` (Alphabetic or Numeric), which ``str.isalnum`` is not."""
    cp = ord(ch)
    if cp < 128:
        return ch.isalnum()
    starts, ranges = _alnum_ranges()
    i = bisect.bisect_right(starts, cp) - 1
    return i >= 0 and ranges[i][0] <= cp <= ranges[i][1]


@functools.cache
def _alnum_ranges() -> tuple[list[int], tuple[tuple[int, int], ...]]:
    """The table is big and only non-ASCII keys need it: loaded on first use."""
    from storage._alnum_table import RANGES

    return [a for a, _ in RANGES], RANGES


def sanitize_key(key: str) -> str:
    """ZeroClaw's file stem for a key: all but alphanumerics, ``_`` and ``-`` become ``_``."""
    return "".join(c if c in "_-" or rust_is_alphanumeric(c) else "_" for c in key)


def rust_trim(text: str) -> str:
    return text.strip(RUST_WHITESPACE)


def encode_message(message: ChatMessage) -> bytes:
    """One JSONL line (without the newline), byte-identical to ZeroClaw's serde_json output."""
    obj = {"role": message.role, "content": message.content}
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def now_rfc3339(ns: int | None = None) -> str:
    """chrono's ``Utc::now().to_rfc3339()``: 0, 3, 6 or 9 fraction digits, always ``+00:00``."""
    ns = time.time_ns() if ns is None else ns
    secs, frac = divmod(ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    if frac == 0:
        digits = ""
    elif frac % 1_000_000 == 0:
        digits = f".{frac // 1_000_000:03d}"
    elif frac % 1_000 == 0:
        digits = f".{frac // 1_000:06d}"
    else:
        digits = f".{frac:09d}"
    return f"{base}{digits}+00:00"


# --- reading a JSONL line as ZeroClaw does ---------------------------------------------------


@dataclass(frozen=True)
class LineProblem:
    """Why ZeroClaw skips a line. ``recovered`` holds messages found in glued objects."""

    reason: str
    recovered: tuple[ChatMessage, ...] = field(default=())


class _Invalid(Exception):
    pass


# ZeroClaw's own layout with no escape at all (parse_line takes it only then). Possessive runs,
# not an alternation per character: a 10 MB image line matches in milliseconds, not seconds.
_CANONICAL = re.compile(r'\{"role":"([^"\\\x00-\x1f]*+)","content":"([^"\\\x00-\x1f]*+)"\}')
_STRING = re.compile(r'"[^"\\]*+(?:\\.[^"\\]*+)*+"', re.S)


def _reject_constant(name: str) -> Any:
    raise _Invalid("not JSON")  # serde_json has no NaN or Infinity


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out and k in ("role", "content"):
            raise _Invalid(f"duplicate field {k!r}")
        out[k] = v
    return out


_DECODER = json.JSONDecoder(
    object_pairs_hook=_pairs,
    parse_constant=_reject_constant,
    parse_int=lambda s: 0,  # ignored fields: avoid Python's limit on huge integer strings
    parse_float=lambda s: 0.0,
)


def _has_surrogate(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _too_deep(text: str) -> bool:
    depth = 0
    for ch in _STRING.sub("", text):
        if ch in "[{":
            depth += 1
            if depth > SERDE_MAX_DEPTH:
                return True
        elif ch in "]}":
            depth -= 1
    return False


def _to_message(value: Any) -> ChatMessage:
    if isinstance(value, list):
        # serde's derived Deserialize also accepts a struct as a sequence of its fields.
        if len(value) != 2:
            raise _Invalid(f"array of {len(value)} elements")
        role, content = value
        extra: dict[str, Any] = {}
    elif isinstance(value, dict):
        if any(_has_surrogate(k) for k in value):
            # serde parses field names with validation, unknown ones included
            raise _Invalid("a field name has a lone surrogate")
        for name in ("role", "content"):
            if name not in value:
                raise _Invalid(f"missing field {name!r}")
        role, content = value["role"], value["content"]
        extra = {k: v for k, v in value.items() if k not in ("role", "content")}
    else:
        raise _Invalid("not a JSON object")
    for name, v in (("role", role), ("content", content)):
        if not isinstance(v, str):
            raise _Invalid(f"field {name!r} is not a string")
        if _has_surrogate(v):
            raise _Invalid(f"field {name!r} has a lone surrogate")
    return ChatMessage(role=role, content=content, extra=extra)


def _decode_one(text: str, pos: int) -> tuple[Any, int]:
    try:
        return _DECODER.raw_decode(text, pos)
    except RecursionError:
        raise _Invalid("nested too deep") from None
    except ValueError as err:
        raise _Invalid("not JSON") from err


def _recover_glued(text: str) -> tuple[ChatMessage, ...] | None:
    """Split ``{...}{...}`` into messages; None when the text is not a run of glued objects."""
    found: list[ChatMessage] = []
    pos = 0
    while pos < len(text):
        try:
            value, end = _decode_one(text, pos)
            found.append(_to_message(value))
        except _Invalid:
            return None
        pos = end
        while pos < len(text) and text[pos] in " \t":
            pos += 1
    return tuple(found) if len(found) > 1 else None


def parse_line(raw: bytes) -> ChatMessage | LineProblem:
    """Parse one line (without its ``\\n``) exactly as ZeroClaw's reader does."""
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return LineProblem("not UTF-8")
    text = rust_trim(text)
    if not text:
        return LineProblem("blank")
    m = _CANONICAL.fullmatch(text)
    if m is not None and "\\" not in text:
        return ChatMessage(role=m.group(1), content=m.group(2))
    return _parse_slow(text)


def _parse_slow(text: str) -> ChatMessage | LineProblem:
    if _too_deep(text):
        return _parse_deep(text)
    try:
        value, end = _decode_one(text, 0)
        message = _to_message(value)
    except _Invalid as err:
        return LineProblem(str(err))
    if text[end:].strip(" \t\n\r"):
        recovered = _recover_glued(text)
        if recovered is not None:
            return LineProblem(f"glued objects ({len(recovered)} messages)", recovered)
        return LineProblem("trailing characters after the object")
    return message


# JSON tokens for walking a line too deep for Python's recursive decoder.
_WS = re.compile(r"[ \t\n\r]*")
_STRING_TOKEN = re.compile(
    r'"[^"\\\x00-\x1f]*+(?:\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})[^"\\\x00-\x1f]*+)*+"'
)
_SCALAR_TOKEN = re.compile(
    _STRING_TOKEN.pattern + r"|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|null|true|false"
)


def _skip_ws(text: str, pos: int) -> int:
    m = _WS.match(text, pos)
    return pos if m is None else m.end()


def _string_at(text: str, pos: int) -> tuple[str, int]:
    """The JSON string token at ``pos``, decoded and checked as serde checks a typed string."""
    m = _STRING_TOKEN.match(text, pos)
    if m is None:
        raise _Invalid("not a string")
    value: str = json.loads(m.group())
    if _has_surrogate(value):
        raise _Invalid("a string has a lone surrogate")
    return value, m.end()


def _key_at(text: str, pos: int) -> int:
    """Skip ``"name" :`` inside a skipped object (names there are not checked for surrogates)."""
    m = _STRING_TOKEN.match(text, pos)
    if m is None:
        raise _Invalid("not JSON")
    pos = _skip_ws(text, m.end())
    if not text.startswith(":", pos):
        raise _Invalid("not JSON")
    return pos + 1


def _skip_value(text: str, pos: int) -> int:
    """serde_json's ignore_value: check one value's syntax without a depth limit; its end."""
    closers: list[str] = []
    while True:
        pos = _skip_ws(text, pos)
        m = _SCALAR_TOKEN.match(text, pos)
        if m is not None:
            pos = m.end()
        elif text.startswith(("[", "{"), pos):
            closer = "]" if text[pos] == "[" else "}"
            pos = _skip_ws(text, pos + 1)
            if not text.startswith(closer, pos):
                closers.append(closer)
                if closer == "}":
                    pos = _key_at(text, pos)
                continue
            pos += 1
        else:
            raise _Invalid("not JSON")
        while closers:  # a value ended: close what it ended, or go on to the next element
            pos = _skip_ws(text, pos)
            if text.startswith(",", pos):
                pos += 1
                if closers[-1] == "}":
                    pos = _key_at(text, _skip_ws(text, pos))
                break
            if not text.startswith(closers[-1], pos):
                raise _Invalid("not JSON")
            pos += 1
            closers.pop()
        if not closers:
            return pos


def _parse_deep(text: str) -> ChatMessage | LineProblem:
    """A line nested deeper than SERDE_MAX_DEPTH: only an object whose deep parts sit in unknown
    fields can be a message (serde skips those without a depth limit). Unknown fields are
    dropped here rather than kept."""
    try:
        return _walk_object(text)
    except _Invalid as err:
        return LineProblem(str(err))


def _walk_object(text: str) -> ChatMessage:
    if not text.startswith("{"):
        raise _Invalid("nested too deep")  # an array or other value must be shallow to parse
    found: dict[str, str] = {}
    pos = _skip_ws(text, 1)
    if text.startswith("}", pos):
        raise _Invalid("missing field 'role'")
    while True:
        name, pos = _string_at(text, _skip_ws(text, pos))
        pos = _skip_ws(text, pos)
        if not text.startswith(":", pos):
            raise _Invalid("not JSON")
        pos = _skip_ws(text, pos + 1)
        if name in ("role", "content"):
            if name in found:
                raise _Invalid(f"duplicate field {name!r}")
            if not text.startswith('"', pos):
                raise _Invalid(f"field {name!r} is not a string")
            found[name], pos = _string_at(text, pos)
        else:
            pos = _skip_value(text, pos)
        pos = _skip_ws(text, pos)
        if text.startswith(",", pos):
            pos += 1
            continue
        if not text.startswith("}", pos):
            raise _Invalid("not JSON")
        break
    if text[pos + 1 :].strip(" \t\n\r"):
        raise _Invalid("trailing characters after the object")
    for name in ("role", "content"):
        if name not in found:
            raise _Invalid(f"missing field {name!r}")
    return ChatMessage(role=found["role"], content=found["content"])


def preview(raw: bytes, limit: int = 80) -> str:
    """A short, printable preview of a raw line (control characters shown as escapes)."""
    text = raw[: limit * 4].decode("utf-8", errors="replace")
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|z|[+-]\d{2}:\d{2})"
)


def parse_rfc3339(text: str) -> datetime | None:
    """Parse chrono's RFC 3339 (up to 9 fraction digits, which ``fromisoformat`` may reject)."""
    m = _RFC3339.fullmatch(text.strip())
    if m is None:
        return None
    year, month, day, hour, minute, sec = (int(g) for g in m.groups()[:6])
    micros = int((m.group(7) or "0").ljust(9, "0")[:6])
    zone = m.group(8)
    offset = (
        timedelta(0)
        if zone in ("Z", "z")
        else (1 if zone[0] == "+" else -1) * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    )
    try:
        return datetime(year, month, day, hour, minute, sec, micros, tzinfo=timezone(offset))
    except ValueError:
        return None


def rfc3339_from_timestamp(seconds: float) -> str:
    """A file time in chrono's format, as ZeroClaw reports JSONL mtimes."""
    return now_rfc3339(int(seconds * 1_000_000_000))
