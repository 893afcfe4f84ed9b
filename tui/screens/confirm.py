"""The confirm dialog of destructive edits: exactly what will be removed, then yes or no."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from storage.models import EditReport, SessionMetadata
from storage.safetext import one_line
from storage.zcformat import parse_rfc3339

MAX_SHOWN = 400


@dataclass(frozen=True)
class ConfirmPlan:
    """What the dialog shows: a title, the question, and the dry run's report."""

    title: str
    question: str
    report: EditReport
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())


def removal_lines(report: EditReport, limit: int = MAX_SHOWN) -> list[Text]:
    """One literal line per message and per unreadable line the edit removes."""
    lines: list[Text] = []
    for m in report.removed[:limit]:
        line = Text(f"#{m.index} ", "dim")
        line.append(one_line(m.role, 16), "bold")
        line.append(": ")
        line.append(one_line(m.content, 300))
        lines.append(line)
    for s in report.removed_lines[: max(0, limit - len(lines))]:
        where = f"line {s.line}" if s.line is not None else f"byte {s.offset}"
        line = Text(f"{where} ", "dim")
        line.append(one_line(s.reason, 60), "bold")
        line.append(": ")
        line.append(one_line(s.preview, 200))
        lines.append(line)
    hidden = len(report.removed) + len(report.removed_lines) - len(lines)
    if hidden > 0:
        lines.append(Text(f"… and {hidden} more", "dim italic"))
    return lines


class ConfirmScreen(ModalScreen[bool]):
    """``y``/Enter confirms, ``n``/Escape cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y,enter", "answer(True)", "Confirm"),
        Binding("n,escape", "answer(False)", "Cancel"),
    ]

    def __init__(self, plan: ConfirmPlan) -> None:
        super().__init__(classes="dialog-screen")
        self.plan = plan

    def compose(self) -> ComposeResult:
        plan = self.plan
        with Vertical(id="confirm", classes="dialog"):
            yield Label(Text(plan.title), classes="dialog-title")
            for warning in plan.warnings:
                yield Static(Text("⚠ " + warning), classes="dialog-warning")
            yield Static(Text(plan.question), id="confirm-question")
            with VerticalScroll(id="confirm-items"):
                lines = removal_lines(plan.report)
                if not lines:
                    yield Static(Text("nothing to remove", "dim"))
                for line in lines:
                    yield Static(line, classes="confirm-item")
            for note in plan.notes:
                yield Static(Text(note), classes="dialog-note")
            yield Static(
                Text.assemble(
                    ("y", "bold"),
                    "/",
                    ("enter", "bold"),
                    " confirm    ",
                    ("n", "bold"),
                    "/",
                    ("esc", "bold"),
                    " cancel",
                ),
                classes="dialog-keys",
            )

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


# --- what the dialog says for each edit -------------------------------------------------------

RECENT_WRITE_SECS = 10.0
DAEMON_NOTE = (
    "A running ZeroClaw daemon keeps its in-memory history until it restarts: "
    "the model sees this edit only after a restart or reconnect."
)
UNDO_NOTE = "Undo with ctrl+z (the removed text is kept in the undo journal)."
DB_IN_USE_NOTE = (
    "Undo cannot bring this file back while sessions.db is in use in this folder (a new *.jsonl "
    "beside it can make ZeroClaw refuse its store); its bytes stay in the undo journal."
)


def undo_blocked_note(action: str, backend: str, sessions_dir: Path) -> str | None:
    """Deleting a JSONL file beside an SQLite store: undo would have to create a new *.jsonl."""
    if action == "delete" and backend == "jsonl" and (sessions_dir / "sessions.db").exists():
        return DB_IN_USE_NOTE
    return None


def risk_warnings(meta: SessionMetadata | None, now: datetime) -> tuple[str, ...]:
    """Warnings when ZeroClaw may be writing to the session right now."""
    if meta is None:
        return ()
    if meta.state == "running":
        first = "This session is running: ZeroClaw may write to it while you edit."
    else:
        when = parse_rfc3339(meta.last_activity) if meta.last_activity else None
        age = (now - when).total_seconds() if when is not None else None
        if age is None or age > RECENT_WRITE_SECS:
            return ()
        first = f"Its last write was {max(0, int(age))}s ago: ZeroClaw may still be writing to it."
    return (first, DAEMON_NOTE)


def _question(action: str, key: str, report: EditReport, start: int | None) -> str:
    n, lines = len(report.removed), len(report.removed_lines)
    name = one_line(key, 80)
    if action == "rollback":
        where = f" (#{start} and everything after it)" if start is not None else ""
        return f"Remove these {n} message(s){where} from {name}?"
    if action == "delete":
        extra = f" and {lines} unreadable line(s)" if lines else ""
        return f"Delete session {name}, its {n} message(s){extra}?"
    if report.backend == "sqlite":
        return f"Compact {name}: check and repair the search index and message counts?"
    if n or lines:
        extra = f"{n} message(s) and " if n else ""
        return f"Compact {name}: remove these {extra}{lines} unreadable line(s)?"
    return f"Compact {name}: every line is readable; nothing will be removed. Go ahead?"


def confirm_plan(
    action: str,
    key: str,
    report: EditReport,
    *,
    meta: SessionMetadata | None,
    now: datetime,
    start: int | None = None,
    undo_blocked: str | None = None,
) -> ConfirmPlan:
    """The dialog for ``action`` on ``key``, from its dry run. ``undo_blocked`` says why undo
    could not put this edit back, when it could not."""
    title = f"{action.capitalize()} {one_line(key, 80)} [{report.backend}]"
    notes = (*(one_line(w, 300) for w in report.warnings), undo_blocked or UNDO_NOTE)
    return ConfirmPlan(
        title=title,
        question=_question(action, key, report, start),
        report=report,
        warnings=risk_warnings(meta, now),
        notes=notes,
    )
