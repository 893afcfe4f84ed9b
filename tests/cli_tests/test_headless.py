"""storage/ is headless: importing all of it (and running a CLI command) never loads textual."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers import copy_fixture

REPO = Path(__file__).resolve().parents[2]


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter (nothing imported yet), from the repo root."""
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False
    )


def test_storage_never_imports_textual() -> None:
    code = (
        "import sys, pkgutil, importlib, storage\n"
        "for m in pkgutil.iter_modules(storage.__path__):\n"
        "    importlib.import_module('storage.' + m.name)\n"
        "assert 'textual' not in sys.modules, 'textual was imported'\n"
        "print(len(list(pkgutil.iter_modules(storage.__path__))))\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) >= 8  # every storage module was imported


def test_reading_commands_never_import_pydantic(tmp_path: Path) -> None:
    """pydantic costs a cold command tens of ms: only the undo journal and migrate load it."""
    runs: list[list[str]] = []
    for name, key in (("jsonl-workspace", "gw_a1b2c3"), ("sqlite-workspace", "gw_live_01")):
        ws = ["--workspace", str(copy_fixture(name, tmp_path / name))]
        runs += [[*ws, "list", "--json"], [*ws, "search", "the"], [*ws, "show", key, "--json"]]
    code = (
        "import contextlib, io, sys\n"
        "from storage.cli import main\n"
        f"for argv in {runs!r}:\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        assert main(argv) == 0, argv\n"
        "assert 'pydantic' not in sys.modules, 'pydantic was imported'\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
