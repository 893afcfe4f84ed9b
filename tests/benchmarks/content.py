"""Synthetic chat content that looks like ZeroClaw sessions (pure: a seeded RNG in, text out).

Turns are a user question, sometimes an assistant tool call and its tool result, then an
assistant answer with markdown and code. Some lines carry non-ASCII text, a rare few are long
or hold a base64 image, as real sessions do. Vocabulary is built from syllables without the
letters of the planted words (``PLANTED``), so those occur exactly where they are put.
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass

# Planted words: the syllable vocabulary cannot produce them (it has no z, q, x or y).
RARE_SQLITE = "zanzibarite"  # in exactly RARE_COUNT SQLite messages
RARE_JSONL = "quixotryz"  # in a few JSONL messages, the newest one deep in the big session
HALF_WORD = "deploy"  # in half of all SQLite messages
RARE_COUNT = 3
PLANTED = (RARE_SQLITE, RARE_JSONL, HALF_WORD)

_ONSETS = ["b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w"]
_ONSETS += ["br", "ch", "cl", "dr", "fl", "gr", "pl", "pr", "sh", "st", "th", "tr"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "ou", "io"]
_CODAS = ["", "", "", "n", "r", "s", "t", "l", "m", "nd", "rt", "st", "ck"]
_COMMON = (  # noqa: SIM905 (a word list reads better as one string)
    "the of and to in is it you that for on with as are this be at or have from by not but "
    "what all were when we there can an your which their said if do will each about how up "
    "out them then she many some so these would other into has more her two like him see "
    "time could no make than first been its who now people my made over did down only way "
    "find use may water long little very after words called just where most know get through "
    "back much before go good new write our used me man too any day same right look think "
    "also around another came come work three word must because does part even place well "
    "such here take why things help put years different away again off went old number"
).split()
_NON_ASCII = ["café", "naïve", "über", "日本語のテキスト", "données", "señor", "🚀", "✅", "→", "Ω"]
_TOOLS = ["shell", "file_read", "file_write", "http_get", "memory_recall", "web_search"]
_LANGS = ["python", "sh", "rust", "json", "toml"]
_COMPACT = (",", ":")


def vocabulary(rng: random.Random, size: int = 4000) -> list[str]:
    words = set()
    while len(words) < size:
        n = rng.choice((1, 2, 2, 3, 3, 4))
        words.add(
            "".join(
                rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(n)
            )
        )
    return sorted(words)


@dataclass
class Writer:
    """Makes messages. ``plant`` words are put into the next message made by ``say``."""

    rng: random.Random
    vocab: list[str]

    def words(self, n: int) -> str:
        rng, out = self.rng, []
        for _ in range(n):
            r = rng.random()
            if r < 0.45:
                out.append(rng.choice(_COMMON))
            elif r < 0.995:
                # Zipf-ish: low indices far more often.
                out.append(self.vocab[int(len(self.vocab) * rng.random() ** 2.5)])
            else:
                out.append(rng.choice(_NON_ASCII))
        return " ".join(out)

    def sentence(self, lo: int, hi: int) -> str:
        text = self.words(self.rng.randint(lo, hi))
        return text[:1].upper() + text[1:] + self.rng.choice([".", ".", "?", "!"])

    def user(self, stamp: str | None) -> str:
        text = self.sentence(8, 40)
        return f"[{stamp}] {text}" if stamp else text

    def answer(self) -> str:
        rng = self.rng
        r = rng.random()
        if r < 0.55:
            return self.sentence(18, 70)
        if r < 0.75:
            items = "\n".join(
                f"- **{self.words(1)}**: {self.words(rng.randint(3, 8))}"
                for _ in range(rng.randint(2, 4))
            )
            return f"{self.sentence(4, 10)}\n\n{items}"
        if r < 0.97:
            lang = rng.choice(_LANGS)
            code = "\n".join(
                f"    {self.words(1)}_{i} = {self.words(1)}({self.words(2)!r})"
                for i in range(rng.randint(1, 4))
            )
            return f"## {self.words(3)}\n\n{self.sentence(4, 12)}\n\n```{lang}\n{code}\n```"
        return "\n\n".join(self.sentence(10, 30) for _ in range(rng.randint(8, 20)))

    def tool_call(self, call_id: str) -> str:
        tool = self.rng.choice(_TOOLS)
        cmd = f"{self.words(1)} --{self.words(1)} {self.words(1)}"
        args = json.dumps({"command": cmd}, ensure_ascii=False, separators=_COMPACT)
        return json.dumps(
            {
                "content": self.sentence(3, 8) if self.rng.random() < 0.3 else "",
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": tool, "arguments": args},
                    }
                ],
            },
            ensure_ascii=False,
            separators=_COMPACT,
        )

    def tool_result(self, call_id: str) -> str:
        out = "\n".join(self.words(self.rng.randint(2, 7)) for _ in range(self.rng.randint(1, 4)))
        return json.dumps(
            {"tool_call_id": call_id, "content": out}, ensure_ascii=False, separators=_COMPACT
        )

    def image(self, size: int) -> str:
        data = base64.b64encode(self.rng.randbytes(size)).decode()
        return f"Here is the screenshot [IMAGE:data:image/png;base64,{data}]"


def stamp_of(n: int) -> str:
    """A user-turn time prefix as ZeroClaw writes it."""
    minute, second = divmod(n, 60)
    hour, minute = divmod(minute, 60)
    return f"2026-03-16 {hour % 24:02d}:{minute % 60:02d}:{second:02d} +02:00"


def conversation(
    rng: random.Random, vocab: list[str], n: int, *, images: bool = False, call_base: int = 0
) -> Iterator[tuple[str, str]]:
    """(role, content) for ``n`` messages of a realistic session."""
    w = Writer(rng, vocab)
    made, turn = 0, 0
    if rng.random() < 0.5:
        yield "system", f"You are a concise assistant for {w.words(2)}."
        made += 1
    while made < n:
        turn += 1
        yield "user", w.user(stamp_of(turn * 17) if rng.random() < 0.3 else None)
        made += 1
        tools = rng.random() < 0.35
        while tools and made < n - 1 and rng.random() < 0.8:
            call = f"call_{call_base + made:x}"
            yield "assistant", w.tool_call(call)
            yield "tool", w.tool_result(call)
            made += 2
        if made >= n:
            break
        r = rng.random()
        if images and r < 0.00005:
            content = w.image(rng.randint(20_000, 80_000))
        elif r < 0.003:
            content = "[Tool exchange: 2 tool call(s) — results collapsed]"
        elif r < 0.005:
            content = "[interrupted by user]"
        else:
            content = w.answer()
        yield "assistant", content
        made += 1


def encode(role: str, content: str) -> bytes:
    """One line exactly as ZeroClaw's serde_json writes it, newline included."""
    obj = {"role": role, "content": content}
    return (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
