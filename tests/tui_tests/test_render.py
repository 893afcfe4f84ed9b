"""tui.render: untrusted content is shown literally, safely, and in bounded work."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.segment import Segment
from textual.strip import Strip

from storage.models import ChatMessage, SkippedLine, StoredMessage
from tui.render import (
    COLLAPSED_LINES,
    EXPANDED_MAX_LINES,
    classify,
    format_timestamp,
    human_size,
    render_header,
    render_message,
    render_skipped,
    replace_images,
    sanitize,
)

WIDTH = 60
# Anything a terminal could act on: C0 (newline and tab included: a line is one row), DEL, C1.
TERMINAL_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
INVISIBLE = re.compile(
    "[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ud800-\udfff\U000e0000-\U000e007f]"
)


def msg(content: str, role: str = "user", index: int = 7, **extra: str) -> StoredMessage:
    return StoredMessage(index=index, role=role, content=content, **extra)


def plain(strips: list[Strip]) -> str:
    return "\n".join(strip.text for strip in strips)


def segments(strips: list[Strip]) -> list[Segment]:
    return [segment for strip in strips for segment in strip]


def assert_terminal_safe(strips: list[Strip], width: int = WIDTH) -> None:
    for strip in strips:
        assert strip.cell_length == width
        for segment in strip:
            assert not segment.control
            assert not TERMINAL_CONTROL.search(segment.text), repr(segment.text)
            assert not INVISIBLE.search(segment.text), repr(segment.text)
            assert segment.style is None or not segment.style.link


HOSTILE = {
    "markup": (
        "[bold red]x[/] [link=http://evil]y[/link]",
        "[bold red]x[/] [link=http://evil]y[/link]",
    ),
    "ansi": ("\x1b[31mred\x1b[0m", "␛[31mred␛[0m"),
    "osc8": ("\x1b]8;;http://evil\x1b\\click\x1b]8;;\x1b\\", "␛]8;;http://evil␛\\click␛]8;;␛\\"),
    "osc0": ("\x1b]0;pwned title\x07", "␛]0;pwned title␇"),
    "bell": ("ding\x07", "ding␇"),
    "c1_csi": ("a\x9b31mb", "a<U+009B>31mb"),
    "del": ("a\x7fb", "a␡b"),
    "cr": ("over\rwrite", "over␍write"),
    "bidi": ("abc\u202edcba\u202c", "abc<U+202E>dcba<U+202C>"),
    "isolate": ("x\u2066y\u2069", "x<U+2066>y<U+2069>"),
    "zero_width": ("pass\u200bword\ufeff", "pass<U+200B>word<U+FEFF>"),
    "nul": ("a\x00b", "a␀b"),
    "surrogate": ("a\ud800b", "a<U+D800>b"),
    "tag_chars": ("hi\U000e0041", "hi<U+E0041>"),
}


@pytest.mark.parametrize("role", ["user", "assistant", "tool", "system", "weird[role]"])
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_content_is_shown_literally_and_safely(role: str, case: str) -> None:
    content, shown = HOSTILE[case]
    strips = render_message(msg(content, role=role), WIDTH, expanded=True)
    assert shown in plain(strips)
    assert_terminal_safe(strips)


def test_markup_in_content_gets_no_style() -> None:
    strips = render_message(msg("[bold]not bold[/bold]", role="assistant"), WIDTH)
    hit = [s for s in segments(strips) if "not bold" in s.text]
    assert hit and all(not (s.style and s.style.bold) for s in hit)
    assert "[bold]not bold[/bold]" in plain(strips)


def test_markdown_entities_and_html_cannot_smuggle_controls_or_hide_text() -> None:
    content = "a &#x1b;[31m &#8238;b &#0; <div>kept</div> <script>x()</script>"
    strips = render_message(msg(content, role="assistant"), WIDTH, expanded=True)
    text = plain(strips)
    assert "&#x1b;[31m" in text and "<div>kept</div>" in text and "<script>x()</script>" in text
    assert_terminal_safe(strips)


def test_markdown_links_show_their_target_and_are_not_hyperlinks() -> None:
    strips = render_message(msg("[docs](http://evil.example/x)", role="assistant"), WIDTH)
    assert "docs (http://evil.example/x)" in plain(strips)
    assert_terminal_safe(strips)


def test_sanitize_replaces_and_keeps() -> None:
    assert sanitize("plain text\nnext") == "plain text\nnext"
    assert sanitize("a\tb") == "a   b"
    assert sanitize("\x1b[2J\x07\x00") == "␛[2J␇␀"
    assert sanitize("\u2028") == "<U+2028>"
    assert not TERMINAL_CONTROL.search(sanitize("".join(map(chr, range(0x20)))).replace("\n", ""))


def test_header_shows_index_role_and_timestamp() -> None:
    stamped = msg("hi", created_at="2026-03-16T16:23:18.123456789+00:00")
    assert render_header(stamped).plain == "#7 user  2026-03-16 16:23:18 UTC"
    assert render_header(stamped, known_index=False).plain.startswith("#? user")
    assert render_header(msg("x", index=-1)).plain.startswith("#? ")
    assert format_timestamp("not a \x1b time") == "not a ␛ time"


def test_header_role_is_literal() -> None:
    strips = render_message(msg("x", role="[red]tool\x1b[0m"), WIDTH)
    assert strips[0].text.strip() == "▏ #7 [red]tool␛[0m"


def test_markdown_code_fence_is_syntax_highlighted() -> None:
    content = "Look:\n\n```python\ndef answer():\n    return 42\n```\n"
    strips = render_message(msg(content, role="assistant"), WIDTH)
    keyword = [s for s in segments(strips) if s.text == "def"]
    assert keyword and keyword[0].style is not None and keyword[0].style.color is not None
    assert "return 42" in plain(strips)


def test_markdown_emphasis_is_rendered_for_assistant_only() -> None:
    bold = [s for s in segments(render_message(msg("**b**", "assistant"), WIDTH)) if s.text == "b"]
    assert bold and bold[0].style is not None and bold[0].style.bold
    assert "**b**" in plain(render_message(msg("**b**", "user"), WIDTH))


def test_json_content_is_pretty_printed_and_highlighted() -> None:
    content = '{"tool":"shell","args":{"cmd":"ls \\u001b[31m"},"ok":true}'
    strips = render_message(msg(content, role="tool"), WIDTH)
    lines = [strip.text.rstrip() for strip in strips]
    assert '▏   "tool": "shell",' in lines
    assert '▏     "cmd": "ls \\u001b[31m"' in lines
    keys = [s for s in segments(strips) if s.text == '"tool"']
    assert keys and keys[0].style is not None and keys[0].style.color is not None
    assert_terminal_safe(strips)


def test_assistant_tool_call_json_is_pretty_too() -> None:
    assert classify("assistant", '{"tool_calls": [{"name": "x"}]}') == "json"
    assert classify("assistant", "{not json") == "markdown"
    assert classify("tool", "[1, 2") == "plain"


def test_image_data_uri_becomes_a_placeholder() -> None:
    body = "A" * 1_600_000
    content = f"see [IMAGE:data:image/png;base64,{body}] and [IMAGE:/tmp/cat.jpg]"
    strips = render_message(msg(content), WIDTH)
    text = plain(strips)
    assert "see [image: image/png, 1.2 MB] and [IMAGE:/tmp/cat.jpg]" in text
    assert "AAAA" not in text


def test_unterminated_or_odd_image_markers() -> None:
    assert replace_images("x [IMAGE:data:image/jpeg;base64,QUJD") == (
        "x [image: image/jpeg, 3 B, truncated]"
    )
    assert replace_images("[IMAGE:data:<b>evil;base64,QQ==]") == "[image: unknown type, 1 B]"
    assert human_size(999) == "999 B" and human_size(1_234_567) == "1.2 MB"


def test_synthetic_markers_are_dim_italic() -> None:
    for marker in (
        "[Session interrupted — not continuing this request]",
        "[No reply sent]",
        "[Tool exchange: 3 tool call(s) — results collapsed]",
    ):
        strips = render_message(msg(marker, role="assistant"), WIDTH)
        hit = [s for s in segments(strips) if marker[:8] in s.text]
        assert hit and hit[0].style is not None and hit[0].style.italic and hit[0].style.dim


def test_trailing_marker_after_markdown_is_dim_italic() -> None:
    content = "partial **answer**\n[Session interrupted — not continuing this request]"
    strips = render_message(msg(content, role="assistant"), WIDTH)
    hit = [s for s in segments(strips) if "Session interrupted" in s.text]
    assert hit and hit[0].style is not None and hit[0].style.italic


def test_long_message_collapses_and_expands() -> None:
    content = "\n".join(f"row {n}" for n in range(40))
    collapsed = render_message(msg(content), WIDTH)
    assert len(collapsed) == 1 + COLLAPSED_LINES + 1 + 1  # header, body, fold note, blank
    assert "… 28 more lines (Enter to expand)" in plain(collapsed)
    assert "row 39" not in plain(collapsed)
    expanded = render_message(msg(content), WIDTH, expanded=True)
    assert "row 39" in plain(expanded) and "more lines" not in plain(expanded)
    assert len(expanded) == 1 + 40 + 1


def test_short_message_is_not_collapsed() -> None:
    content = "\n".join(f"row {n}" for n in range(COLLAPSED_LINES + 1))
    assert "more lines" not in plain(render_message(msg(content), WIDTH))


def test_ten_megabyte_line_renders_a_capped_number_of_lines() -> None:
    huge = msg("x" * 10_000_000 + "\x1b[31m")
    collapsed = render_message(huge, WIDTH)
    assert len(collapsed) == 1 + COLLAPSED_LINES + 1 + 1
    assert "more lines" in collapsed[-2].text and "Enter to expand" in collapsed[-2].text
    expanded = render_message(huge, WIDTH, expanded=True)
    assert len(expanded) <= 1 + EXPANDED_MAX_LINES + 2
    assert_terminal_safe(collapsed)


def test_huge_message_with_many_lines_and_controls_stays_capped_and_safe() -> None:
    huge = msg(("\x1b]0;t\x07\u202e" * 50 + "\n") * 100_000, role="assistant")
    strips = render_message(huge, WIDTH)
    assert len(strips) == 1 + COLLAPSED_LINES + 1 + 1
    assert_terminal_safe(strips)


def test_wide_characters_keep_lines_exact() -> None:
    strips = render_message(msg("日本語のテキスト" * 40), WIDTH, expanded=True)
    assert_terminal_safe(strips)
    huge = render_message(msg("日本" * 150_000), WIDTH)
    assert_terminal_safe(huge)


def test_selected_message_is_marked() -> None:
    strips = render_message(msg("hello"), WIDTH, selected=True)
    assert strips[0].text.startswith("▌ ")
    assert all(s.style and s.style.bgcolor for s in strips[1] if s.text.strip())


def test_search_terms_are_highlighted_case_insensitively() -> None:
    strips = render_message(msg("find the Needle here, needle"), WIDTH, highlight=["needle"])
    marked = [s.text for s in segments(strips) if s.style and s.style.bgcolor]
    assert marked == ["Needle", "needle"]
    assert "find the Needle here, needle" in plain(strips)


def test_search_terms_are_literal_not_regex() -> None:
    strips = render_message(msg("a.c abc"), WIDTH, highlight=["a.c"])
    assert [s.text for s in segments(strips) if s.style and s.style.bgcolor] == ["a.c"]


def test_rendering_is_deterministic() -> None:
    message = msg("# t\n\n```py\nx = 1\n```\n" * 3, role="assistant")
    assert render_message(message, WIDTH) == render_message(message, WIDTH)


def test_skipped_line_block_shows_line_reason_and_recovered_messages() -> None:
    line = SkippedLine(
        line=12,
        offset=300,
        length=64,
        reason="trailing characters after the object",
        preview='{"role":"user","content":"a"}{"role":"user","content":"\x1b[31mb"}',
        before_index=4,
        recovered=(ChatMessage(role="user", content="\x1b[31mb"),),
    )
    strips = render_skipped(line, 120)
    text = plain(strips)
    assert "line 12 skipped by ZeroClaw" in text
    assert "trailing characters after the object" in text
    assert "recovered from a glued line, not seen by ZeroClaw: user" in text
    assert "␛[31mb" in text
    assert_terminal_safe(strips, 120)


def test_skipped_line_with_unknown_line_number_and_huge_preview() -> None:
    line = SkippedLine(
        line=None, offset=9, length=5_000_000, reason="not UTF-8", preview="x" * 10**6
    )
    strips = render_skipped(line, WIDTH)
    assert "byte 9 skipped by ZeroClaw (5.0 MB)" in plain(strips)
    assert len(strips) < 10
    assert_terminal_safe(strips)


def test_render_module_does_not_start_an_app_or_touch_io() -> None:
    code = "import tui.render, sys; print('textual.app' in sys.modules)"
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    assert out.stdout.strip() == "False"
