"""SIGKILL in the middle of compact, rollback, undo and migrate of a 40 MB session.

Each trial runs ``crash_driver`` on a fresh copy and kills it: at an exact step (right before
or after the syscall or journal write that matters) or at a random moment. Afterwards:

- the store is the old state or the new one, never torn;
- the undo journal is neither ahead nor behind: no entry means nothing happened, a ``done``
  entry means the edit happened, a ``pending`` one may go either way;
- ``zc-sessions undo`` (the real CLI) then always leads back to the original bytes or rows;
- migrate leaves the file whole under one of its three names, the rows all there or none,
  and a second ``zc-sessions migrate`` finishes the job.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from storage.errors import StorageError
from storage.journal import Journal, state_dir
from storage.jsonl import JsonlBackend
from tests.trust_tests.conftest import ROOT, cli, zc_line
from tests.unit_storage.sqlite_helpers import fts_integrity_ok

KEY = "big"
LINES = 10_000
BROKEN = range(100, LINES, 1500)
PAD = "y" * 4000
CUT_LINE = 5000  # rollbacks cut where line n5000 starts: message index CUT_INDEX
CUT_INDEX = str(CUT_LINE - sum(1 for b in BROKEN if b < CUT_LINE))
TAIL_LINE = 9000  # the undo trials roll back less: the rollback is not what they test
TAIL_INDEX = str(TAIL_LINE - sum(1 for b in BROKEN if b < TAIL_LINE))


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def points(fast: list[str | None], slow: list[str | None]) -> list[object]:
    """Kill points: ``fast`` ones run by default, all of them under ``pytest -m soak``."""
    return [*fast, *(pytest.param(p, marks=pytest.mark.soak) for p in slow)]


@dataclass(frozen=True)
class BigSession:
    old: bytes  # 40 MB with a few lines ZeroClaw cannot read
    compacted: bytes  # the same without them
    messages: int


@pytest.fixture(scope="module")
def big() -> BigSession:
    lines = [zc_line(f"n{i} {PAD}", ("user", "assistant")[i % 2]) for i in range(LINES)]
    for at in BROKEN:
        lines[at] = b"{broken line\n"
    old = b"".join(lines)
    assert len(old) > 40_000_000
    compacted = b"".join(line for line in lines if line != b"{broken line\n")
    return BigSession(old, compacted, LINES - len(BROKEN))


@dataclass
class Trial:
    root: Path  # the data dir (``--workspace``)
    state: Path  # where the journal is: the CLI's own, under XDG_STATE_HOME

    @property
    def sessions(self) -> Path:
        return self.root / "sessions"

    @property
    def path(self) -> Path:
        return self.sessions / f"{KEY}.jsonl"

    def journal(self) -> Journal:
        return Journal(self.state)

    def live_entries(self) -> list[str]:
        return [e.status for e in self.journal().entries() if e.status != "undone"]


def new_trial(tmp_path: Path, name: str, data: bytes) -> Trial:
    root = tmp_path / name / "data"
    (root / "sessions").mkdir(parents=True)
    (root / "sessions" / f"{KEY}.jsonl").write_bytes(data)
    state = state_dir()  # XDG_STATE_HOME/zc-sessions: the one the CLI uses
    shutil.rmtree(state, ignore_errors=True)
    return Trial(root, state)


def kill_during(
    op: str, args: list[str], state: Path, die_at: str | None, delay: float | None
) -> bool:
    """Run the driver; it dies at ``die_at``, or is SIGKILLed ``delay`` s after it is ready
    (``None``: it runs to the end). True when it was killed before it finished."""
    argv = [
        sys.executable,
        "-m",
        "tests.trust_tests.crash_driver",
        op,
        *args,
        "--state",
        str(state),
    ]
    if die_at:
        argv += ["--die-at", die_at]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    if die_at is None and delay is not None:
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode in (0, -signal.SIGKILL), (proc.returncode, out)
    return proc.returncode == -signal.SIGKILL


def no_strays(trial: Trial) -> None:
    """Nothing ZeroClaw would trip on: no new *.jsonl, .importing or .migrated names."""
    names = sorted(p.name for p in trial.sessions.iterdir() if ".jsonl" in p.name)
    assert names == [f"{KEY}.jsonl"], names


def undo_restores(trial: Trial, original: bytes) -> None:
    """``zc-sessions undo`` after the kill: back to the original bytes, and nothing left to undo."""
    pending = trial.live_entries()
    result = cli(trial.root, "undo", KEY, "--json")
    if pending:
        assert result.code == 0, result
    else:
        assert result.code == 1 and "nothing to undo" in result.err, result
    assert digest(trial.path.read_bytes()) == digest(original), "undo did not restore the bytes"
    assert trial.live_entries() == [], "the journal still has something to undo"
    no_strays(trial)


def check_edit(trial: Trial, old: bytes, new: bytes) -> str:
    """Old or new, never torn; the journal agrees with what happened. Returns which."""
    now = digest(trial.path.read_bytes())
    state = {digest(old): "old", digest(new): "new"}.get(now, "torn")
    assert state != "torn", "the session is neither the old nor the new one"
    statuses = trial.live_entries()
    assert len(statuses) <= 1
    if not statuses:
        assert state == "old", "the edit happened but the journal has no entry (behind)"
    elif statuses == ["done"]:
        assert state == "new", "the journal says done but the edit did not happen (ahead)"
    no_strays(trial)
    return state


# --- compact ----------------------------------------------------------------------------------

COMPACT_POINTS = [
    "journal.begin:1:before",  # temp file written, nothing journalled
    "journal.begin:1:after",  # journalled (pending), not swapped
    "replace:1:before",
    "replace:1:after",  # swapped, still pending
    "journal.set_status:1:before",
    "journal.set_status:1:after",
]


@pytest.mark.parametrize(
    "die_at",
    points(["replace:1:after", None], [*COMPACT_POINTS, None, None]),
)
def test_compact_killed(big: BigSession, tmp_path: Path, die_at: str | None) -> None:
    trial = new_trial(tmp_path, "compact", big.old)
    delay = random.Random(str(die_at) + str(tmp_path)).uniform(0.0, 0.5)
    kill_during("compact", [str(trial.sessions), KEY], trial.state, die_at, delay)
    check_edit(trial, big.old, big.compacted)
    undo_restores(trial, big.old)


# --- rollback ---------------------------------------------------------------------------------

ROLLBACK_POINTS = [
    "journal.begin:1:before",
    "journal.begin:1:after",
    "ftruncate:1:before",
    "ftruncate:1:after",  # cut, still pending
    "journal.set_status:1:before",
]


@pytest.mark.parametrize("die_at", points(["ftruncate:1:after", None], [*ROLLBACK_POINTS, None]))
def test_rollback_killed(big: BigSession, tmp_path: Path, die_at: str | None) -> None:
    trial = new_trial(tmp_path, "rollback", big.old)
    cut = big.old.index(zc_line(f"n{CUT_LINE} {PAD}", "user"))
    delay = random.Random(str(die_at) + str(tmp_path)).uniform(0.0, 0.8)
    kill_during("rollback", [str(trial.sessions), KEY, CUT_INDEX], trial.state, die_at, delay)
    check_edit(trial, big.old, big.old[:cut])
    undo_restores(trial, big.old)


@pytest.mark.parametrize("die_at", points(["ftruncate:1:after", None], [*ROLLBACK_POINTS, None]))
def test_rollback_from_the_end_killed(big: BigSession, tmp_path: Path, die_at: str | None) -> None:
    """The same cut found from the end (``rollback --messages N``), the front never counted."""
    trial = new_trial(tmp_path, "rollback-last", big.old)
    cut = big.old.index(zc_line(f"n{CUT_LINE} {PAD}", "user"))
    delay = random.Random(str(die_at) + str(tmp_path)).uniform(0.0, 0.8)
    last = str(big.messages - int(CUT_INDEX))
    kill_during("rollback-last", [str(trial.sessions), KEY, last], trial.state, die_at, delay)
    check_edit(trial, big.old, big.old[:cut])
    undo_restores(trial, big.old)


# --- undo -------------------------------------------------------------------------------------

UNDO_POINTS = {
    "write:1:after": False,  # part of the lines are written to the new file
    "journal.set_status:1:before": True,  # the new file is ready, not yet noted in the entry
    "journal.set_status:1:after": False,  # noted, not swapped
    "replace:1:after": True,  # swapped, the entry still says done
    "journal.set_status:2:before": False,  # carried over, not yet marked undone
    None: True,
}


@pytest.mark.parametrize(
    ("die_at", "grown"),
    [
        (die_at, grown)
        if die_at in ("write:1:after", "replace:1:after")
        else pytest.param(die_at, grown, marks=pytest.mark.soak)
        for die_at, grown in UNDO_POINTS.items()
    ],
)
def test_undo_killed(big: BigSession, tmp_path: Path, die_at: str | None, grown: bool) -> None:
    """A rollback, then its undo is killed; ``zc-sessions undo`` again must end at the
    original bytes, each line once. ``grown``: the daemon appended after the rollback, so the
    lines go back in front of what it wrote."""
    trial = new_trial(tmp_path, "undo", big.old)
    JsonlBackend(trial.sessions, journal=trial.journal()).rollback(KEY, int(TAIL_INDEX))
    cut = big.old.index(zc_line(f"n{TAIL_LINE} {PAD}", "user"))
    assert trial.path.read_bytes() == big.old[:cut]
    late = zc_line("written after the rollback") if grown else b""
    if late:
        with trial.path.open("ab") as f:
            f.write(late)
    rolled, restored = big.old[:cut] + late, big.old + late
    delay = random.Random(str(die_at) + str(tmp_path)).uniform(0.0, 0.5)
    kill_during("undo", [str(trial.sessions)], trial.state, die_at, delay)
    now = digest(trial.path.read_bytes())
    assert now in (digest(rolled), digest(restored)), "the undo left a torn file"
    (entry,) = trial.journal().entries()
    if entry.status == "undone":
        assert now == digest(restored)
    # whatever the kill left, the CLI's undo ends at the original lines, each exactly once
    result = cli(trial.root, "undo", KEY, "--json")
    assert result.code == (1 if entry.status == "undone" else 0), result
    assert digest(trial.path.read_bytes()) == digest(restored), "undo duplicated or lost lines"
    assert trial.live_entries() == []
    no_strays(trial)
    assert not list(trial.sessions.glob(".*.zc-restore-*")), "an undo left its temp file"


# --- migrate ----------------------------------------------------------------------------------

MIGRATE_POINTS = [
    "rename:1:before",
    "rename:1:after",  # staged as .importing, nothing imported
    "link:1:before",  # committed, not archived
    "link:1:after",  # .importing and .migrated both there
    "unlink:1:before",
    "unlink:1:after",
]


def db_rows(db: Path) -> tuple[int, int]:
    """(rows of the session, receipts); (0, 0) without a database."""
    if not db.exists():
        return 0, 0
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        if "sessions" not in tables:
            return 0, 0
        (rows,) = conn.execute(
            "SELECT COUNT(*) FROM sessions WHERE session_key=?", (KEY,)
        ).fetchone()
        (receipts,) = conn.execute("SELECT COUNT(*) FROM jsonl_import_receipts").fetchone()
        return int(rows), int(receipts)
    finally:
        conn.close()


def check_migrate(trial: Trial, big: BigSession) -> None:
    names = {p.name: p for p in trial.sessions.iterdir() if ".jsonl" in p.name}
    holders = [p for p in names.values() if digest(p.read_bytes()) == digest(big.old)]
    assert holders, f"the JSONL bytes are gone: {sorted(names)}"
    assert set(names) <= {f"{KEY}.jsonl", f"{KEY}.jsonl.importing", f"{KEY}.jsonl.migrated"}
    rows, receipts = db_rows(trial.sessions / "sessions.db")
    assert (rows, receipts) in ((0, 0), (big.messages, 1)), "a torn import"
    if f"{KEY}.jsonl.migrated" in names:
        assert rows == big.messages, "archived but not imported"
    if f"{KEY}.jsonl" in names:
        assert rows == 0 and len(names) == 1, "imported while still live"


@pytest.mark.parametrize("die_at", points(["link:1:after"], [*MIGRATE_POINTS, None, None]))
def test_migrate_killed(big: BigSession, tmp_path: Path, die_at: str | None) -> None:
    trial = new_trial(tmp_path, "migrate", big.old)
    delay = random.Random(str(die_at) + str(tmp_path)).uniform(0.0, 1.2)
    kill_during("migrate", [str(trial.sessions)], trial.state, die_at, delay)
    check_migrate(trial, big)
    result = cli(trial.root, "migrate")
    assert result.code == 0, result
    names = sorted(p.name for p in trial.sessions.iterdir() if ".jsonl" in p.name)
    assert names == [f"{KEY}.jsonl.migrated"], names
    assert (trial.sessions / names[0]).read_bytes() == big.old
    assert db_rows(trial.sessions / "sessions.db") == (big.messages, 1)
    db = trial.sessions / "sessions.db"
    ((count,),) = (
        sqlite3.connect(db)
        .execute("SELECT message_count FROM session_metadata WHERE session_key = ?", (KEY,))
        .fetchall()
    )
    assert count == big.messages
    assert fts_integrity_ok(db)


# --- SQLite -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with one 40 MB session (10,000 rows), built once."""
    from tests.trust_tests.conftest import new_sqlite_store

    db = new_sqlite_store(tmp_path_factory.mktemp("bigdb") / "sessions")
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN")
    for i in range(LINES):
        stamp = f"2026-03-16T16:{i // 3600 % 60:02d}:{i // 60 % 60:02d}.{i % 60:03d}+00:00"
        conn.execute(
            "INSERT INTO sessions (session_key, role, content, created_at) VALUES (?, ?, ?, ?)",
            (KEY, ("user", "assistant")[i % 2], f"n{i} {PAD}", stamp),
        )
    conn.execute(
        "INSERT INTO session_metadata (session_key, created_at, last_activity, message_count)"
        " VALUES (?, '2026-03-16T16:00:00+00:00', '2026-03-16T16:59:59+00:00', ?)",
        (KEY, LINES),
    )
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return db


def rows_and_count(db: Path) -> tuple[list[tuple[object, ...]], int]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT * FROM sessions ORDER BY id").fetchall()
        ((count,),) = conn.execute("SELECT message_count FROM session_metadata").fetchall()
        return rows, int(count)
    finally:
        conn.close()


SQLITE_POINTS = [
    "journal.begin:1:after",
    "journal.set_status:1:before",
    "journal.set_status:1:after",
]


@pytest.mark.parametrize("die_at", points(["journal.set_status:1:before"], [*SQLITE_POINTS, None]))
def test_sqlite_rollback_killed(big_db: Path, tmp_path: Path, die_at: str | None) -> None:
    root = tmp_path / "data"
    (root / "sessions").mkdir(parents=True)
    db = root / "sessions" / "sessions.db"
    shutil.copy(big_db, db)
    original, count = rows_and_count(db)
    state = state_dir()
    delay = random.Random(str(die_at) + str(tmp_path)).uniform(0.0, 0.6)
    kill_during("sqlite-rollback", [str(db), KEY, "5000"], state, die_at, delay)
    rows, now_count = rows_and_count(db)
    assert (len(rows), now_count) in ((LINES, LINES), (5000, 5000)), "a torn rollback"
    assert rows == original[: len(rows)]
    statuses = [e.status for e in Journal(state).entries()]
    if not statuses:
        assert len(rows) == LINES, "the journal is behind"
    elif statuses == ["done"]:
        assert len(rows) == 5000, "the journal is ahead"
    result = cli(root, "undo", KEY, "--json")
    assert result.code == (0 if statuses else 1), result
    assert rows_and_count(db) == (original, count)
    assert fts_integrity_ok(db)


# --- soak: many random kill points -----------------------------------------------------------


def soak_delays(n: int, span: float) -> Iterator[float]:
    rng = random.Random(20261125)
    return (rng.uniform(0.0, span) for _ in range(n))


@pytest.mark.soak
@pytest.mark.parametrize("delay", list(soak_delays(40, 0.6)))
def test_compact_killed_soak(big: BigSession, tmp_path: Path, delay: float) -> None:
    trial = new_trial(tmp_path, "compact", big.old)
    kill_during("compact", [str(trial.sessions), KEY], trial.state, None, delay)
    check_edit(trial, big.old, big.compacted)
    undo_restores(trial, big.old)


@pytest.mark.soak
@pytest.mark.parametrize("delay", list(soak_delays(40, 1.0)))
def test_rollback_killed_soak(big: BigSession, tmp_path: Path, delay: float) -> None:
    trial = new_trial(tmp_path, "rollback", big.old)
    cut = big.old.index(zc_line(f"n{CUT_LINE} {PAD}", "user"))
    kill_during("rollback", [str(trial.sessions), KEY, CUT_INDEX], trial.state, None, delay)
    check_edit(trial, big.old, big.old[:cut])
    undo_restores(trial, big.old)


@pytest.mark.soak
@pytest.mark.parametrize("delay", list(soak_delays(40, 1.5)))
def test_migrate_killed_soak(big: BigSession, tmp_path: Path, delay: float) -> None:
    trial = new_trial(tmp_path, "migrate", big.old)
    kill_during("migrate", [str(trial.sessions)], trial.state, None, delay)
    check_migrate(trial, big)
    assert cli(trial.root, "migrate").code == 0
    assert db_rows(trial.sessions / "sessions.db") == (big.messages, 1)


def test_an_undo_that_did_not_swap_forgets_its_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The journal notes the temp file's inode before the swap, so that an undo killed after it
    is recognised as done. An undo that failed before it (the session changed) must forget the
    inode: once freed, it may be reused by a later file, which would then look restored."""
    from storage import jsonl as jsonl_module

    sessions = tmp_path / "sessions"
    sessions.mkdir()
    path = sessions / f"{KEY}.jsonl"
    original = b"".join(zc_line(f"m{i}") for i in range(6))
    path.write_bytes(original)
    journal = Journal()
    backend = JsonlBackend(sessions, journal=journal)
    entry_id = str(backend.rollback(KEY, 3).journal_id)
    monkeypatch.setattr(jsonl_module, "_only_grown", lambda *args: False)
    with pytest.raises(StorageError, match="changed during the undo"):
        backend.restore(entry_id)
    entry = journal.get(entry_id)
    assert entry.status == "done" and entry.payload["restore_inode"] is None
    monkeypatch.undo()
    backend.restore(entry_id)
    assert path.read_bytes() == original
    assert not list(sessions.glob(".*.tmp"))
