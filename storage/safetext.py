"""Make untrusted text safe for a terminal by showing control characters instead of sending them.

Message content, names and keys come from chat users and models. Escape sequences, bidi
overrides, zero-width characters and other controls are replaced by visible stand-ins:
ESC becomes ``␛`` (so ``\\x1b[31m`` reads ``␛[31m``), other C0 controls their control pictures,
and the rest a ``<U+XXXX>`` tag. Newlines (and tabs, when asked) are kept.
"""

from __future__ import annotations

import re

_BIDI_AND_INVISIBLE = (
    "\u061c\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
    "\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\u206a\u206b\u206c\u206d\u206e\u206f"
    "\ufeff\ufff9\ufffa\ufffb\u00ad"
)
_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f" + _BIDI_AND_INVISIBLE + "\u2028\u2029\ud800-\udfff]"
)
_UNSAFE_KEEP_TAB = _UNSAFE
_UNSAFE_WITH_TAB = re.compile(_UNSAFE.pattern[:-1] + "\t]")


def _stand_in(match: re.Match[str]) -> str:
    ch = match.group()
    cp = ord(ch)
    if cp == 0x1B:
        return "␛"
    if cp < 0x20:
        return chr(0x2400 + cp)
    if cp == 0x7F:
        return "␡"
    return f"<U+{cp:04X}>"


def visible(text: str, *, keep_newlines: bool = True, keep_tabs: bool = True) -> str:
    """``text`` with every control, bidi and invisible character shown as a visible stand-in."""
    pattern = _UNSAFE_KEEP_TAB if keep_tabs else _UNSAFE_WITH_TAB
    out = pattern.sub(_stand_in, text)
    if not keep_newlines:
        out = out.replace("\n", "↵")
    return out


def one_line(text: str, limit: int = 200) -> str:
    """A single visible line for error messages and lists."""
    out = visible(text, keep_newlines=False, keep_tabs=False)
    return out if len(out) <= limit else out[: limit - 1] + "…"


_JSON_UNSAFE = re.compile("[\x7f-\x9f" + _BIDI_AND_INVISIBLE + "\u2028\u2029]")


def json_terminal_safe(encoded: str) -> str:
    """Escape, inside already-encoded JSON, the characters ``json.dumps`` leaves raw but a
    terminal may act on (C1 controls, bidi overrides). The JSON value is unchanged."""
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", encoded)
