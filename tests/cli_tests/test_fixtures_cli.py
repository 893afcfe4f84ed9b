"""The command line reads every ZeroClaw-written fixture exactly as ZeroClaw does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from storage.cli import main
from tests.helpers import FIXTURE_NAMES, copy_fixture, expected


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


@pytest.fixture(params=FIXTURE_NAMES)
def fixture_ws(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Path]:
    return request.param, copy_fixture(request.param, tmp_path)


def test_list_gives_exactly_the_expected_keys_in_order(
    fixture_ws: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    name, ws = fixture_ws
    rows = run_json(capsys, "--workspace", str(ws), "list", "--json")
    assert [r["key"] for r in rows] == expected(name)["list"]


def test_show_gives_zeroclaws_messages(
    fixture_ws: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    name, ws = fixture_ws
    exp = expected(name)
    loads = exp.get("load") or exp["load_ts"]
    for key, messages in loads.items():
        shown = run_json(capsys, "--workspace", str(ws), "show", key, "--json")
        got = [{"role": m["role"], "content": m["content"]} for m in shown["messages"]]
        assert got == [{"role": m["role"], "content": m["content"]} for m in messages], key
        assert [m["index"] for m in shown["messages"]] == list(range(len(messages)))


def test_sqlite_list_metadata_matches(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = copy_fixture("sqlite-workspace", tmp_path)
    exp = expected("sqlite-workspace")
    rows = {r["key"]: r for r in run_json(capsys, "--workspace", str(ws), "list", "--json")}
    for meta in exp["list_meta"]:
        row = rows[meta["key"]]
        for field in meta:
            if field != "key":
                assert row[field] == meta[field], (meta["key"], field)
        assert row["backend"] == "sqlite"
    assert {k: rows[k]["name"] for k in rows} == exp["names"]
    running = {r["key"] for r in rows.values() if r["state"] == "running"}
    assert running == {m["key"] for m in exp["running"]}


def test_stuck_follows_the_threshold(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = copy_fixture("sqlite-workspace", tmp_path)
    rows = run_json(capsys, "--workspace", str(ws), "list", "--json")
    assert {r["key"] for r in rows if r["stuck"]} == {"gw_live_01"}  # its turn began days ago
    rows = run_json(capsys, "--workspace", str(ws), "list", "--json", "--stuck-after", "1e12")
    assert not any(r["stuck"] for r in rows)


def test_created_at_is_present_for_sqlite_and_absent_for_jsonl(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sq = copy_fixture("sqlite-workspace", tmp_path)
    shown = run_json(capsys, "--workspace", str(sq), "show", "gw_named_02", "--json")
    exp = expected("sqlite-workspace")["load_ts"]["gw_named_02"]
    assert [m["created_at"] for m in shown["messages"]] == [m["created_at"] for m in exp]
    js = copy_fixture("jsonl-workspace", tmp_path)
    shown = run_json(capsys, "--workspace", str(js), "show", "gw_a1b2c3", "--json")
    assert all(m["created_at"] is None for m in shown["messages"])


def test_show_reports_what_zeroclaw_skips(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = copy_fixture("jsonl-workspace", tmp_path)
    corrupt = run_json(capsys, "--workspace", str(ws), "show", "telegram_100200300", "--json")
    assert [(s["line"], s["reason"]) for s in corrupt["skipped"]] == [(10, "not JSON")]
    torn = run_json(capsys, "--workspace", str(ws), "show", "gw_a1b2c3", "--json")
    assert [(s["line"], s["reason"]) for s in torn["skipped"]] == [(32, "torn last line")]


def test_search_finds_messages_in_sqlite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = copy_fixture("sqlite-workspace", tmp_path)
    hits = run_json(capsys, "--workspace", str(ws), "search", "quokka", "--json")
    assert [(h["key"], h["index"], h["role"]) for h in hits] == [("gw_live_01", 13, "assistant")]
    assert "quokka" in hits[0]["snippet"]
