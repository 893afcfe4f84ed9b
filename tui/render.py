"""Message content -> terminal lines. Pure: no IO, no App.

All content is untrusted (chat users, models, tool output). Nothing here builds markup from it:
text goes into ``rich.text.Text`` objects or plain ``Segment``s, and every character that could
steer a terminal (escape sequences, C0/C1 controls, bidi overrides, invisible characters) is
replaced by a visible stand-in before it is measured or drawn. A last pass over the produced
segments repeats the check, so a renderer that decodes entities cannot smuggle one back in.

Work is capped so one pathological message (10 MB on one line) renders in bounded time.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from functools import cache
from typing import Any, Literal, NamedTuple

from markdown_it import MarkdownIt
from rich.cells import cell_len, chop_cells
from rich.console import Console, RenderableType
from rich.highlighter import JSONHighlighter
from rich.markdown import Markdown
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.strip import Strip

from storage.models import ChatMessage, SkippedLine, StoredMessage

GUTTER = 2
MIN_WIDTH = 12
TAB_SIZE = 4
COLLAPSED_LINES = 12
EXPANDED_MAX_LINES = 10_000
HUGE_CHARS = 200_000
MARKDOWN_MAX_CHARS = 32_000
JSON_MAX_CHARS = HUGE_CHARS
JSON_HIGHLIGHT_MAX_CHARS = 32_000
SKIPPED_PREVIEW_LINES = 3
RECOVERED_PREVIEW_LINES = 3

BodyKind = Literal["plain", "markdown", "json", "marker", "huge"]

# --- sanitizing -----------------------------------------------------------------------------

_UNSAFE = re.compile(
    "["
    "\x00-\x08\x0b-\x1f\x7f-\x9f"  # C0 (but \t \n), DEL, C1
    "\u00ad\u034f\u061c\u115f\u1160\u180e"  # soft hyphen, CGJ, ALM, fillers, MVS
    "\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u206f"  # zero-width, LRM/RLM, bidi, isolates
    "\u3164\ufeff\uffa0\ufff9-\ufffb"  # fillers, BOM, interlinear annotation
    "\ud800-\udfff"  # lone surrogates
    "\U000e0000-\U000e007f"  # tag characters ("ASCII smuggling")
    "]"
)
# Inside one rendered line a newline or tab is as unsafe as the rest.
_UNSAFE_IN_LINE = re.compile(f"{_UNSAFE.pattern[:-1]}\t\n]")


def _visible(char: str) -> str:
    code = ord(char)
    if code == 0x1B:
        return "␛"
    if code < 0x20:
        return chr(0x2400 + code)  # control pictures: NUL -> ␀, BEL -> ␇, CR -> ␍
    if code == 0x7F:
        return "␡"
    return f"<U+{code:04X}>"


def _visible_match(match: re.Match[str]) -> str:
    return _visible(match.group())


def sanitize(text: str) -> str:
    """``text`` with every terminal-steering or invisible character replaced by a visible one.

    Newlines stay; tabs become spaces. ESC shows as ``␛`` (``\\x1b[31m`` -> ``␛[31m``), other C0
    controls as their control pictures, everything else as a ``<U+202E>`` tag.
    """
    if "\t" in text:
        text = text.expandtabs(TAB_SIZE)
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(_visible_match, text)


def _sanitize_in_line(text: str) -> str:
    if _UNSAFE_IN_LINE.search(text) is None:
        return text
    return _UNSAFE_IN_LINE.sub(lambda m: " " if m.group() == "\t" else _visible(m.group()), text)


# --- images ---------------------------------------------------------------------------------

_IMAGE_OPEN = "[IMAGE:"
_DATA_PREFIX = "data:"
_MIME_OK = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+\-]{0,40}/[A-Za-z0-9.+\-]{1,60}")


def human_size(size: int) -> str:
    """``1234567`` -> ``"1.2 MB"`` (decimal units)."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def _image_placeholder(text: str, body: int, end: int) -> str:
    """Describe the data URI ``text[body:end]`` from its header and length alone."""
    comma = text.find(",", body, min(end, body + 256))
    header = text[body + len(_DATA_PREFIX) : comma if comma != -1 else body]
    mime = header.split(";", 1)[0]
    if not _MIME_OK.fullmatch(mime):
        mime = "unknown type"
    payload = 0 if comma == -1 else end - comma - 1
    if ";base64" in header:
        padding = text.count("=", max(comma + 1, end - 2), end) if comma != -1 else 0
        payload = max(0, payload * 3 // 4 - padding)
    return f"[image: {mime}, {human_size(payload)}]"


def replace_images(text: str) -> str:
    """Swap each ``[IMAGE:data:...]`` for a short placeholder; other text is left as it is.

    The base64 body is never walked in Python: ``str.find`` locates its end.
    """
    if _IMAGE_OPEN not in text:
        return text
    parts: list[str] = []
    pos = 0
    while (start := text.find(_IMAGE_OPEN, pos)) != -1:
        body = start + len(_IMAGE_OPEN)
        if not text.startswith(_DATA_PREFIX, body):
            parts.append(text[pos:body])
            pos = body
            continue
        close = text.find("]", body)
        end = len(text) if close == -1 else close
        placeholder = _image_placeholder(text, body, end)
        if close == -1:
            placeholder = placeholder[:-1] + ", truncated]"
        parts.extend((text[pos:start], placeholder))
        pos = end + 1
    parts.append(text[pos:])
    return "".join(parts)


# --- theme ----------------------------------------------------------------------------------


class RenderTheme(NamedTuple):
    """Every style the renderer uses. Build another one to follow an app theme."""

    user: Style = Style(color="bright_cyan", bold=True)
    assistant: Style = Style(color="bright_green", bold=True)
    system: Style = Style(color="bright_magenta", bold=True)
    tool: Style = Style(color="yellow", bold=True)
    other: Style = Style(color="bright_white", bold=True)
    number: Style = Style(color="bright_black", bold=True)
    timestamp: Style = Style(dim=True)
    body: Style = Style()
    marker: Style = Style(dim=True, italic=True)
    prefix_stamp: Style = Style(dim=True)
    image: Style = Style(color="magenta", italic=True)
    fold: Style = Style(color="bright_black", italic=True)
    selected: Style = Style(bgcolor="grey15")
    gutter_selected: Style = Style(color="bright_yellow", bold=True)
    search: Style = Style(color="black", bgcolor="yellow")
    warning: Style = Style(color="yellow", bold=True)
    warning_body: Style = Style(color="yellow", dim=True)
    recovered: Style = Style(color="yellow", italic=True)
    placeholder: Style = Style(color="bright_black", italic=True)
    code_theme: str = "monokai"

    def role(self, role: str) -> Style:
        styles = {"user": self.user, "assistant": self.assistant, "system": self.system}
        return styles.get(role, self.tool if role == "tool" else self.other)


DEFAULT_THEME = RenderTheme()

# --- console and markdown -------------------------------------------------------------------


@cache
def _console() -> Console:
    """A private console used only to lay out renderables; it never writes anywhere."""
    return Console(
        file=io.StringIO(),
        width=80,
        height=25,
        color_system="truecolor",
        force_terminal=True,
        force_jupyter=False,
        force_interactive=False,
        no_color=False,
        legacy_windows=False,
        emoji=False,
        markup=False,
        highlight=False,
    )


def _layout(renderable: RenderableType, width: int) -> list[list[Segment]]:
    console = _console()
    options = console.options.update(width=width, height=None)
    return console.render_lines(renderable, options, pad=True, new_lines=False)


class _LiteralMarkdown(Markdown):
    """Markdown that shows HTML and entities as typed instead of dropping or decoding them.

    Rich's parser drops raw HTML (``<div>`` would hide its text), decodes ``&#x1b;`` back into
    an ESC after we sanitized the source, and draws inline images out of order. Chat text also
    means its single newlines, so soft breaks are kept as line breaks.
    """

    _parser = (
        MarkdownIt("commonmark", {"html": False})
        .enable(["strikethrough", "table"])
        .disable(["entity", "image"])
    )

    def __init__(self, markup: str, code_theme: str) -> None:
        super().__init__("", code_theme=code_theme, hyperlinks=False)
        self.markup = markup
        self.parsed = self._parser.parse(markup)
        for token in self.parsed:
            for child in token.children or ():
                if child.type == "softbreak":
                    child.type = "hardbreak"


# --- classifying and rendering bodies -------------------------------------------------------

_MARKER_LINE = re.compile(
    r"^\[(?:Session interrupted — not continuing this request|interrupted by user"
    r"|No reply sent|Tool exchange: [^\]\n]{0,200})\]$",
    re.MULTILINE,
)
_STAMP_PREFIX = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?: [+-]\d\d:?\d\d)?\] ")
_PLACEHOLDER = re.compile(r"\[image: [A-Za-z0-9.+\-/ ]{1,110}, [0-9.]+ [KMG]?B(?:, truncated)?\]")


def parse_json(content: str) -> Any | None:
    """The object or array ``content`` holds, or None if it is not JSON (or too large)."""
    stripped = content.strip()
    if len(stripped) > JSON_MAX_CHARS or stripped[:1] not in ("{", "["):
        return None
    try:
        value = json.loads(stripped)
    except ValueError:
        return None
    return value if isinstance(value, dict | list) else None


def is_marker(content: str) -> bool:
    """True when every non-blank line is one of ZeroClaw's synthetic markers."""
    lines = [line for line in content.strip().splitlines() if line.strip()]
    return bool(lines) and all(_MARKER_LINE.fullmatch(line.strip()) for line in lines)


def classify(role: str, content: str) -> BodyKind:
    if len(content) > HUGE_CHARS:
        return "huge"
    if parse_json(content) is not None:
        return "json"
    if is_marker(content):
        return "marker"
    if role == "assistant" and len(content) <= MARKDOWN_MAX_CHARS:
        return "markdown"
    return "plain"


def _plain_text(text: str, theme: RenderTheme, style: Style | None = None) -> Text:
    body = Text(text, style=style or theme.body, overflow="fold", end="")
    body.highlight_regex(_MARKER_LINE, theme.marker)
    body.highlight_regex(_PLACEHOLDER, theme.image)
    match = _STAMP_PREFIX.match(text)
    if match:
        body.stylize(theme.prefix_stamp, 0, match.end())
    return body


def _json_text(value: Any, theme: RenderTheme) -> Text:
    pretty = sanitize(json.dumps(value, indent=2, ensure_ascii=False))
    text = Text(pretty, style=theme.body, overflow="fold", end="")
    if len(pretty) <= JSON_HIGHLIGHT_MAX_CHARS:
        JSONHighlighter().highlight(text)
    return text


def _split_trailing_markers(text: str) -> tuple[str, str]:
    lines = text.rstrip().split("\n")
    cut = len(lines)
    while cut > 0 and _MARKER_LINE.fullmatch(lines[cut - 1].strip()):
        cut -= 1
    return "\n".join(lines[:cut]), "\n".join(lines[cut:])


def _markdown_lines(text: str, width: int, theme: RenderTheme) -> list[list[Segment]]:
    body, markers = _split_trailing_markers(text)
    lines = _layout(_LiteralMarkdown(body, theme.code_theme), width) if body.strip() else []
    if markers:
        lines.extend(_layout(Text(markers, style=theme.marker, overflow="fold"), width))
    return lines


def _body_lines(role: str, content: str, width: int, theme: RenderTheme) -> list[list[Segment]]:
    """All lines of a body of at most ``HUGE_CHARS`` characters."""
    kind = classify(role, content)
    text = sanitize(replace_images(content))
    if kind == "json":
        return _layout(_json_text(parse_json(content), theme), width)
    if kind == "marker":
        return _layout(Text(text.strip(), style=theme.marker, overflow="fold"), width)
    if kind == "markdown":
        return _markdown_lines(text, width, theme)
    return _layout(_plain_text(text, theme), width)


def _hard_wrap(text: str, width: int, limit: int) -> Iterator[str]:
    """Up to ``limit`` pieces of at most ``width`` cells, cutting anywhere. Cheap on huge text."""
    produced = 0
    for line in text.split("\n"):
        pos = 0
        while produced < limit:
            piece = line[pos : pos + width]
            if not piece.isascii() and cell_len(piece) > width:
                piece = chop_cells(piece, width)[0]
            yield piece
            produced += 1
            pos += len(piece)
            if pos >= len(line):
                break
        if produced >= limit:
            return


def _pad(segments: list[Segment], width: int, style: Style | None = None) -> list[Segment]:
    length = sum(cell_len(segment.text) for segment in segments)
    if length < width:
        return [*segments, Segment(" " * (width - length), style)]
    return segments


def _estimate_lines(text: str, start: int, width: int) -> int:
    rest = len(text) - start
    return max(text.count("\n", start) + 1, rest // max(width, 1))


def _huge_lines(
    content: str, width: int, limit: int, theme: RenderTheme
) -> tuple[list[list[Segment]], str | None]:
    """The first ``limit`` lines of a huge body, hard-wrapped, plus a note on what is left."""
    raw = replace_images(content)
    head = raw[: (limit + 1) * width * 2]
    pieces = list(_hard_wrap(sanitize(head), width, limit + 1))
    lines = [_pad([Segment(piece, theme.body)], width) for piece in pieces[:limit]]
    if len(pieces) <= limit and len(head) == len(raw):
        return lines, None
    # Positions in the sanitized head only approximate positions in ``raw``: this is an estimate.
    shown = min(len(raw), sum(len(piece) for piece in pieces[:limit]))
    remaining = max(1, _estimate_lines(raw, shown, width))
    left = human_size(len(raw[shown:].encode("utf-8", "surrogatepass")))
    return lines, f"about {remaining:,} more lines ({left})"


# --- assembling a message -------------------------------------------------------------------


def format_timestamp(stamp: str) -> str:
    """``2026-03-16T16:23:18.123456789+00:00`` -> ``2026-03-16 16:23:18 UTC``."""
    match = re.fullmatch(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)?", stamp)
    if not match:
        return sanitize(stamp)[:40]
    zone = match.group(3) or ""
    zone = " UTC" if zone in ("Z", "+00:00") else f" {zone}" if zone else ""
    return f"{match.group(1)} {match.group(2)}{zone}"


def render_header(
    msg: StoredMessage, *, known_index: bool = True, theme: RenderTheme = DEFAULT_THEME
) -> Text:
    """``#index role  timestamp`` as styled text (``#?`` when the index is not known yet)."""
    header = Text(no_wrap=True, overflow="ellipsis", end="")
    header.append(f"#{msg.index}" if known_index and msg.index >= 0 else "#?", theme.number)
    header.append(" ")
    header.append(sanitize(msg.role)[:40].replace("\n", " "), theme.role(msg.role))
    if msg.created_at:
        header.append("  ")
        header.append(format_timestamp(msg.created_at), theme.timestamp)
    return header


def _fold_line(note: str, width: int, theme: RenderTheme) -> list[Segment]:
    return _layout(Text(f"… {note}", style=theme.fold, no_wrap=True, overflow="ellipsis"), width)[0]


def _collapse(
    lines: list[list[Segment]], width: int, expanded: bool, theme: RenderTheme
) -> list[list[Segment]]:
    if not expanded and len(lines) > COLLAPSED_LINES + 1:
        more = len(lines) - COLLAPSED_LINES
        note = f"{more:,} more lines (Enter to expand)"
        return [*lines[:COLLAPSED_LINES], _fold_line(note, width, theme)]
    if expanded and len(lines) > EXPANDED_MAX_LINES:
        note = f"{len(lines) - EXPANDED_MAX_LINES:,} more lines not shown (message too large)"
        return [*lines[:EXPANDED_MAX_LINES], _fold_line(note, width, theme)]
    return lines


def _content_lines(
    msg: StoredMessage, width: int, expanded: bool, theme: RenderTheme
) -> list[list[Segment]]:
    if len(msg.content) <= HUGE_CHARS:
        return _collapse(_body_lines(msg.role, msg.content, width, theme), width, expanded, theme)
    limit = EXPANDED_MAX_LINES if expanded else COLLAPSED_LINES
    lines, note = _huge_lines(msg.content, width, limit, theme)
    if note:
        hint = "message too large to show in full" if expanded else "Enter to expand"
        lines.append(_fold_line(f"{note} ({hint})", width, theme))
    return lines


def search_pattern(terms: Iterable[str] | None) -> re.Pattern[str] | None:
    """A case-insensitive pattern matching any of ``terms`` literally, or None."""
    words = sorted({term for term in terms or () if term.strip()}, key=len, reverse=True)
    if not words:
        return None
    return re.compile("|".join(re.escape(word) for word in words), re.IGNORECASE)


def _mark_spans(line: list[Segment], pattern: re.Pattern[str], style: Style) -> list[Segment]:
    plain = "".join(segment.text for segment in line)
    spans = [match.span() for match in pattern.finditer(plain) if match.end() > match.start()]
    if not spans:
        return line
    cuts = sorted({cut for span in spans for cut in span})
    out: list[Segment] = []
    pos = 0
    for segment in line:
        end = pos + len(segment.text)
        inner = [cut - pos for cut in cuts if pos < cut < end]
        for start, stop in zip([0, *inner], [*inner, len(segment.text)], strict=True):
            piece_at = pos + start
            hit = any(a <= piece_at < b for a, b in spans)
            text = segment.text[start:stop]
            out.append(Segment(text, (segment.style or Style()) + style if hit else segment.style))
        pos = end
    return out


def _finish(
    lines: Sequence[list[Segment]],
    width: int,
    gutter: Segment,
    *,
    background: Style | None = None,
    pattern: re.Pattern[str] | None = None,
    theme: RenderTheme = DEFAULT_THEME,
) -> list[Strip]:
    """Prefix the gutter, apply selection and search marks, and make every line safe and exact."""
    strips: list[Strip] = []
    for line in lines:
        segments = [gutter, *line]
        if background is not None:
            segments = list(Segment.apply_style(segments, style=background))
        if pattern is not None:
            segments = _mark_spans(segments, pattern, theme.search)
        strips.append(_safe_strip(segments, width))
    return strips


def _safe_strip(segments: list[Segment], width: int) -> Strip:
    """The line as a Strip of exactly ``width`` cells, re-checked for anything unsafe."""
    if any(_UNSAFE_IN_LINE.search(segment.text) for segment in segments):
        segments = [
            Segment(_sanitize_in_line(text), style, control) for text, style, control in segments
        ]
    segments = [segment for segment in segments if not segment.control]
    return Strip(segments).adjust_cell_length(width)


def render_message(
    msg: StoredMessage,
    width: int,
    *,
    expanded: bool = False,
    selected: bool = False,
    highlight: Iterable[str] | None = None,
    known_index: bool = True,
    theme: RenderTheme = DEFAULT_THEME,
) -> list[Strip]:
    """The lines of one message: header, body (collapsed unless ``expanded``) and a blank line.

    ``highlight`` marks every occurrence of the given search terms. Deterministic for equal
    arguments, so the caller can cache the result.
    """
    width = max(width, MIN_WIDTH)
    inner = width - GUTTER
    role_style = theme.role(msg.role)
    header = _layout(render_header(msg, known_index=known_index, theme=theme), inner)[0]
    if selected:
        gutter = Segment("▌ ", theme.gutter_selected)
    else:
        gutter = Segment("▏ ", Style(color=role_style.color, dim=True))
    background = theme.selected if selected else None
    # Search marks go on the content only: not on the role or the time in the header.
    head = _finish([header], width, gutter, background=background, theme=theme)
    body = _finish(
        _content_lines(msg, inner, expanded, theme),
        width,
        gutter,
        background=background,
        pattern=search_pattern(highlight),
        theme=theme,
    )
    return [*head, *body, Strip.blank(width)]


def render_placeholder(
    index: int | None, width: int, note: str = "loading…", *, theme: RenderTheme = DEFAULT_THEME
) -> list[Strip]:
    """One line standing in for a message that is not loaded yet."""
    width = max(width, MIN_WIDTH)
    text = Text("#?" if index is None else f"#{index}", style=theme.number, no_wrap=True, end="")
    text.append(f" {note}", theme.placeholder)
    return _finish(_layout(text, width - GUTTER), width, Segment("  "), theme=theme)


def _preview_lines(text: str, width: int, limit: int, style: Style) -> list[list[Segment]]:
    lines, note = _huge_lines(text, width, limit, DEFAULT_THEME)  # styled below
    lines = [list(Segment.apply_style(line, style=style)) for line in lines]
    if note:
        lines.append(_layout(Text(f"… {note}", style=style, no_wrap=True), width)[0])
    return lines


def _recovered_lines(message: ChatMessage, width: int, theme: RenderTheme) -> list[list[Segment]]:
    title = Text("↳ recovered from a glued line, not seen by ZeroClaw: ", theme.recovered, end="")
    title.append(sanitize(message.role)[:40], theme.role(message.role))
    title.no_wrap, title.overflow = True, "ellipsis"
    body = _preview_lines(message.content, width - 2, RECOVERED_PREVIEW_LINES, theme.recovered)
    return [_layout(title, width)[0], *([Segment("  "), *line] for line in body)]


def render_skipped(
    line: SkippedLine, width: int, *, theme: RenderTheme = DEFAULT_THEME
) -> list[Strip]:
    """A warning block for a line ZeroClaw's reader skips, with any messages glued into it."""
    width = max(width, MIN_WIDTH)
    inner = width - GUTTER
    where = f"line {line.line}" if line.line is not None else f"byte {line.offset}"
    title = Text(f"⚠ {where} skipped by ZeroClaw ({human_size(line.length)}): ", theme.warning)
    title.append(sanitize(line.reason).replace("\n", " "), theme.warning)
    title.overflow = "fold"
    lines = _layout(title, inner)
    lines += _preview_lines(line.preview, inner, SKIPPED_PREVIEW_LINES, theme.warning_body)
    for message in line.recovered:
        lines += _recovered_lines(message, inner, theme)
    strips = _finish(lines, width, Segment("▌ ", theme.warning), theme=theme)
    return [*strips, Strip.blank(width)]
