"""Fixtures for the JSONL store tests: a writable copy of the ZeroClaw-written workspace."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from storage.journal import Journal
from storage.jsonl import JsonlBackend
from tests.helpers import copy_fixture


class JsonlKit:
    """Writes sessions the way ZeroClaw lays them out, and fingerprints folders."""

    def __init__(self, sessions: Path) -> None:
        self.sessions = sessions

    @staticmethod
    def line(content: str, role: str = "user") -> bytes:
        obj = {"role": role, "content": content}
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"

    def lines(self, n: int, prefix: str = "m", start: int = 0) -> bytes:
        roles = ("user", "assistant")
        return b"".join(self.line(f"{prefix}{i}", roles[i % 2]) for i in range(start, start + n))

    def path(self, key: str) -> Path:
        return self.sessions / f"{key}.jsonl"

    def write(self, key: str, data: bytes) -> Path:
        path = self.path(key)
        path.write_bytes(data)
        return path

    @staticmethod
    def digest(root: Path) -> dict[str, str]:
        """sha256 of every file under ``root``, and the names of the folders."""
        out: dict[str, str] = {}
        for p in sorted(root.rglob("*")):
            rel = str(p.relative_to(root))
            out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
        return out


@pytest.fixture
def sessions(tmp_path: Path) -> Path:
    return copy_fixture("jsonl-workspace", tmp_path) / "sessions"


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "state")


@pytest.fixture
def jsonl(sessions: Path, journal: Journal) -> JsonlBackend:
    return JsonlBackend(sessions, journal=journal)


@pytest.fixture
def kit(sessions: Path) -> JsonlKit:
    return JsonlKit(sessions)
