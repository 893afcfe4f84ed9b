"""ZeroClaw's JSONL store emulated in Python, as the baseline the rollback target is set against.

ZeroClaw loads a session by reading the whole file, splitting on ``\\n``, parsing every line
with serde (skipping what does not parse as ``{role: str, content: str}``), and an edit
rewrites the whole file from the parsed messages (temp file, fsync, rename). Run as a script
it prints one JSON object: seconds taken and peak RSS, so the runner's own memory is untouched.

    python -m tests.benchmarks.zeroclaw load FILE
    python -m tests.benchmarks.zeroclaw rollback FILE OUT_DIR
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path


def load(path: Path) -> list[tuple[str, str]]:
    """Read all, parse all, keep the valid messages (ZeroClaw's reader)."""
    out: list[tuple[str, str]] = []
    for raw in path.read_bytes().split(b"\n"):
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except ValueError:
            continue
        if isinstance(obj, dict):
            role, content = obj.get("role"), obj.get("content")
            if isinstance(role, str) and isinstance(content, str):
                out.append((role, content))
    return out


def rewrite(messages: list[tuple[str, str]], target: Path) -> None:
    """ZeroClaw's newer rewrite: a temp file beside the target, fsync, rename."""
    tmp = target.with_name(f".tmp{os.getpid()}")
    with tmp.open("wb") as f:
        for role, content in messages:
            line = json.dumps(
                {"role": role, "content": content}, ensure_ascii=False, separators=(",", ":")
            )
            f.write(line.encode())
            f.write(b"\n")
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(target)


def rollback_turn(src: Path, out_dir: Path) -> int:
    """Load ``src``, drop the last user message and all after it, rewrite into ``out_dir``."""
    messages = load(src)
    last_user = max(i for i, (role, _) in enumerate(messages) if role == "user")
    rewrite(messages[:last_user], out_dir / src.name)
    return len(messages) - last_user


def main(argv: list[str]) -> int:
    t0 = time.perf_counter()
    if argv[0] == "load":
        n = len(load(Path(argv[1])))
    else:
        n = rollback_turn(Path(argv[1]), Path(argv[2]))
    took = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": took, "peak_mb": peak_mb, "messages": n}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
