"""The same contract, run against both stores: what the browser and the CLI rely on."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.backend import SessionBackend
from storage.errors import ReadOnlyError, SessionNotFound
from storage.journal import Journal
from storage.models import ChatMessage
from storage.workspace import open_backend
from tests.helpers import copy_fixture

KEY = "telegram_contract_42"


def conversation(n: int) -> list[ChatMessage]:
    roles = ["user", "assistant"]
    return [ChatMessage(role=roles[i % 2], content=f"message {i} about otters") for i in range(n)]


def make_store(kind: str, tmp_path: Path, *, read_only: bool = False) -> SessionBackend:
    if kind == "sqlite":
        sessions = copy_fixture("sqlite-workspace", tmp_path) / "sessions"
    else:
        sessions = tmp_path / "sessions"
        sessions.mkdir()
    return open_backend(kind, sessions, read_only=read_only, journal=Journal(tmp_path / "state"))  # type: ignore[arg-type]


@pytest.fixture(params=["jsonl", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SessionBackend]:
    backend = make_store(request.param, tmp_path)
    for m in conversation(10):
        backend.append(KEY, m)
    yield backend
    backend.close()


def pairs(backend: SessionBackend, key: str = KEY) -> list[tuple[str, str]]:
    return [(m.role, m.content) for m in backend.load(key)]


def test_append_then_load_round_trips(store: SessionBackend) -> None:
    assert pairs(store) == [(m.role, m.content) for m in conversation(10)]
    assert KEY in store.list_sessions()
    assert store.session_exists(KEY)
    assert store.count_messages(KEY) == 10


def test_tail_and_range_agree_with_load(store: SessionBackend) -> None:
    full = store.load_with_timestamps(KEY)
    tail = store.read_tail(KEY, 3)
    assert [(m.role, m.content) for m in tail.messages] == [(m.role, m.content) for m in full[-3:]]
    middle = store.read_range(KEY, 4, 7)
    assert [m.index for m in middle] == [4, 5, 6]
    assert [m.content for m in middle] == [m.content for m in full[4:7]]


def test_rollback_removes_from_index_and_undo_restores(store: SessionBackend) -> None:
    before = pairs(store)
    plan = store.rollback(KEY, 7, dry_run=True)
    assert plan.dry_run and [m.index for m in plan.removed] == [7, 8, 9]
    assert pairs(store) == before
    report = store.rollback(KEY, 7, expected=3)
    assert [m.content for m in report.removed] == [c for _, c in before[7:]]
    assert pairs(store) == before[:7]
    assert report.journal_id is not None
    store.restore(report.journal_id)
    assert pairs(store) == before


def test_undo_after_growth_puts_messages_back_at_their_place(store: SessionBackend) -> None:
    before = pairs(store)
    report = store.rollback(KEY, 8)
    store.append(KEY, ChatMessage(role="user", content="written after the rollback"))
    assert report.journal_id is not None
    undo = store.restore(report.journal_id)
    assert pairs(store) == [*before, ("user", "written after the rollback")]
    assert undo.warnings  # it says it re-inserted in front of newer messages


def test_rollback_refuses_when_the_count_changed(store: SessionBackend) -> None:
    from storage.errors import SessionChangedError

    with pytest.raises(SessionChangedError):
        store.rollback(KEY, 7, expected=2)
    assert len(pairs(store)) == 10


def test_remove_and_update_last(store: SessionBackend) -> None:
    store.remove_last(KEY)
    assert len(pairs(store)) == 9
    store.update_last(KEY, ChatMessage(role="assistant", content="rewritten zebra"))
    assert pairs(store)[-1] == ("assistant", "rewritten zebra")
    hits = list(store.search_messages("zebra", key=KEY))
    assert [(h.index, h.role) for h in hits] == [(8, "assistant")]


def test_names(store: SessionBackend) -> None:
    store.set_session_name(KEY, "otter research")
    assert store.get_session_name(KEY) == "otter research"
    store.set_session_name(KEY, "")
    assert store.get_session_name(KEY) is None


def test_message_search_semantics(store: SessionBackend) -> None:
    store.append(KEY, ChatMessage(role="user", content="the quick brown fox"))
    store.append(KEY, ChatMessage(role="assistant", content="brown quick foxes"))

    def found(q: str) -> list[int]:
        return [h.index for h in store.search_messages(q, key=KEY)]

    assert found("quick brown") == [11, 10]  # AND, newest first
    assert found('"quick brown"') == [10]  # exact phrase
    assert found("fox*") == [11, 10]  # prefix
    assert found("fox") == [10]
    for hostile in ['"', "(", ")", "NOT", "-", 'a "b', "NEAR(", "*", "^x", "col:x", "", "AND OR"]:
        list(store.search_messages(hostile, key=KEY))  # never raises


def test_search_can_be_cancelled(store: SessionBackend) -> None:
    cancel = threading.Event()
    cancel.set()
    assert list(store.search_messages("otters", cancel=cancel)) == []


def test_delete_and_undo(store: SessionBackend) -> None:
    before = pairs(store)
    report = store.delete_session(KEY)
    assert not store.session_exists(KEY)
    with pytest.raises(SessionNotFound):
        store.resolve_key(KEY)
    assert report.journal_id is not None
    store.restore(report.journal_id)
    assert pairs(store) == before


def test_change_feed(store: SessionBackend) -> None:
    cursor = store.cursor(KEY)
    assert store.changes_since(KEY, cursor).messages == ()
    store.append(KEY, ChatMessage(role="user", content="fresh"))
    changes = store.changes_since(KEY, cursor)
    assert [(m.index, m.content) for m in changes.messages] == [(10, "fresh")]
    assert changes.cursor != cursor and not changes.reset


def tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        h.update(str(p.relative_to(root)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.mark.parametrize("kind", ["jsonl", "sqlite"])
def test_read_only_refuses_edits_and_changes_no_byte(kind: str, tmp_path: Path) -> None:
    writer = make_store(kind, tmp_path)
    for m in conversation(5):
        writer.append(KEY, m)
    writer.close()
    sessions = writer.sessions_dir
    digest = tree_digest(sessions)
    ro = open_backend(kind, sessions, read_only=True, journal=Journal(tmp_path / "state"))  # type: ignore[arg-type]
    assert len(ro.load(KEY)) == 5
    list(ro.search_messages("otters"))
    for edit in (
        lambda: ro.rollback(KEY, 2),
        lambda: ro.compact(KEY),
        lambda: ro.delete_session(KEY),
        lambda: ro.set_session_name(KEY, "x"),
        lambda: ro.append(KEY, ChatMessage(role="user", content="x")),
        lambda: ro.remove_last(KEY),
        lambda: ro.clear_messages(KEY),
    ):
        with pytest.raises(ReadOnlyError):
            edit()
    ro.close()
    assert tree_digest(sessions) == digest


def test_the_first_page_is_the_newest_sessions_and_the_total(store: SessionBackend) -> None:
    import os

    for i in range(5):
        store.append(f"k{i}", ChatMessage(role="user", content="hi"))
        path = store.sessions_dir / f"k{i}.jsonl"
        if path.exists():  # JSONL activity is the file's mtime: make the order certain
            os.utime(path, ns=(0, 2_000_000_000_000_000_000 + i))
    full = {m.key: m for m in store.list_sessions_with_metadata()}
    newest, total = store.list_newest(2)
    assert [m.key for m in newest] == ["k4", "k3"] and total == len(full)
    assert all(m == full[m.key] for m in newest)


def test_one_row_of_the_listing_without_counting(store: SessionBackend) -> None:
    listed = {m.key: m for m in store.list_sessions_with_metadata()}
    one = store.list_one(KEY)
    assert one is not None and one == listed[KEY]
    assert store.list_one("no_such_session") is None
