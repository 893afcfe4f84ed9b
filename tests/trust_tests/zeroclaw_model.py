"""An independent model of ZeroClaw's JSONL reader, written from the Rust code's rules and
not from ``storage.zcformat`` (it shares no code with it, not even Python's ``json``).

ZeroClaw reads a session with ``BufRead::lines()`` and ``serde_json::from_str::<ChatMessage>``
per line, where ``ChatMessage`` is ``#[derive(Deserialize)] struct { role: String, content:
String }``. What that means, rule by rule (each checked against serde_json's de.rs/read.rs):

- lines end at ``\\n``; a ``\\r`` before it goes; nothing else splits a line (U+2028 does not);
- a line that is not UTF-8 is skipped; one that is blank after ``str::trim`` (Unicode
  White_Space) is skipped;
- the object form ``{"role": str, "content": str}``: both fields required, a duplicate of
  either is an error, unknown fields are skipped with ``ignore_value``, which checks their JSON
  syntax but has no depth limit and does not check ``\\u`` escapes for surrogates;
- the sequence form ``[str, str]`` (serde's derived visit_seq): exactly two strings;
- field names and the two strings are parsed with validation: a lone surrogate escape
  (``\\ud800``) is an error there;
- serde's own depth limit (128 nested arrays/objects) only guards values it deserializes; the
  only ones here are the struct itself and two strings, so it never fires for a line;
- whitespace between tokens is only space, tab, CR, LF; anything after the value is an error;
  NaN and Infinity are not JSON; control characters inside strings are errors.
"""

from __future__ import annotations

RUST_WHITE_SPACE = frozenset(
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
JSON_WS = " \t\n\r"
HEX = "0123456789abcdefABCDEF"
ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


class Invalid(Exception):
    pass


def rust_trim(text: str) -> str:
    start, end = 0, len(text)
    while start < end and text[start] in RUST_WHITE_SPACE:
        start += 1
    while end > start and text[end - 1] in RUST_WHITE_SPACE:
        end -= 1
    return text[start:end]


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def ws(self) -> None:
        while self.peek() and self.peek() in JSON_WS:
            self.pos += 1

    def expect(self, ch: str) -> None:
        if self.peek() != ch:
            raise Invalid(f"expected {ch!r} at {self.pos}")
        self.pos += 1

    def hex4(self) -> int:
        digits = self.text[self.pos : self.pos + 4]
        if len(digits) < 4 or any(d not in HEX for d in digits):
            raise Invalid("bad \\u escape")
        self.pos += 4
        return int(digits, 16)

    def string(self, validate: bool) -> str:
        """A string after its opening quote; ``validate`` rejects lone surrogate escapes."""
        out: list[str] = []
        while True:
            if self.pos >= len(self.text):
                raise Invalid("unterminated string")
            ch = self.text[self.pos]
            self.pos += 1
            if ch == '"':
                return "".join(out)
            if ord(ch) < 0x20:
                raise Invalid("control character in string")
            if ch != "\\":
                out.append(ch)
                continue
            esc = self.peek()
            self.pos += 1
            if esc in ESCAPES:
                out.append(ESCAPES[esc])
            elif esc == "u":
                out.append(self.unicode_escape(validate))
            else:
                raise Invalid("bad escape")

    def unicode_escape(self, validate: bool) -> str:
        n = self.hex4()
        if not validate:
            return "?"
        if 0xDC00 <= n <= 0xDFFF:
            raise Invalid("lone trailing surrogate")
        if 0xD800 <= n <= 0xDBFF:
            if self.text[self.pos : self.pos + 2] != "\\u":
                raise Invalid("lone leading surrogate")
            self.pos += 2
            low = self.hex4()
            if not 0xDC00 <= low <= 0xDFFF:
                raise Invalid("lone leading surrogate")
            return chr(0x10000 + ((n - 0xD800) << 10) + (low - 0xDC00))
        return chr(n)

    def number(self) -> None:
        if self.peek() == "-":
            self.pos += 1
        if self.peek() == "0":
            self.pos += 1
            if self.peek().isdigit() and self.peek() in "0123456789":
                raise Invalid("leading zero")
        elif self.peek() in "123456789" and self.peek():
            while self.peek() and self.peek() in "0123456789":
                self.pos += 1
        else:
            raise Invalid("bad number")
        if self.peek() == ".":
            self.pos += 1
            self.digits()
        if self.peek() and self.peek() in "eE":
            self.pos += 1
            if self.peek() and self.peek() in "+-":
                self.pos += 1
            self.digits()

    def digits(self) -> None:
        start = self.pos
        while self.peek() and self.peek() in "0123456789":
            self.pos += 1
        if self.pos == start:
            raise Invalid("digit expected")

    def scalar(self) -> bool:
        """Skip a scalar if one starts here; False at '[' or '{'."""
        ch = self.peek()
        for word in ("null", "true", "false"):
            if ch == word[0]:
                if self.text[self.pos : self.pos + len(word)] != word:
                    raise Invalid("bad literal")
                self.pos += len(word)
                return True
        if ch == '"':
            self.pos += 1
            self.string(validate=False)
            return True
        if ch == "-" or (ch and ch in "0123456789"):
            self.number()
            return True
        if ch in ("[", "{"):
            return False
        raise Invalid("value expected")

    def skip_value(self) -> None:
        """serde_json's ignore_value: syntax checked, no depth limit (an explicit stack)."""
        stack: list[str] = []
        while True:
            self.ws()
            if not self.scalar():
                frame = self.peek()
                self.pos += 1
                self.ws()
                closer = "]" if frame == "[" else "}"
                if self.peek() == closer:
                    self.pos += 1
                else:
                    stack.append(frame)
                    if frame == "{":
                        self.object_key()
                    continue
            # a value ended: close frames or move to the next element
            while True:
                if not stack:
                    return
                self.ws()
                ch = self.peek()
                if ch == ",":
                    self.pos += 1
                    if stack[-1] == "{":
                        self.ws()
                        self.object_key()
                    break
                if (ch == "]" and stack[-1] == "[") or (ch == "}" and stack[-1] == "{"):
                    self.pos += 1
                    stack.pop()
                    continue
                raise Invalid("comma or end expected")

    def object_key(self) -> None:
        self.ws()
        self.expect('"')
        self.string(validate=False)
        self.ws()
        self.expect(":")

    def typed_string(self) -> str:
        self.ws()
        if self.peek() != '"':
            raise Invalid("not a string")
        self.pos += 1
        return self.string(validate=True)

    def message(self) -> tuple[str, str]:
        self.ws()
        ch = self.peek()
        self.pos += 1
        if ch == "[":
            result = self.sequence()
        elif ch == "{":
            result = self.struct()
        else:
            raise Invalid("not an object")
        self.ws()
        if self.pos != len(self.text):
            raise Invalid("trailing characters")
        return result

    def sequence(self) -> tuple[str, str]:
        self.ws()
        if self.peek() == "]":
            raise Invalid("invalid length 0")
        role = self.typed_string()
        self.ws()
        if self.peek() != ",":
            raise Invalid("invalid length 1")
        self.pos += 1
        content = self.typed_string()
        self.ws()
        self.expect("]")
        return role, content

    def struct(self) -> tuple[str, str]:
        fields: dict[str, str] = {}
        self.ws()
        if self.peek() == "}":
            self.pos += 1
            raise Invalid("missing field")
        while True:
            self.ws()
            self.expect('"')
            name = self.string(validate=True)
            self.ws()
            self.expect(":")
            if name in ("role", "content"):
                if name in fields:
                    raise Invalid(f"duplicate field {name}")
                fields[name] = self.typed_string()
            else:
                self.skip_value()
            self.ws()
            if self.peek() == ",":
                self.pos += 1
                continue
            self.expect("}")
            break
        if "role" not in fields or "content" not in fields:
            raise Invalid("missing field")
        return fields["role"], fields["content"]


def parse_message(text: str) -> tuple[str, str] | None:
    """serde_json::from_str::<ChatMessage>(text), or None where it fails."""
    try:
        return _Parser(text).message()
    except Invalid:
        return None


def split_lines(data: bytes) -> list[bytes]:
    """BufRead::lines(): pieces between newlines, no empty piece after a final newline."""
    pieces = data.split(b"\n")
    if pieces and pieces[-1] == b"":
        pieces.pop()
    return pieces


def read_line(raw: bytes) -> tuple[str, str] | None:
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    text = rust_trim(text)
    return parse_message(text) if text else None


def read_session(data: bytes) -> list[tuple[str, str]]:
    """Every message ZeroClaw's reader returns for a file's bytes, in order."""
    return [m for m in map(read_line, split_lines(data)) if m is not None]


def complete_part(data: bytes) -> bytes:
    """The bytes up to the last newline: what a tail and a change feed consider."""
    return data[: data.rfind(b"\n") + 1]
