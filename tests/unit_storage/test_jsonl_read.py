"""Reading a JSONL store exactly as ZeroClaw's reader does, and what that reader hides."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from storage.errors import SessionNotFound, StorageError
from storage.journal import Journal
from storage.jsonl import NAMES_FILE, JsonlBackend
from storage.models import ChatMessage, SessionState
from storage.zcformat import now_rfc3339, parse_rfc3339, sanitize_key
from tests.helpers import expected
from tests.unit_storage.conftest import JsonlKit

EXPECTED = expected("jsonl-workspace")


def pairs(messages: list[ChatMessage]) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in messages]


def test_list_and_load_equal_zeroclaw(jsonl: JsonlBackend) -> None:
    assert jsonl.list_sessions() == EXPECTED["list"]
    for key, want in EXPECTED["load"].items():
        assert pairs(jsonl.load(key)) == want
        stored = jsonl.load_with_timestamps(key)
        assert [{"role": m.role, "content": m.content} for m in stored] == want
        assert [m.index for m in stored] == list(range(len(want)))
        assert all(m.created_at is None for m in stored)
        assert jsonl.count_messages(key) == len(want)


def test_skipped_lines_name_line_reason_and_place(jsonl: JsonlBackend) -> None:
    [corrupt] = jsonl.skipped_lines("telegram_100200300")
    assert (corrupt.line, corrupt.reason, corrupt.before_index) == (10, "not JSON", 9)
    assert corrupt.preview == "{not json at all"
    assert corrupt.length == len(b"{not json at all\n")
    [torn] = jsonl.skipped_lines("gw_a1b2c3")
    assert (torn.line, torn.reason, torn.before_index) == (32, "torn last line", 31)
    assert torn.offset + torn.length == (jsonl.sessions_dir / "gw_a1b2c3.jsonl").stat().st_size
    assert jsonl.skipped_lines("discord_guild42_ch7_erin") == []
    assert jsonl.skipped_lines("empty") == []


def test_blank_and_glued_lines_are_reported(jsonl: JsonlBackend, kit: JsonlKit) -> None:
    glued = kit.line("a").rstrip(b"\n") + kit.line("b", "assistant")
    kit.write("odd", kit.line("first") + b"   \n" + glued + kit.line("last") + b"\n")
    skipped = jsonl.skipped_lines("odd")
    assert [(s.line, s.reason, s.before_index) for s in skipped] == [
        (2, "blank", 1),
        (3, "glued objects (2 messages)", 1),
        (5, "blank", 2),
    ]
    assert [(m.role, m.content) for m in skipped[1].recovered] == [
        ("user", "a"),
        ("assistant", "b"),
    ]
    assert [m.content for m in jsonl.load("odd")] == ["first", "last"]


def test_unterminated_valid_last_line_counts_as_zeroclaw_does(
    jsonl: JsonlBackend, kit: JsonlKit
) -> None:
    kit.write("open", kit.lines(3) + kit.line("no newline yet").rstrip(b"\n"))
    assert [m.content for m in jsonl.load("open")][-1] == "no newline yet"
    assert jsonl.count_messages("open") == 4
    assert [m.content for m in jsonl.read_range("open", 2, 10)] == ["m2", "no newline yet"]
    assert jsonl.skipped_lines("open") == []


def test_unsanitized_key_reads_the_sanitized_file(jsonl: JsonlBackend, kit: JsonlKit) -> None:
    kit.write("slack_thread_1_2_user_one", kit.line("hello slack"))
    key = "slack/thread:1.2/user one"
    assert [m.content for m in jsonl.load(key)] == ["hello slack"]
    assert jsonl.resolve_key(key) == "slack_thread_1_2_user_one"
    assert jsonl.session_exists(key)


def test_a_listed_stem_is_used_as_it_is(jsonl: JsonlBackend, kit: JsonlKit) -> None:
    kit.write("a b", kit.line("spaced"))
    kit.write("a_b", kit.line("underscored"))
    assert "a b" in jsonl.list_sessions()
    assert [m.content for m in jsonl.load("a b")] == ["spaced"]
    assert [m.content for m in jsonl.load("a_b")] == ["underscored"]


@pytest.mark.parametrize(
    "key", ["../../etc/passwd", "../outside", "/etc/passwd", "..", "a/../../x"]
)
def test_path_traversal_keys_never_leave_the_folder(
    jsonl: JsonlBackend, sessions: Path, key: str
) -> None:
    outside = sessions.parent / "outside.jsonl"
    outside.write_bytes(b'{"role":"user","content":"secret"}\n')
    around, inside = set(os.listdir(sessions.parent)), set(os.listdir(sessions))
    with pytest.raises(SessionNotFound):
        jsonl.load(key)
    assert not jsonl.session_exists(key)
    jsonl.append(key, ChatMessage(role="user", content="x"))
    assert set(os.listdir(sessions.parent)) == around
    assert set(os.listdir(sessions)) - inside == {sanitize_key(key) + ".jsonl"}
    assert "/" not in sanitize_key(key) and "." not in sanitize_key(key)
    assert outside.read_bytes() == b'{"role":"user","content":"secret"}\n'


def test_listing_takes_regular_jsonl_files_only(
    jsonl: JsonlBackend, sessions: Path, kit: JsonlKit, tmp_path: Path
) -> None:
    (sessions / "folder.jsonl").mkdir()
    (sessions / "archived.jsonl.migrated").write_bytes(kit.line("old"))
    (sessions / "staged.jsonl.importing").write_bytes(kit.line("old"))
    (sessions / ".jsonl").write_bytes(kit.line("no stem"))
    elsewhere = tmp_path / "elsewhere.jsonl"
    elsewhere.write_bytes(kit.line("outside"))
    (sessions / "escape.jsonl").symlink_to(elsewhere)
    (sessions / "inside.jsonl").symlink_to(sessions / "empty.jsonl")
    (sessions / "dangling.jsonl").symlink_to(sessions / "missing")
    os.mkfifo(sessions / "pipe.jsonl")
    assert jsonl.list_sessions() == sorted([*EXPECTED["list"], "inside"])
    with pytest.raises(SessionNotFound):
        jsonl.load("escape")
    assert [m.key for m in jsonl.list_sessions_with_metadata()] == jsonl.list_sessions()


def test_non_utf8_file_names_do_not_crash(jsonl: JsonlBackend, sessions: Path) -> None:
    raw = os.fsencode(sessions) + b"/bad\xff\xfename.jsonl"
    with open(raw, "wb") as f:
        f.write(b'{"role":"user","content":"x"}\n')
    assert jsonl.list_sessions() == EXPECTED["list"]
    assert len(jsonl.list_sessions_with_metadata()) == len(EXPECTED["list"])
    assert jsonl.search("x") == []  # only the skipped file says "x"
    assert list(jsonl.search_messages("x")) == []
    assert jsonl.search("gardening")[0].key == "telegram_100200300"


def test_metadata_listing_is_stat_only(
    jsonl: JsonlBackend, sessions: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    os.utime(sessions / "gw_a1b2c3.jsonl", ns=(0, 1_700_000_000_123_456_789))

    def no_reading(*args: object, **kwargs: object) -> object:
        raise AssertionError("list_sessions_with_metadata read a session")

    monkeypatch.setattr(os, "pread", no_reading)
    metas = {m.key: m for m in jsonl.list_sessions_with_metadata()}
    gw = metas["gw_a1b2c3"]
    assert gw.created_at == gw.last_activity == now_rfc3339(1_700_000_000_123_456_789)
    assert gw.last_activity == "2023-11-14T22:13:20.123456789+00:00"
    assert gw.message_count is None and gw.state is None and gw.backend == "jsonl"
    assert gw.size == (sessions / "gw_a1b2c3.jsonl").stat().st_size


def test_metadata_for_ten_thousand_sessions_is_fast(tmp_path: Path) -> None:
    sessions = tmp_path / "many"
    sessions.mkdir()
    for i in range(10_000):
        (sessions / f"s{i:05d}.jsonl").write_bytes(b'{"role":"user","content":"hi"}\n')
    backend = JsonlBackend(sessions, journal=Journal(tmp_path / "state"))
    start = time.perf_counter()
    metas = backend.list_sessions_with_metadata()
    elapsed = time.perf_counter() - start
    assert len(metas) == 10_000 and metas[0].key == "s00000"
    assert elapsed < 2.0, f"{elapsed:.2f} s for 10,000 sessions"


def test_session_metadata_counts_and_flags_unreadable(jsonl: JsonlBackend) -> None:
    meta = jsonl.get_session_metadata("telegram_100200300")
    assert meta is not None
    assert (meta.message_count, meta.has_unreadable) == (10, True)
    clean = jsonl.get_session_metadata("discord_guild42_ch7_erin")
    assert clean is not None and (clean.message_count, clean.has_unreadable) == (7, False)
    assert jsonl.get_session_metadata("nope") is None


def test_read_range_uses_index_numbers(jsonl: JsonlBackend) -> None:
    got = jsonl.read_range("telegram_100200300", 8, 100)
    assert [(m.index, m.line, m.content) for m in got] == [
        (8, 9, "Answer 7 about *gardening*:\n```sh\necho 7\n```"),
        (9, 11, "after the corrupt line"),
    ]
    assert jsonl.read_range("telegram_100200300", 5, 5) == []
    assert jsonl.read_range("empty", 0, 10) == []


def test_names_live_in_one_sidecar(jsonl: JsonlBackend, sessions: Path) -> None:
    jsonl.set_session_name("gw_a1b2c3", "tax help")
    jsonl.set_session_name("telegram/100200300", "garden")
    assert jsonl.get_session_name("gw_a1b2c3") == "tax help"
    assert {m.key: m.name for m in jsonl.list_sessions_with_metadata()}["telegram_100200300"] == (
        "garden"
    )
    assert sorted(p.name for p in sessions.iterdir() if p.name.startswith(".")) == [NAMES_FILE]
    jsonl.set_session_name("gw_a1b2c3", "")
    assert jsonl.get_session_name("gw_a1b2c3") is None
    assert jsonl.get_session_name("telegram_100200300") == "garden"
    with pytest.raises(SessionNotFound):
        jsonl.set_session_name("missing", "x")
    assert not any(".jsonl" in p.name for p in sessions.iterdir() if p.name.startswith("."))


def test_jsonl_has_no_states(jsonl: JsonlBackend) -> None:
    jsonl.set_session_state("gw_a1b2c3", SessionState.running, "turn-1")
    assert jsonl.get_session_state("gw_a1b2c3") is None
    assert jsonl.list_running_sessions() == []
    assert jsonl.list_stuck_sessions(0) == []


def test_permission_denied_is_one_line(
    jsonl: JsonlBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open

    def deny(path: str, flags: int, *args: int) -> int:
        if str(path).endswith("gw_a1b2c3.jsonl"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", deny)
    with pytest.raises(StorageError) as err:
        jsonl.load("gw_a1b2c3")
    assert str(err.value) == "cannot read the session gw_a1b2c3.jsonl: Permission denied"
    with pytest.raises(StorageError, match="Permission denied"):
        jsonl.read_tail("gw_a1b2c3", 5)


def test_os_errors_become_storage_errors(jsonl: JsonlBackend, sessions: Path) -> None:
    path = sessions / "gw_a1b2c3.jsonl"
    path.unlink()
    path.mkdir()
    with pytest.raises(SessionNotFound):
        jsonl.load("gw_a1b2c3")
    other = JsonlBackend(sessions / "empty.jsonl", journal=Journal(sessions.parent / "state"))
    with pytest.raises(StorageError, match="cannot list the sessions"):
        other.list_sessions()


def test_mtime_timestamps_parse(jsonl: JsonlBackend) -> None:
    for meta in jsonl.list_sessions_with_metadata():
        assert meta.last_activity is not None and parse_rfc3339(meta.last_activity) is not None
