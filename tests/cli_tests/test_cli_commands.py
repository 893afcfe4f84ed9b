"""The command-line contract: exit codes, one-line errors, confirmations, edits and undo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import copy_fixture

REPO = Path(__file__).resolve().parents[2]


def zc(
    *argv: str, stdin: str = "", env_extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "storage.cli", *argv],
        cwd=REPO,
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )


def ok_json(*argv: str) -> Any:
    result = zc(*argv)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def assert_one_line_failure(result: subprocess.CompletedProcess[str], needle: str) -> None:
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert needle in result.stderr


@pytest.fixture
def jsonl_ws(tmp_path: Path) -> Path:
    return copy_fixture("jsonl-workspace", tmp_path)


@pytest.fixture
def sqlite_ws(tmp_path: Path) -> Path:
    return copy_fixture("sqlite-workspace", tmp_path)


def test_missing_key_fails_with_one_line(jsonl_ws: Path) -> None:
    assert_one_line_failure(zc("--workspace", str(jsonl_ws), "show", "nope"), "nope")


def test_missing_workspace_fails_with_one_line(tmp_path: Path) -> None:
    assert_one_line_failure(zc("--workspace", str(tmp_path / "absent"), "list"), "absent")


def test_a_file_that_is_not_a_database_fails_with_one_line(tmp_path: Path) -> None:
    sessions = tmp_path / "ws" / "sessions"
    sessions.mkdir(parents=True)
    (sessions / "sessions.db").write_bytes(b"this is not a database" * 100)
    assert_one_line_failure(zc("--workspace", str(tmp_path / "ws"), "list"), "database")


def test_version_prints_one_line_and_exits_0() -> None:
    result = zc("--version")
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.startswith("zc-sessions ") and result.stdout.count("\n") == 1


def test_usage_errors_exit_2(jsonl_ws: Path) -> None:
    assert zc("--workspace", str(jsonl_ws), "rollback").returncode == 2
    assert zc("frobnicate").returncode == 2


def test_destructive_commands_need_yes_without_a_terminal(jsonl_ws: Path) -> None:
    before = (jsonl_ws / "sessions" / "gw_a1b2c3.jsonl").read_bytes()
    for argv in (("rollback", "gw_a1b2c3"), ("compact", "gw_a1b2c3"), ("delete", "gw_a1b2c3")):
        result = zc("--workspace", str(jsonl_ws), *argv)
        assert result.returncode == 2, argv
        assert "--yes" in result.stderr
    assert (jsonl_ws / "sessions" / "gw_a1b2c3.jsonl").read_bytes() == before


def test_rollback_turn_then_undo_jsonl(jsonl_ws: Path) -> None:
    path = jsonl_ws / "sessions" / "gw_a1b2c3.jsonl"
    before = path.read_bytes()
    report = ok_json("--workspace", str(jsonl_ws), "rollback", "gw_a1b2c3", "--yes", "--json")
    # the last turn: the last user message (index 29) and the answer after it; the torn line
    # behind them goes too, and is reported
    assert [(m["index"], m["role"]) for m in report["removed"]] == [(29, "user"), (30, "assistant")]
    assert [s["reason"] for s in report["removed_lines"]] == ["torn last line"]
    after = path.read_bytes()
    assert before.startswith(after) and len(after) < len(before)
    ok_json("--workspace", str(jsonl_ws), "undo", "gw_a1b2c3", "--json")
    assert path.read_bytes() == before


def test_rollback_messages_and_to(sqlite_ws: Path) -> None:
    ws = str(sqlite_ws)
    report = ok_json(
        "--workspace", ws, "rollback", "gw_named_02", "--messages", "2", "--yes", "--json"
    )
    assert [m["index"] for m in report["removed"]] == [3, 4]
    report = ok_json(
        "--workspace", ws, "rollback", "gw_named_02", "--to", "1", "--dry-run", "--json"
    )
    assert [m["index"] for m in report["removed"]] == [1, 2]
    shown = ok_json("--workspace", ws, "show", "gw_named_02", "--json")
    assert len(shown["messages"]) == 3


def test_rename_sqlite_and_jsonl(sqlite_ws: Path, jsonl_ws: Path) -> None:
    assert zc("--workspace", str(sqlite_ws), "rename", "gw_live_01", "db tuning").returncode == 0
    rows = {r["key"]: r for r in ok_json("--workspace", str(sqlite_ws), "list", "--json")}
    assert rows["gw_live_01"]["name"] == "db tuning"
    assert zc("--workspace", str(jsonl_ws), "rename", "empty", "scratch").returncode == 0
    rows = {r["key"]: r for r in ok_json("--workspace", str(jsonl_ws), "list", "--json")}
    assert rows["empty"]["name"] == "scratch"
    assert not list((jsonl_ws / "sessions").glob("*.jsonl?*"))


def test_compact_jsonl_drops_only_the_corrupt_line(jsonl_ws: Path) -> None:
    path = jsonl_ws / "sessions" / "telegram_100200300.jsonl"
    before = path.read_bytes()
    report = ok_json(
        "--workspace", str(jsonl_ws), "compact", "telegram_100200300", "--yes", "--json"
    )
    assert [s["line"] for s in report["removed_lines"]] == [10]
    assert report["removed"] == []
    assert path.read_bytes() == before.replace(b"{not json at all\n", b"")


def test_delete_then_undo(jsonl_ws: Path) -> None:
    path = jsonl_ws / "sessions" / "discord_guild42_ch7_erin.jsonl"
    before = path.read_bytes()
    assert (
        zc("--workspace", str(jsonl_ws), "delete", "discord_guild42_ch7_erin", "--yes").returncode
        == 0
    )
    assert not path.exists()
    assert zc("--workspace", str(jsonl_ws), "undo").returncode == 0
    assert path.read_bytes() == before


def test_export_formats(sqlite_ws: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.md"
    assert (
        zc("--workspace", str(sqlite_ws), "export", "gw_named_02", "--output", str(out)).returncode
        == 0
    )
    text = out.read_text()
    assert text.startswith("# lisbon-trip") and "## #4 " in text
    data = ok_json("--workspace", str(sqlite_ws), "export", "gw_named_02", "--format", "json")
    assert len(data["messages"]) == 5
    lines = zc("--workspace", str(sqlite_ws), "export", "gw_named_02", "--format", "jsonl").stdout
    assert [json.loads(x)["role"] for x in lines.splitlines()][:2] == ["system", "user"]


def test_read_only_refuses_with_one_line(sqlite_ws: Path) -> None:
    result = zc("--workspace", str(sqlite_ws), "--read-only", "rollback", "gw_live_01", "--yes")
    assert_one_line_failure(result, "read-only")


def test_hostile_queries_never_fail(sqlite_ws: Path, jsonl_ws: Path) -> None:
    for ws in (sqlite_ws, jsonl_ws):
        for q in ['"', "(", "NOT", "-", "a AND", "*", 'tax "forms', "x:y", "NEAR(a b)", "\x1b[2J"]:
            result = zc("--workspace", str(ws), "search", q, "--json")
            assert result.returncode == 0, (q, result.stderr)
            json.loads(result.stdout)


def test_output_never_carries_escape_sequences(jsonl_ws: Path) -> None:
    path = jsonl_ws / "sessions" / "evil.jsonl"
    path.write_text(
        json.dumps({"role": "user", "content": "\x1b]0;pwned\x07\x1b[31mred\u202e"}) + "\n"
    )
    for argv in (("show", "evil"), ("show", "evil", "--json"), ("list",), ("search", "red")):
        result = zc("--workspace", str(jsonl_ws), *argv)
        assert result.returncode == 0, result.stderr
        assert "\x1b" not in result.stdout and "\x07" not in result.stdout
        assert "\u202e" not in result.stdout


def zc_line(content: str, role: str = "user") -> bytes:
    obj = {"role": role, "content": content}
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def test_rollback_of_a_big_session_reads_it_from_the_end(tmp_path: Path) -> None:
    """Too big to count on the way (over 4 MB): --turn and --messages find the cut from the
    end, number what goes back from it and say so; --to counts; undo puts every byte back."""
    sessions = tmp_path / "ws" / "sessions"
    sessions.mkdir(parents=True)
    roles = ("user", "assistant")
    head = b"".join(zc_line(f"m{i} " + "x" * 200, roles[i % 2]) for i in range(25000))
    turn = zc_line("last question") + zc_line('{"tool_calls": []}', "assistant")
    turn += zc_line("3 items recalled", "tool") + zc_line("the answer", "assistant")
    path = sessions / "big.jsonl"
    path.write_bytes(head + b"{unreadable\n" + turn)
    before = path.read_bytes()
    assert len(before) > 4 << 20
    ws = str(tmp_path / "ws")
    plan = ok_json("--workspace", ws, "rollback", "big", "--messages", "2", "--dry-run", "--json")
    assert [(m["index"], m["content"]) for m in plan["removed"]] == [
        (-2, "3 items recalled"),
        (-1, "the answer"),
    ]
    assert plan["warnings"] and "count back from the end" in plan["warnings"][0]
    report = ok_json("--workspace", ws, "rollback", "big", "--turn", "--yes", "--json")
    assert [(m["index"], m["role"]) for m in report["removed"]] == [
        (-4, "user"),
        (-3, "assistant"),
        (-2, "tool"),
        (-1, "assistant"),
    ]
    assert path.read_bytes() == head + b"{unreadable\n"
    ok_json("--workspace", ws, "undo", "big", "--json")
    assert path.read_bytes() == before
    plan = ok_json("--workspace", ws, "rollback", "big", "--to", "25002", "--dry-run", "--json")
    assert [m["index"] for m in plan["removed"]] == [25002, 25003] and not plan["warnings"]
