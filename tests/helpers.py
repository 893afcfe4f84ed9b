"""Helpers for tests: copies of the ZeroClaw-written fixture workspaces and what they expect."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path
from typing import Any

# shared/ lies beside the checkout, for developers and CI alike.
FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
FIXTURE_NAMES = ("jsonl-workspace", "sqlite-workspace", "sqlite-seed-era-workspace")


def copy_fixture(name: str, dest: Path) -> Path:
    """A writable copy of a fixture workspace (the originals are read-only)."""
    target = dest / name
    shutil.copytree(FIXTURES / name, target)
    for path in [target, *target.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)
    return target


def zeroclaw_append(path: Path | str, line: bytes) -> None:
    """ZeroClaw's JSONL append: open O_APPEND|O_CREAT, write the JSON, write the newline, close
    (two writes: a reader can see the JSON before its newline)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.write(fd, b"\n")
    finally:
        os.close(fd)


def expected(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.expected.json").read_text())
    return data
