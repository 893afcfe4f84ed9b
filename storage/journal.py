"""The undo journal: what every destructive edit removed, kept outside ``sessions/``.

Entries live in ``$XDG_STATE_HOME/zc-sessions/journal/`` (default ``~/.local/state``). An entry is
written and fsynced as ``pending`` before the edit touches the store and marked ``done`` after it,
so a crash leaves at worst a pending entry that the owning backend can check against the store.
Large removed payloads (bytes of a JSONL file) go to a ``.bin`` file beside the entry.

An entry file is the edge: pydantic checks it when read and writes it, imported on first use so
that commands which only read sessions never load it.
"""

from __future__ import annotations

import functools
import json
import math
import os
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from storage.errors import StorageError
from storage.models import BackendName, RemovedMessage

if TYPE_CHECKING:
    from pydantic import TypeAdapter

Status = Literal["pending", "done", "undone"]


def state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "zc-sessions"


@dataclass(frozen=True, slots=True, kw_only=True)
class JournalEntry:
    id: str
    created_at: str
    store: str  # the resolved sessions/ folder the edit was made in
    backend: BackendName
    key: str
    action: str
    status: Status = "pending"
    removed: tuple[RemovedMessage, ...] = ()
    payload: dict[str, Any] = field(default_factory=dict, hash=False)
    has_blob: bool = False


@functools.cache
def _entry_format() -> TypeAdapter[JournalEntry]:
    from pydantic import TypeAdapter

    return TypeAdapter(JournalEntry)


def prepare() -> None:
    """Load what reading entries needs now (pydantic: tens of ms), not at the first undo."""
    _entry_format()


def _plain(value: Any) -> Any:
    """``value`` as JSON has it, the way pydantic writes it: lists for tuples, text for UTF-8
    bytes, null for a float that is not finite."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.decode()  # not UTF-8: the edit fails, as pydantic's writer makes it
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def entry_json(entry: JournalEntry) -> bytes:
    """The entry file's bytes. Written with the standard library, so an edit never waits for
    pydantic to load; ``parse_entry`` reads them back through pydantic (the checked edge)."""
    text = json.dumps(_plain(asdict(entry)), ensure_ascii=False, separators=(",", ":"))
    return text.encode()


def parse_entry(data: bytes) -> JournalEntry:
    """An entry file's content, checked; raises ``ValueError`` when it is not a valid entry."""
    return _entry_format().validate_json(data)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _token(nbytes: int) -> str:
    import secrets  # it loads hashlib, which commands that only read never need

    return secrets.token_hex(nbytes)


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` through a temp file in the same folder, fsync, rename."""
    tmp = path.with_name(f".{path.name}.{_token(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


class Journal:
    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or state_dir()) / "journal"

    def _path(self, entry_id: str) -> Path:
        if not entry_id.replace("-", "").isalnum():
            raise StorageError(f"bad journal id {entry_id!r}")
        return self.root / f"{entry_id}.json"

    def blob_path(self, entry_id: str) -> Path:
        return self._path(entry_id).with_suffix(".bin")

    def begin(
        self,
        *,
        store: Path,
        backend: BackendName,
        key: str,
        action: str,
        removed: tuple[RemovedMessage, ...] = (),
        payload: dict[str, Any] | None = None,
        blob: bytes | None = None,
    ) -> JournalEntry:
        """Durably record an edit that is about to happen."""
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as err:
            raise StorageError(
                f"cannot create the undo journal at {self.root}: {err.strerror}"
            ) from err
        now = datetime.now(UTC)
        entry = JournalEntry(
            id=f"{now:%Y%m%dT%H%M%S%f}-{_token(3)}",
            created_at=now.isoformat(),
            store=str(store.resolve()),
            backend=backend,
            key=key,
            action=action,
            removed=removed,
            payload=payload or {},
            has_blob=blob is not None,
        )
        try:
            if blob is not None:
                write_atomic(self.blob_path(entry.id), blob)
            self._write(entry)
        except OSError as err:
            raise StorageError(f"cannot write the undo journal: {err.strerror}") from err
        return entry

    def _write(self, entry: JournalEntry) -> None:
        write_atomic(self._path(entry.id), entry_json(entry))

    def set_status(self, entry: JournalEntry, status: Status, **payload: Any) -> JournalEntry:
        new = replace(entry, status=status, payload={**entry.payload, **payload})
        self._write(new)
        return new

    def discard(self, entry: JournalEntry) -> None:
        """Forget an entry whose edit did not happen."""
        self._path(entry.id).unlink(missing_ok=True)
        self.blob_path(entry.id).unlink(missing_ok=True)

    def blob(self, entry: JournalEntry) -> bytes:
        return self.blob_path(entry.id).read_bytes()

    def append_blob(self, entry: JournalEntry, data: bytes, *, sync: bool = True) -> None:
        """Add bytes to an entry's blob: an edit found more to remove than it journalled.

        ``sync=False`` keeps the edit's final check close to its syscall: the bytes then survive
        a crash of this process but not of the OS, until a later call with ``sync=True``.
        """
        try:
            with self.blob_path(entry.id).open("ab") as f:
                f.write(data)
                f.flush()
                if sync:
                    os.fsync(f.fileno())
        except OSError as err:
            raise StorageError(f"cannot write the undo journal: {err.strerror}") from err

    def get(self, entry_id: str) -> JournalEntry:
        try:
            return parse_entry(self._path(entry_id).read_bytes())
        except FileNotFoundError:
            raise StorageError(f"no undo journal entry {entry_id!r}") from None

    def entries(self, store: Path | None = None, key: str | None = None) -> list[JournalEntry]:
        """Entries newest first, optionally for one store and key."""
        if not self.root.is_dir():
            return []
        found: list[JournalEntry] = []
        want = str(store.resolve()) if store is not None else None
        for path in sorted(self.root.glob("*.json"), reverse=True):
            try:
                entry = parse_entry(path.read_bytes())
            except (OSError, ValueError):
                continue
            if want is not None and entry.store != want:
                continue
            if key is not None and entry.key != key:
                continue
            found.append(entry)
        return found

    def latest_undoable(self, store: Path, key: str | None = None) -> JournalEntry | None:
        for entry in self.entries(store, key):
            if entry.status in ("done", "pending"):
                return entry
        return None


def dump_json(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)
