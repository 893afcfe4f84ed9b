"""Run the zc-sessions benchmarks and write tests/benchmarks/RESULTS.md (and results.json).

    python -m tests.benchmarks.run            # the full run: 1M-message workloads, 5 runs each
    python -m tests.benchmarks.run --quick    # a smoke pass: a tenth of the sizes, 3 runs

Options: ``--only startup,open,...`` runs some groups; ``--work DIR`` moves the workload cache
(default /tmp/zc-bench, or $ZC_BENCH_DIR); ``--runs N``. Peers: toolong (``tl``; installed into
its own venv under /tmp/zc-bench-peers when missing, since it pins an old Textual) and lnav
(``apt-get install lnav``); a missing peer leaves its column empty, with the reason.
The quick pass writes RESULTS-quick.md, so it never overwrites the full run's table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

from tests.benchmarks import bigsession, headless, live, rollback, search, startup
from tests.benchmarks.context import Ctx, find_toolong, git_facts, install_toolong
from tests.benchmarks.results import Row, load_rows, write
from tests.benchmarks.term import kill_server
from tests.benchmarks.workloads import ensure

HERE = Path(__file__).resolve().parent
GROUPS: dict[str, Callable[[Ctx], list[Row]]] = {
    "startup": startup.run,
    "open": bigsession.run_open,
    "paging": bigsession.run_paging,
    "live": live.run,
    "search": search.run,
    "headless": headless.run,
    "rollback": rollback.run,
}


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.benchmarks.run")
    p.add_argument("--quick", action="store_true", help="small workloads, 3 runs")
    p.add_argument("--runs", type=int, help="runs per measurement (default 5, quick 3)")
    p.add_argument("--only", help="comma-separated groups: " + ",".join(GROUPS))
    p.add_argument(
        "--work", type=Path, default=Path(os.environ.get("ZC_BENCH_DIR", "/tmp/zc-bench"))
    )
    p.add_argument("--out", type=Path, default=HERE, help="where RESULTS.md goes")
    p.add_argument(
        "--render",
        action="store_true",
        help="only re-write RESULTS.md from results.json and FINDINGS.md",
    )
    return p.parse_args(argv)


def header(ctx: Ctx, invocations: list[dict[str, str]]) -> str:
    s = ctx.loads.facts
    big = s["jsonl"]["big"]
    git = git_facts()
    flag = " --quick" if ctx.quick else ""
    lines = [
        "# zc-sessions benchmarks" + (" (quick pass)" if ctx.quick else ""),
        "",
        f"One command runs everything: `python -m tests.benchmarks.run{flag}` from the repo root "
        "(see tests/benchmarks/README.md). The rows below come from these invocations; a "
        "`--only` re-run replaces its groups' rows and keeps the others, and every row's "
        "detail says when, at which commit and under which machine load it was measured:",
        "",
        *[f"- `{i['command']}`: {i['started']}, {i['took']}, git {i['git']}" for i in invocations],
        "",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {platform.system()} {platform.release()}",
        "- code: each row's detail says the commit (and any uncommitted storage/ or tui/ "
        f"change) it was measured at; HEAD was {git['head']} when this file was written",
        f"- JSONL workspace: one session of {big['messages']:,} messages "
        f"({big['bytes'] / 1e6:.0f} MB), {s['jsonl']['small_sessions']:,} small sessions "
        f"({s['jsonl']['small_bytes'] / 1e6:.0f} MB), a live session",
        f"- SQLite workspace: {s['sqlite']['sessions']:,} sessions x "
        f"{s['sqlite']['rows'] // s['sqlite']['sessions']} messages = {s['sqlite']['rows']:,} "
        f"rows, {s['sqlite']['db_bytes'] / 1e6:.0f} MB with FTS5",
        f"- {ctx.runs} runs per measurement; medians; ratios are from the same run",
        "- peers: toolong "
        + (ctx.toolong or "not available")
        + ", lnav "
        + (ctx.lnav or "not available"),
        "- every time is 'as a person sees it' (tmux 120x40, capture-pane polled every 5 ms)"
        " unless the row says 'headless' (Textual run_test, in-process) or 'storage'",
    ]
    lines += [f"- note: {n}" for n in ctx.notes]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    groups = args.only.split(",") if args.only else list(GROUPS)
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        print(f"unknown groups: {unknown}; known: {list(GROUPS)}", file=sys.stderr)
        return 2
    if args.render:
        return render(args)
    started, t0 = datetime.now(UTC), time.monotonic()
    loads = ensure(args.work, args.quick)
    toolong = find_toolong() or install_toolong()
    ctx = Ctx(
        loads=loads,
        runs=args.runs or (3 if args.quick else 5),
        quick=args.quick,
        toolong=toolong,
        lnav=shutil.which("lnav"),
    )
    if toolong is None:
        ctx.notes.append("toolong could not be installed: its columns are empty")
    if ctx.lnav is None:
        ctx.notes.append("lnav is not installed (apt-get install lnav): its columns are empty")
    stem = "RESULTS-quick" if args.quick else "RESULTS"
    # --only re-runs some groups: the other groups' rows of the last run stay in the table.
    raw = args.out / f"{stem.lower()}.json"
    kept = load_rows(raw) if args.only else []
    earlier = json.loads(raw.read_text())["meta"].get("invocations", []) if kept else []
    command = "python -m tests.benchmarks.run" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:])
    )
    fresh: dict[str, list[Row]] = {}
    for g in groups:
        print(f"== {g}", flush=True)
        load_before = os.getloadavg()[0]
        try:
            got = GROUPS[g](ctx)
        except Exception as err:  # one broken group must not lose the others
            traceback.print_exc()
            got = [
                Row(
                    what=f"{g}: could not run",
                    target="—",
                    unit="s",
                    ours=[],
                    met=None,
                    reason=f"{type(err).__name__}: {str(err).splitlines()[0][:300]}",
                    group=g,
                )
            ]
        finally:
            kill_server()
        git = git_facts()
        dirty = json.loads(git["dirty"])
        code = [d for d in dirty if d[3:].startswith(("storage/", "tui/"))]
        stamp = (
            datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
            + f", git {git['head']}"
            + (f" with uncommitted {code}" if code else "")
            + f"; load average {load_before:.1f} -> {os.getloadavg()[0]:.1f} on "
            f"{os.cpu_count()} cores (above 1-2 means other work shared the machine)"
        )
        for r in got:
            r.suite, r.measured_at = g, stamp
            print(f"   {r.what}: {r.ours_median} {r.unit} met={r.met} {r.reason}", flush=True)
        fresh[g] = got
        rows = [
            r
            for s in GROUPS
            for r in (fresh[s] if s in fresh else [k for k in kept if k.suite == s])
        ]
        md, _ = write(
            rows,
            out_dir=args.out,
            header=header(
                ctx,
                invocations := [
                    *earlier,
                    {
                        "command": command,
                        "started": f"{started:%Y-%m-%d %H:%M} UTC",
                        "took": f"{(time.monotonic() - t0) / 60:.1f} min",
                        "git": git_facts()["head"],
                    },
                ],
            ),
            meta={
                "invocations": invocations,
                "args": vars(args) | {"work": str(args.work), "out": str(args.out)},
                "facts": loads.facts,
                "git": git_facts(),
            },
            findings=_findings(args.out),
            stem=stem,
        )
    print(f"wrote {md}")
    return 0


def render(args: argparse.Namespace) -> int:
    """RESULTS.md again from the raw JSON (after FINDINGS.md was edited): nothing is measured."""
    stem = "RESULTS-quick" if args.quick else "RESULTS"
    raw = args.out / f"{stem.lower()}.json"
    data = json.loads(raw.read_text())
    md = args.out / f"{stem}.md"
    meta = data["meta"]
    like_ctx = SimpleNamespace(
        loads=SimpleNamespace(facts=meta["facts"]),
        quick=args.quick,
        runs=meta["args"].get("runs") or (3 if args.quick else 5),
        toolong=find_toolong(),
        lnav=shutil.which("lnav"),
        notes=[],
    )
    write(
        load_rows(raw),
        out_dir=args.out,
        header=header(like_ctx, meta.get("invocations", [])),  # type: ignore[arg-type]
        meta=data["meta"],
        findings=_findings(args.out),
        stem=stem,
    )
    print(f"wrote {md}")
    return 0


def _findings(out: Path) -> str:
    """Profile findings are written by hand after a run, in FINDINGS.md beside the results."""
    path = out / "FINDINGS.md"
    return path.read_text() if path.exists() else ""


if __name__ == "__main__":
    sys.exit(main())
