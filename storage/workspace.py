"""Find ZeroClaw's sessions folder and open its stores, following ZeroClaw's own rules.

``data_dir`` resolution (first hit wins): ``$ZEROCLAW_CONFIG_DIR/data``, ``$ZEROCLAW_DATA_DIR``,
``$ZEROCLAW_WORKSPACE`` (deprecated), ``~/.zeroclaw/data``, then the pre-v0.8
``~/.zeroclaw/workspace``. Sessions live in ``<data_dir>/sessions``. The configured backend is
``[channels] session_backend`` in ``config.toml`` (default and unknown values: sqlite). When both
stores hold sessions, both are opened, each labelled with its backend.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from storage.backend import SessionBackend
from storage.errors import SessionNotFound, StorageError
from storage.journal import Journal
from storage.models import BackendName

BackendChoice = Literal["auto", "jsonl", "sqlite"]
DB_NAME = "sessions.db"


def candidate_data_dirs(
    env: Mapping[str, str] | None = None, home: Path | None = None
) -> list[Path]:
    """Every data dir ZeroClaw could be using, in ZeroClaw's order of preference."""
    env = os.environ if env is None else env
    home = Path.home() if home is None else home
    found: list[Path] = []
    if env.get("ZEROCLAW_CONFIG_DIR"):
        found.append(Path(env["ZEROCLAW_CONFIG_DIR"]) / "data")
    for name in ("ZEROCLAW_DATA_DIR", "ZEROCLAW_WORKSPACE"):
        if env.get(name):
            found.append(Path(env[name]))
    found += [home / ".zeroclaw" / "data", home / ".zeroclaw" / "workspace"]
    return found


def configured_backend(config_dir: Path) -> BackendName:
    """``[channels] session_backend`` from ``config.toml``; sqlite when absent or unknown."""
    try:
        with (config_dir / "config.toml").open("rb") as f:
            config = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError):
        return "sqlite"
    channels = config.get("channels")
    value = channels.get("session_backend") if isinstance(channels, dict) else None
    return "jsonl" if value == "jsonl" else "sqlite"


def has_jsonl(sessions_dir: Path) -> bool:
    try:
        return any(p.suffix == ".jsonl" and p.is_file() for p in sessions_dir.iterdir())
    except OSError:
        return False


def sessions_dir_of(path: Path) -> Path | None:
    """The sessions folder for a ``--workspace`` argument: the data dir or ``sessions/`` itself."""
    if (path / "sessions").is_dir():
        return path / "sessions"
    if path.is_dir() and (path.name == "sessions" or (path / DB_NAME).exists() or has_jsonl(path)):
        return path
    return None


def discover_sessions_dir(
    env: Mapping[str, str] | None = None, home: Path | None = None
) -> Path | None:
    """The first candidate data dir that has a sessions folder with something in it."""
    dirs = [d / "sessions" for d in candidate_data_dirs(env, home) if (d / "sessions").is_dir()]
    for d in dirs:
        if (d / DB_NAME).exists() or has_jsonl(d):
            return d
    return dirs[0] if dirs else None


def config_dir_for(sessions_dir: Path, env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("ZEROCLAW_CONFIG_DIR"):
        return Path(env["ZEROCLAW_CONFIG_DIR"])
    data_dir = sessions_dir.parent
    # ~/.zeroclaw/data/sessions -> ~/.zeroclaw/config.toml sits next to data/
    return data_dir.parent if (data_dir.parent / "config.toml").exists() else data_dir


@dataclass
class Workspace:
    """An opened sessions folder with one or two stores. The first store is the configured one."""

    sessions_dir: Path
    backends: list[SessionBackend]
    configured: BackendName
    read_only: bool
    demo: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        names = " + ".join(b.backend_name for b in self.backends) or "no store"
        return f"{self.sessions_dir} [{names}]"

    def backend(self, name: BackendName) -> SessionBackend | None:
        return next((b for b in self.backends if b.backend_name == name), None)

    def find(self, key: str) -> tuple[SessionBackend, str]:
        """The store holding ``key`` and its listed form; the configured store wins a tie."""
        for backend in self.backends:
            try:
                return backend, backend.resolve_key(key)
            except SessionNotFound:
                continue
        raise SessionNotFound(key)

    def close(self) -> None:
        for backend in self.backends:
            backend.close()


def open_backend(
    name: BackendName, sessions_dir: Path, *, read_only: bool, journal: Journal | None = None
) -> SessionBackend:
    if name == "jsonl":
        from storage.jsonl import JsonlBackend

        return JsonlBackend(sessions_dir, read_only=read_only, journal=journal)
    from storage.sqlite import SqliteBackend

    return SqliteBackend(sessions_dir / DB_NAME, read_only=read_only, journal=journal)


def open_workspace(
    workspace: Path | None = None,
    *,
    backend: BackendChoice = "auto",
    read_only: bool = False,
    journal: Journal | None = None,
    env: Mapping[str, str] | None = None,
) -> Workspace:
    """Open the sessions folder named by ``workspace`` or, without it, the discovered one."""
    if workspace is not None:
        sessions_dir = sessions_dir_of(workspace.expanduser())
        if sessions_dir is None:
            raise StorageError(f"no ZeroClaw sessions folder in {workspace}")
    else:
        sessions_dir = discover_sessions_dir(env)
        if sessions_dir is None:
            raise StorageError("no ZeroClaw workspace found (try --workspace DIR or --demo)")
    configured = configured_backend(config_dir_for(sessions_dir, env))
    names = _stores_to_open(sessions_dir, backend, configured)
    opened = [open_backend(n, sessions_dir, read_only=read_only, journal=journal) for n in names]
    return Workspace(sessions_dir, opened, configured, read_only)


def _stores_to_open(
    sessions_dir: Path, choice: BackendChoice, configured: BackendName
) -> list[BackendName]:
    if choice != "auto":
        if choice == "sqlite" and not (sessions_dir / DB_NAME).exists():
            raise StorageError(f"no {DB_NAME} in {sessions_dir}")
        return [choice]
    present: list[BackendName] = []
    if (sessions_dir / DB_NAME).exists():
        present.append("sqlite")
    if has_jsonl(sessions_dir):
        present.append("jsonl")
    if not present:
        # An empty folder: the JSONL store reads it without creating anything.
        return ["jsonl"]
    present.sort(key=lambda n: n != configured)
    return present
