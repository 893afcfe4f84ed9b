"""JSONL -> SQLite import, step for step as ZeroClaw's current ``migrate_from_jsonl`` does it.

For each ``X.jsonl``: stage it as ``X.jsonl.importing``, import its valid messages under key
``X`` in one transaction (one ``created_at`` for the whole file), upsert the metadata, record a
receipt (SHA-256 and length of the file), commit, then archive it as ``X.jsonl.migrated``.
A leftover ``.importing`` file (a crash) is imported, or recognised by its receipt, and finished.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from storage.errors import StorageError
from storage.journal import Journal, fsync_dir
from storage.models import ChatMessage
from storage.sqlite import (
    BUSY_TIMEOUT_MS,
    SqliteBackend,
    ensure_schema,
    fts_index_ok,
    storage_error,
)
from storage.zcformat import LineProblem, now_rfc3339, parse_line

DB_NAME = "sessions.db"
Status = Literal["imported", "already imported", "would import", "refused", "failed"]


class MigratedFile(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: str
    key: str
    status: Status
    messages: int = 0
    skipped_lines: int = 0
    detail: str = ""


class MigrateReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    sessions_dir: str
    dry_run: bool = False
    files: tuple[MigratedFile, ...] = ()

    def summary(self) -> str:
        if not self.files:
            return "no JSONL sessions to import"
        done = [f for f in self.files if f.status in ("imported", "would import")]
        verb = "would import" if self.dry_run else "imported"
        parts = [
            f"{verb} {len(done)} sessions ({sum(f.messages for f in done)} messages, "
            f"{sum(f.skipped_lines for f in done)} unreadable lines left out)"
        ]
        parts += [
            f"{f.source}: {f.status}" + (f" ({f.detail})" if f.detail else "")
            for f in self.files
            if f not in done
        ]
        return "; ".join(parts)


@dataclass(frozen=True)
class Candidate:
    source: str  # X.jsonl
    staged: bool  # found as X.jsonl.importing

    @property
    def key(self) -> str:
        return self.source.removesuffix(".jsonl")

    def live(self, folder: Path) -> Path:
        return folder / self.source

    def staging(self, folder: Path) -> Path:
        return folder / f"{self.source}.importing"

    def archive(self, folder: Path) -> Path:
        return folder / f"{self.source}.migrated"


@dataclass(frozen=True)
class Parsed:
    messages: list[ChatMessage]
    skipped: int
    substantive: bool  # any line that is not blank: an all-invalid file is refused


class Refused(Exception):
    """This file is left as it was; the reason goes into the report."""


def candidates(folder: Path) -> list[Candidate]:
    """Staged imports first (they may already be committed), then live files, by name."""
    found: list[Candidate] = []
    for path in folder.iterdir():
        name = path.name
        if name.endswith(".jsonl.importing"):
            found.append(Candidate(name.removesuffix(".importing"), staged=True))
        elif name.endswith(".jsonl") and path.is_file():
            found.append(Candidate(name, staged=False))
    return sorted(found, key=lambda c: (not c.staged, c.source))


def fingerprint(path: Path) -> tuple[str, int]:
    digest, length = hashlib.sha256(), 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 16):
            digest.update(chunk)
            length += len(chunk)
    return digest.hexdigest(), length


def parse_file(path: Path) -> Parsed:
    """ZeroClaw's import loop: every line its reader accepts, nothing else."""
    messages: list[ChatMessage] = []
    skipped, substantive = 0, False
    for raw in path.read_bytes().split(b"\n"):
        result = parse_line(raw)
        if isinstance(result, LineProblem):
            if result.reason != "blank":
                skipped += 1
                substantive = True
            continue
        substantive = True
        messages.append(result)
    return Parsed(messages, skipped, substantive)


def migrate(
    sessions_dir: Path, *, dry_run: bool = False, journal: Journal | None = None
) -> MigrateReport:
    """Import every JSONL session of ``sessions_dir`` into its ``sessions.db``.

    ``journal`` is accepted for symmetry with the edits: an import removes nothing (the file
    stays as ``.migrated``), so nothing is journalled.
    """
    del journal
    todo = candidates(sessions_dir)
    if not todo:
        return MigrateReport(sessions_dir=str(sessions_dir), dry_run=dry_run)
    run = _plan if dry_run else _import_all
    return MigrateReport(
        sessions_dir=str(sessions_dir), dry_run=dry_run, files=tuple(run(sessions_dir, todo))
    )


# --- dry run --------------------------------------------------------------------------------


def _plan(folder: Path, todo: list[Candidate]) -> list[MigratedFile]:
    db = folder / DB_NAME
    store = SqliteBackend(db, read_only=True) if db.is_file() else None
    try:
        return [_plan_one(folder, c, store) for c in todo]
    finally:
        if store is not None:
            store.close()


def _plan_one(folder: Path, cand: Candidate, store: SqliteBackend | None) -> MigratedFile:
    path = cand.staging(folder) if cand.staged else cand.live(folder)
    try:
        _check_names(folder, cand)
        receipt = store.import_receipt(cand.source) if store else None
        if receipt is not None:
            _check_receipt(cand, receipt, fingerprint(path))
            return MigratedFile(source=cand.source, key=cand.key, status="already imported")
        if store is not None and store.session_exists(cand.key):
            raise Refused(f"session {cand.key!r} already exists in {DB_NAME}")
        parsed = parse_file(path)
        _check_parsed(cand, parsed)
    except Refused as why:
        return MigratedFile(source=cand.source, key=cand.key, status="refused", detail=str(why))
    return MigratedFile(
        source=cand.source,
        key=cand.key,
        status="would import",
        messages=len(parsed.messages),
        skipped_lines=parsed.skipped,
    )


# --- the import ---------------------------------------------------------------------------------


def _connect(db: Path) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(db, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    except sqlite3.Error as err:
        raise storage_error(err, db) from err
    try:
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        _prepare_schema(conn)
    except sqlite3.Error as err:
        conn.close()
        raise storage_error(err, db) from err
    return conn


def _prepare_schema(conn: sqlite3.Connection) -> None:
    """ZeroClaw's startup schema; a stale index is rebuilt before sessions_au can trip on it."""
    names = {n for (n,) in conn.execute("SELECT name FROM sqlite_master")}
    if "sessions_fts" in names and "sessions_au" not in names and not fts_index_ok(conn):
        conn.execute("INSERT INTO sessions_fts(sessions_fts) VALUES('rebuild')")
    ensure_schema(conn)
    conn.execute("PRAGMA synchronous=NORMAL")


def _import_all(folder: Path, todo: list[Candidate]) -> list[MigratedFile]:
    conn = _connect(folder / DB_NAME)
    try:
        return [_import_guarded(conn, folder, c) for c in todo]
    finally:
        conn.close()


def _import_guarded(conn: sqlite3.Connection, folder: Path, cand: Candidate) -> MigratedFile:
    try:
        return _import_one(conn, folder, cand)
    except Refused as why:
        return MigratedFile(source=cand.source, key=cand.key, status="refused", detail=str(why))
    except (OSError, sqlite3.Error, StorageError) as err:
        detail = (
            str(storage_error(err, folder / DB_NAME))
            if isinstance(err, sqlite3.Error)
            else str(err)
        )
        return MigratedFile(source=cand.source, key=cand.key, status="failed", detail=detail)


def _import_one(conn: sqlite3.Connection, folder: Path, cand: Candidate) -> MigratedFile:
    _check_names(folder, cand)
    staging = cand.staging(folder)
    if not cand.staged:
        os.rename(cand.live(folder), staging)
        fsync_dir(folder)
    try:
        stamp = fingerprint(staging)
        outcome = _commit_import(conn, cand, staging, stamp)
    except BaseException:
        _unstage(folder, cand)
        raise
    try:
        _archive(folder, cand, stamp)
    except (Refused, OSError) as err:
        return outcome.model_copy(update={"detail": f"committed, but not archived: {err}"})
    return outcome


def _commit_import(
    conn: sqlite3.Connection, cand: Candidate, staging: Path, stamp: tuple[str, int]
) -> MigratedFile:
    conn.execute("PRAGMA synchronous=FULL")  # as ZeroClaw: the receipt must survive a crash
    conn.execute("BEGIN IMMEDIATE")
    try:
        outcome = _insert(conn, cand, staging, stamp)
        conn.execute("COMMIT")
        return outcome
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.execute("PRAGMA synchronous=NORMAL")


def _insert(
    conn: sqlite3.Connection, cand: Candidate, staging: Path, stamp: tuple[str, int]
) -> MigratedFile:
    receipt = _receipt(conn, cand.source)
    if receipt is not None:
        _check_receipt(cand, receipt, stamp)
        return MigratedFile(source=cand.source, key=cand.key, status="already imported")
    if _key_in_use(conn, cand.key):
        raise Refused(f"session {cand.key!r} already exists in {DB_NAME}")
    parsed = parse_file(staging)
    _check_parsed(cand, parsed)
    now = now_rfc3339()
    conn.executemany(
        "INSERT INTO sessions (session_key, role, content, created_at) VALUES (?1, ?2, ?3, ?4)",
        [(cand.key, m.role, m.content, now) for m in parsed.messages],
    )
    conn.execute(
        "INSERT INTO session_metadata (session_key, created_at, last_activity, message_count)"
        " VALUES (?1, ?2, ?3, ?4)",
        (cand.key, now, now, len(parsed.messages)),
    )
    conn.execute(
        "INSERT INTO jsonl_import_receipts"
        " (source_name, session_key, source_hash, source_len, imported_at) VALUES (?, ?, ?, ?, ?)",
        (cand.source, cand.key, stamp[0], stamp[1], now),
    )
    return MigratedFile(
        source=cand.source,
        key=cand.key,
        status="imported",
        messages=len(parsed.messages),
        skipped_lines=parsed.skipped,
    )


def _receipt(conn: sqlite3.Connection, source: str) -> tuple[str, str, int] | None:
    row = conn.execute(
        "SELECT session_key, source_hash, source_len FROM jsonl_import_receipts"
        " WHERE source_name = ?",
        (source,),
    ).fetchone()
    return (str(row[0]), str(row[1]), int(row[2])) if row else None


def _key_in_use(conn: sqlite3.Connection, key: str) -> bool:
    row = conn.execute(
        "SELECT EXISTS(SELECT 1 FROM sessions WHERE session_key = ?1)"
        " OR EXISTS(SELECT 1 FROM session_metadata WHERE session_key = ?1)",
        (key,),
    ).fetchone()
    return bool(row[0])


# --- the rules ZeroClaw refuses by ---------------------------------------------------------------


def _check_names(folder: Path, cand: Candidate) -> None:
    live, staging = cand.live(folder), cand.staging(folder)
    if live.exists() and staging.exists():
        raise Refused(f"both {live.name} and {staging.name} exist; which one is current?")
    if not cand.staged and cand.archive(folder).exists():
        raise Refused(f"{cand.archive(folder).name} already exists")


def _check_receipt(cand: Candidate, receipt: tuple[str, str, int], stamp: tuple[str, int]) -> None:
    if receipt != (cand.key, *stamp):
        raise Refused("the file differs from the one its import receipt records")


def _check_parsed(cand: Candidate, parsed: Parsed) -> None:
    if not parsed.messages and parsed.substantive:
        raise Refused(f"{cand.source} holds no message ZeroClaw can read")


def _unstage(folder: Path, cand: Candidate) -> None:
    """Put a file whose import did not commit back where it was."""
    live, staging = cand.live(folder), cand.staging(folder)
    if not cand.staged and staging.exists() and not live.exists():
        os.rename(staging, live)
        fsync_dir(folder)


def _archive(folder: Path, cand: Candidate, stamp: tuple[str, int]) -> None:
    """``.importing`` -> ``.migrated``, never clobbering an archive: hard link, check, unlink."""
    staging, archive = cand.staging(folder), cand.archive(folder)
    if not archive.exists():
        os.link(staging, archive)
        fsync_dir(folder)
    if fingerprint(archive) != stamp:
        raise Refused(
            f"{archive.name} differs from the imported file; left {staging.name} in place"
        )
    staging.unlink()
    fsync_dir(folder)
