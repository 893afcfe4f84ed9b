"""What every benchmark needs: the workloads, how many runs, and how to start each program."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.benchmarks.term import Pane
from tests.benchmarks.workloads import Workloads

REPO = Path(__file__).resolve().parents[2]
PEERS = Path(os.environ.get("ZC_BENCH_PEERS", "/tmp/zc-bench-peers"))


def find_toolong() -> str | None:
    """``tl``: on PATH, or in the private venv (toolong pins textual<0.59, so it never goes
    into the environment the app runs in)."""
    venv_tl = PEERS / "toolong" / "bin" / "tl"
    if venv_tl.exists():
        return str(venv_tl)
    found = shutil.which("tl")
    if found and "toolong" in Path(found).read_text(errors="replace"):
        return found
    return None


def install_toolong() -> str | None:
    venv = PEERS / "toolong"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "toolong"], check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return find_toolong()


@dataclass
class Ctx:
    loads: Workloads
    runs: int
    quick: bool
    toolong: str | None
    lnav: str | None
    notes: list[str] = field(default_factory=list)
    _n: int = 0

    @property
    def env(self) -> dict[str, str]:
        """The app's environment: a private undo journal; no ZeroClaw discovery variables;
        bytecode caching on, as in any installed package (an empty value turns off a
        PYTHONDONTWRITEBYTECODE inherited from the shell, which would recompile every module
        of the app at every start)."""
        return {
            "PYTHONDONTWRITEBYTECODE": "",
            "XDG_STATE_HOME": str(self.loads.state),
            "ZEROCLAW_CONFIG_DIR": "",
            "ZEROCLAW_DATA_DIR": "",
            "ZEROCLAW_WORKSPACE": "",
        }

    def name(self, tag: str) -> str:
        self._n += 1
        return f"{tag}-{os.getpid()}-{self._n}"

    def zc_argv(self, workspace: Path, *args: str) -> list[str]:
        return [sys.executable, "-m", "storage.cli", "--workspace", str(workspace), *args]

    def zc(self, tag: str, workspace: Path, *args: str) -> Pane:
        return Pane(
            self.name(tag), self.zc_argv(workspace, *args), "storage.cli", cwd=REPO, env=self.env
        )

    def tl(self, tag: str, file: Path) -> Pane:
        assert self.toolong is not None
        return Pane(self.name(tag), [self.toolong, str(file)], "/tl", env={})

    def lnav_pane(self, tag: str, file: Path) -> Pane:
        assert self.lnav is not None
        # -n is "headless"; we want the real UI. A private HOME keeps lnav's state apart.
        home = self.loads.root / "lnav-home"
        home.mkdir(exist_ok=True)
        return Pane(self.name(tag), [self.lnav, str(file)], "lnav", env={"HOME": str(home)})

    def zc_cli(self, *args: str) -> tuple[float, str]:
        """Wall seconds of one ``zc-sessions`` command (spawn to exit), and its stdout."""
        env = os.environ | self.env
        t0 = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-m", "storage.cli", *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        elapsed = time.perf_counter() - t0
        if out.returncode != 0:
            raise RuntimeError(f"zc-sessions {' '.join(args)}: {out.stderr.strip()}")
        return elapsed, out.stdout

    def cmd(self, argv: list[str]) -> str:
        return " ".join(argv).replace(sys.executable, "python")


def git_facts() -> dict[str, str]:
    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
        return out.stdout.strip()

    return {
        "head": git("rev-parse", "--short", "HEAD"),
        "dirty": json.dumps(git("status", "--short").splitlines()),
    }
