"""storage/ is headless: importing all of it (and running a CLI command) never loads textual."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_storage_never_imports_textual() -> None:
    code = (
        "import sys, pkgutil, importlib, storage\n"
        "for m in pkgutil.iter_modules(storage.__path__):\n"
        "    importlib.import_module('storage.' + m.name)\n"
        "assert 'textual' not in sys.modules, 'textual was imported'\n"
        "print(len(list(pkgutil.iter_modules(storage.__path__))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) >= 8  # every storage module was imported
