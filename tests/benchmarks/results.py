"""Results: one ``Row`` per measured target, written as RESULTS.md and raw JSON.

A row holds every sample, so the JSON can be re-analysed; the table shows medians. ``ratio``
is ours / peer (below 1: we are faster or smaller) unless the row says otherwise.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


def median(xs: Sequence[float]) -> float | None:
    return statistics.median(xs) if xs else None


@dataclass
class Row:
    """One line of the table.

    ``ours``/``peer`` are samples in ``unit``; ``met`` is None when the row could not be judged.
    """

    what: str
    target: str
    unit: str
    ours: list[float]
    met: bool | None
    reason: str = ""
    peer: list[float] = field(default_factory=list)
    peer_name: str = ""
    ratio: float | None = None
    ratio_label: str = "ours/peer"
    how: str = ""
    commands: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    group: str = ""
    suite: str = ""  # the runner group that made the row (``--only`` re-runs replace by suite)
    measured_at: str = ""

    @property
    def ours_median(self) -> float | None:
        return median(self.ours)

    @property
    def peer_median(self) -> float | None:
        return median(self.peer)


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "s":
        return f"{value * 1000:.0f} ms" if value < 10 else f"{value:.1f} s"
    if unit == "MB":
        return f"{value:.0f} MB"
    if unit == "%":
        return f"{value * 100:.2f} %"
    if unit == "x":
        return f"{value:.1f}x"
    return f"{value:.3g} {unit}"


def verdict(row: Row) -> str:
    if row.met is None:
        return f"not judged: {row.reason}" if row.reason else "not judged"
    word = "**met**" if row.met else "**MISSED**"
    return f"{word}: {row.reason}" if row.reason else word


def spread(row: Row) -> str:
    if not row.ours:
        return ""
    lo, hi = min(row.ours), max(row.ours)
    return f"n={len(row.ours)}, min {fmt(lo, row.unit)}, max {fmt(hi, row.unit)}"


def table(rows: Sequence[Row]) -> str:
    out = [
        "| # | what | target | ours (median) | peer (median) | ratio | result |",
        "|---|---|---|---|---|---|---|",
    ]
    for n, r in enumerate(rows, 1):
        peer = f"{r.peer_name} {fmt(r.peer_median, r.unit)}" if r.peer else "—"
        ratio = f"{r.ratio:.2f} ({r.ratio_label})" if r.ratio is not None else "—"
        ours = f"{fmt(r.ours_median, r.unit)} <br><sub>{spread(r)}</sub>"
        cells = [str(n), r.what, r.target, ours, peer, ratio, verdict(r)]
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(out)


def details(rows: Sequence[Row]) -> str:
    out = []
    for n, r in enumerate(rows, 1):
        out.append(f"### {n}. {r.what}\n")
        if r.measured_at:
            out.append(f"- measured: {r.measured_at} (runner group `{r.suite}`)")
        if r.how:
            out.append(f"- how: {r.how}")
        for c in r.commands:
            out.append(f"- command: `{c}`")
        ours = ", ".join(fmt(x, r.unit) for x in r.ours)
        out.append(f"- ours, every sample: {ours or '—'}")
        if r.peer:
            peer = ", ".join(fmt(x, r.unit) for x in r.peer)
            out.append(f"- {r.peer_name}, every sample: {peer}")
        for k, v in r.extra.items():
            out.append(f"- {k}: {v}")
        out.append("")
    return "\n".join(out)


def load_rows(path: Path) -> list[Row]:
    """The rows of an earlier results JSON (empty when there is none)."""
    if not path.exists():
        return []
    names = set(Row.__dataclass_fields__)
    data = json.loads(path.read_text())
    return [Row(**{k: v for k, v in r.items() if k in names}) for r in data.get("rows", [])]


def write(
    rows: Sequence[Row],
    *,
    out_dir: Path,
    header: str,
    meta: dict[str, Any],
    findings: str = "",
    stem: str = "RESULTS",
) -> tuple[Path, Path]:
    md = out_dir / f"{stem}.md"
    raw = out_dir / f"{stem.lower()}.json"
    body = [header, "", table(rows), ""]
    if findings:
        body += [findings, ""]
    body += ["## Every row in detail", "", details(rows)]
    md.write_text("\n".join(body))
    payload = {
        "meta": meta,
        "rows": [
            asdict(r) | {"ours_median": r.ours_median, "peer_median": r.peer_median} for r in rows
        ],
    }
    raw.write_text(json.dumps(payload, indent=1, default=str))
    return md, raw
