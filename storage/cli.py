"""``zc-sessions``: the scriptable command line, and the launcher of the browser.

Exit codes: 0 done, 1 failed (exactly one line on stderr, never a traceback), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

from storage.backend import SessionBackend
from storage.errors import SessionChangedError, SessionNotFound, StorageError
from storage.journal import Journal, JournalEntry
from storage.models import EditReport, SearchHit, SessionMetadata, StoredMessage, to_dict
from storage.ops import RollbackMode, is_stuck, run_rollback
from storage.safetext import json_terminal_safe, one_line, visible
from storage.workspace import Workspace, open_workspace
from storage.zcformat import encode_message, parse_rfc3339, sanitize_key

PROG = "zc-sessions"
DEFAULT_STUCK_AFTER = 600.0
EXPORT_CHUNK = 1000


class UsageError(Exception):
    """Bad command-line words: exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


class _Version(argparse.Action):
    """``--version``: read from the installed package only when asked (it costs an import)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_args: Any) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("zeroclaw-sessions")
        except PackageNotFoundError:
            found = "unknown (not installed)"
        sys.stdout.write(f"{PROG} {found}\n")
        parser.exit(0)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Browse, live-tail and repair ZeroClaw chat sessions.")
    p.add_argument(
        "--workspace", type=Path, metavar="DIR", help="ZeroClaw data dir or its sessions/"
    )
    p.add_argument("--backend", choices=("auto", "jsonl", "sqlite"), default="auto")
    p.add_argument("--read-only", action="store_true", help="open stores read-only; refuse edits")
    p.add_argument("--session", metavar="KEY", help="open the browser on this session")
    p.add_argument("--demo", action="store_true", help="open a generated demo workspace")
    p.add_argument("--version", action=_Version, help="print the version and exit")
    p.add_argument(
        "--stuck-after",
        type=float,
        default=DEFAULT_STUCK_AFTER,
        metavar="SECONDS",
        help="a running session whose turn started longer ago is stuck (default 600)",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    s = sub.add_parser("list", help="list sessions")
    s.add_argument("--json", action="store_true")
    s.add_argument("--stuck-after", type=float, dest="stuck_after_cmd", metavar="SECONDS")

    s = sub.add_parser("show", help="print a session")
    s.add_argument("key", metavar="KEY")
    s.add_argument("--json", action="store_true")
    s.add_argument("--tail", type=int, metavar="N")

    s = sub.add_parser("search", help='search messages (words AND, "phrase", prefix*)')
    s.add_argument("query", metavar="QUERY")
    s.add_argument("--session", dest="scope", metavar="KEY")
    s.add_argument("--limit", type=int, default=50, metavar="N")
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("rollback", help="remove the last turn (or messages) of a session")
    s.add_argument("key", metavar="KEY")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--turn", action="store_true", help="the last user message and all after it")
    g.add_argument("--messages", type=int, metavar="N", help="the last N messages")
    g.add_argument("--to", type=int, metavar="INDEX", help="message INDEX and all after it")
    s.add_argument("--dry-run", action="store_true")
    s.add_argument("--yes", action="store_true")
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("undo", help="undo the last edit (of KEY)")
    s.add_argument("key", nargs="?", metavar="KEY")
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("rename", help="name a session ('' clears the name)")
    s.add_argument("key", metavar="KEY")
    s.add_argument("name", metavar="NAME")

    s = sub.add_parser("compact", help="drop unreadable lines (JSONL) or repair the index (SQLite)")
    s.add_argument("key", metavar="KEY")
    s.add_argument("--dry-run", action="store_true")
    s.add_argument("--yes", action="store_true")
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("delete", help="delete a session (undo brings it back)")
    s.add_argument("key", metavar="KEY")
    s.add_argument("--yes", action="store_true")

    s = sub.add_parser("export", help="write a session as markdown, json or jsonl")
    s.add_argument("key", metavar="KEY")
    s.add_argument("--format", choices=("markdown", "json", "jsonl"), default="markdown")
    s.add_argument("--output", type=Path, metavar="FILE")

    s = sub.add_parser("migrate", help="import JSONL sessions into SQLite as ZeroClaw does")
    s.add_argument("--dry-run", action="store_true")
    return p


# --- output helpers -------------------------------------------------------------------------


def emit_json(value: Any, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    out.write(json_terminal_safe(json.dumps(value, ensure_ascii=False, indent=2)) + "\n")


def relative_time(ts: str | None) -> str:
    from datetime import UTC, datetime

    when = parse_rfc3339(ts) if ts else None
    if when is None:
        return "-"
    secs = max(0, int((datetime.now(UTC) - when).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{secs // size}{unit} ago"
    return f"{secs}s ago"


def message_json(m: StoredMessage) -> dict[str, Any]:
    return {"index": m.index, "role": m.role, "content": m.content, "created_at": m.created_at}


def report_json(r: EditReport) -> dict[str, Any]:
    return {
        "action": r.action,
        "key": r.key,
        "backend": r.backend,
        "dry_run": r.dry_run,
        "removed": [
            {"index": m.index, "role": m.role, "content": m.content, "created_at": m.created_at}
            for m in r.removed
        ],
        "removed_lines": [
            {"line": s.line, "offset": s.offset, "reason": s.reason, "preview": s.preview}
            for s in r.removed_lines
        ],
        "journal_id": r.journal_id,
        "warnings": list(r.warnings),
    }


def print_report(r: EditReport) -> None:
    verb = "would remove" if r.dry_run else "removed"
    print(
        f"{r.action} {one_line(r.key)} [{r.backend}]: {verb} {len(r.removed)} message(s)"
        + (f" and {len(r.removed_lines)} unreadable line(s)" if r.removed_lines else "")
    )
    for m in r.removed:
        print(f"  #{m.index} {one_line(m.role, 20)}: {one_line(m.content, 100)}")
    for s in r.removed_lines:
        print(f"  line {s.line}: {s.reason}: {one_line(s.preview, 80)}")
    for w in r.warnings:
        print(f"  note: {one_line(w, 300)}")
    if r.journal_id and not r.dry_run:
        print(f"  undo with: {PROG} undo {one_line(r.key)}")


# --- commands -------------------------------------------------------------------------------


def list_row(meta: SessionMetadata, backend: SessionBackend, stuck_after: float) -> dict[str, Any]:
    count = meta.message_count
    if count is None:
        try:
            count = backend.count_messages(meta.key)
        except StorageError:
            count = None
    return {
        "key": meta.key,
        "name": meta.name,
        "message_count": count,
        "created_at": meta.created_at,
        "last_activity": meta.last_activity,
        "state": meta.state,
        "turn_id": meta.turn_id,
        "turn_started_at": meta.turn_started_at,
        "stuck": is_stuck(meta, stuck_after),
        "agent_alias": meta.agent_alias,
        "channel_id": meta.channel_id,
        "room_id": meta.room_id,
        "sender_id": meta.sender_id,
        "backend": meta.backend,
    }


def cmd_list(ws: Workspace, args: argparse.Namespace) -> int:
    stuck_after = args.stuck_after_cmd if args.stuck_after_cmd is not None else args.stuck_after
    rows = [
        list_row(meta, b, stuck_after)
        for b in ws.backends
        for meta in b.list_sessions_with_metadata()
    ]
    if args.json:
        emit_json(rows)
        return 0
    if not rows:
        print(f"no sessions in {ws.label}")
        return 0
    print(f"{'KEY':<34} {'NAME':<18} {'STORE':<6} {'MSGS':>7} {'ACTIVE':>9}  STATE")
    for r in rows:
        state = "stuck" if r["stuck"] else (r["state"] or "-")
        count = "?" if r["message_count"] is None else str(r["message_count"])
        key, name = one_line(r["key"], 34), one_line(r["name"] or "-", 18)
        when = relative_time(r["last_activity"])
        print(f"{key:<34} {name:<18} {r['backend']:<6} {count:>7} {when:>9}  {state}")
    return 0


def cmd_show(ws: Workspace, args: argparse.Namespace) -> int:
    backend, key = ws.find(args.key)
    if args.tail is not None:
        count = backend.count_messages(key)
        messages = backend.read_range(key, max(0, count - max(0, args.tail)), count)
    else:
        messages = backend.load_with_timestamps(key)
    skipped = backend.skipped_lines(key)
    if args.tail is not None and messages:
        skipped = [
            s for s in skipped if s.before_index is None or s.before_index >= messages[0].index
        ]
    if args.json:
        emit_json(
            {
                "key": key,
                "name": backend.get_session_name(key),
                "backend": backend.backend_name,
                "messages": [message_json(m) for m in messages],
                "skipped": [
                    {"line": s.line, "offset": s.offset, "reason": s.reason, "preview": s.preview}
                    for s in skipped
                ],
            }
        )
        return 0
    name = backend.get_session_name(key)
    print(
        f"# {one_line(key)}"
        + (f" ({one_line(name)})" if name else "")
        + f" [{backend.backend_name}]"
    )
    pending = sorted(skipped, key=lambda s: s.offset)
    for m in messages:
        while (
            pending and pending[0].before_index is not None and pending[0].before_index <= m.index
        ):
            _print_skipped(pending.pop(0))
        stamp = f"  {m.created_at}" if m.created_at else ""
        print(f"\n#{m.index} {one_line(m.role, 20)}{stamp}")
        print(visible(m.content))
    for s in pending:
        _print_skipped(s)
    return 0


def _print_skipped(s: Any) -> None:
    print(f"\n! line {s.line} skipped by ZeroClaw: {s.reason}: {one_line(s.preview, 80)}")


def hit_json(h: SearchHit) -> dict[str, Any]:
    return {
        "key": h.key,
        "index": h.index,
        "role": h.role,
        "snippet": h.snippet,
        "backend": h.backend,
    }


def iter_hits(ws: Workspace, query: str, scope: str | None, limit: int) -> Iterator[SearchHit]:
    targets: list[tuple[SessionBackend, str | None]]
    if scope is not None:
        found, found_key = ws.find(scope)
        targets = [(found, found_key)]
    else:
        targets = [(b, None) for b in ws.backends]
    left = limit
    for backend, key in targets:
        for hit in backend.search_messages(query, key=key, limit=left):
            yield hit
            left -= 1
            if left <= 0:
                return


def cmd_search(ws: Workspace, args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise UsageError("--limit must be 1 or more")
    hits = iter_hits(ws, args.query, args.scope, args.limit)
    if args.json:
        emit_json([hit_json(h) for h in hits])
        return 0
    for h in hits:
        print(
            f"{one_line(h.key, 40)}  #{h.index} {one_line(h.role, 10)}: {one_line(h.snippet, 120)}"
        )
    return 0


def confirm(args: argparse.Namespace, question: str) -> bool:
    """--yes, or an answer at a terminal; without a terminal, --yes is required (usage)."""
    if args.yes:
        return True
    if not sys.stdin.isatty():
        raise UsageError(f"{args.command} needs --yes when stdin is not a terminal")
    answer = input(f"{question} [y/N] ").strip().lower()
    return answer in ("y", "yes")


def rollback_mode(args: argparse.Namespace) -> tuple[RollbackMode, int]:
    if args.messages is not None:
        return "messages", args.messages
    if args.to is not None:
        return "to", args.to
    return "turn", 0


def cmd_rollback(ws: Workspace, args: argparse.Namespace) -> int:
    backend, key = ws.find(args.key)
    mode, value = rollback_mode(args)
    plan = run_rollback(backend, key, mode, value, dry_run=True)
    if args.dry_run:
        return _finish(args, plan)
    if not plan.removed:
        return _finish(args, plan)
    if not args.yes:
        print_report(plan)
        if not confirm(args, f"Remove these {len(plan.removed)} message(s) from {one_line(key)}?"):
            print("cancelled")
            return 1
    return _finish(args, _rollback_retrying(backend, key, mode, value, args.yes, len(plan.removed)))


def _rollback_retrying(
    backend: SessionBackend, key: str, mode: RollbackMode, value: int, yes: bool, expected: int
) -> EditReport:
    """With --yes the plan is re-made if the session grew; after a prompt, the count must hold."""
    for _ in range(3):
        try:
            return run_rollback(backend, key, mode, value, expected=None if yes else expected)
        except SessionChangedError:
            if not yes:
                raise
    raise SessionChangedError(f"session {key!r} kept changing; nothing was removed")


def _finish(args: argparse.Namespace, report: EditReport) -> int:
    if getattr(args, "json", False):
        emit_json(report_json(report))
    else:
        print_report(report)
    return 0


def find_journal_entry(ws: Workspace, journal: Journal, key: str | None) -> JournalEntry:
    if key is None:
        entry = journal.latest_undoable(ws.sessions_dir)
    else:
        entry = next(
            (
                e
                for e in journal.entries(ws.sessions_dir)
                if e.status in ("done", "pending") and e.key in (key, sanitize_key(key))
            ),
            None,
        )
    if entry is None:
        where = f"session {key!r}" if key else str(ws.sessions_dir)
        raise StorageError(f"nothing to undo for {where}")
    return entry


def cmd_undo(ws: Workspace, args: argparse.Namespace, journal: Journal) -> int:
    entry = find_journal_entry(ws, journal, args.key)
    backend = ws.backend(entry.backend)
    if backend is None:
        raise StorageError(f"the {entry.backend} store of {ws.sessions_dir} is not open")
    report = backend.restore(entry.id)
    if args.json:
        emit_json(report_json(report) | {"restored": [to_dict(m) for m in entry.removed]})
        return 0
    print(f"undid {entry.action} of {one_line(entry.key)} [{entry.backend}]")
    for w in report.warnings:
        print(f"  note: {one_line(w, 300)}")
    return 0


def cmd_rename(ws: Workspace, args: argparse.Namespace) -> int:
    backend, key = ws.find(args.key)
    backend.set_session_name(key, args.name)
    print(
        f"renamed {one_line(key)} to {one_line(args.name)!r}"
        if args.name
        else f"cleared the name of {one_line(key)}"
    )
    return 0


def cmd_compact(ws: Workspace, args: argparse.Namespace) -> int:
    backend, key = ws.find(args.key)
    plan = backend.compact(key, dry_run=True)
    if args.dry_run:
        return _finish(args, plan)
    if not args.yes:
        print_report(plan)
        if not confirm(args, f"Compact {one_line(key)}?"):
            print("cancelled")
            return 1
    return _finish(args, backend.compact(key))


def cmd_delete(ws: Workspace, args: argparse.Namespace) -> int:
    backend, key = ws.find(args.key)
    if not args.yes:
        count = backend.count_messages(key)
        if not confirm(args, f"Delete session {one_line(key)} and its {count} message(s)?"):
            print("cancelled")
            return 1
    report = backend.delete_session(key)
    print(f"deleted {one_line(key)} [{backend.backend_name}] ({len(report.removed)} messages)")
    if backend.backend_name == "jsonl" and (ws.sessions_dir / "sessions.db").exists():
        print("  note: undo cannot recreate a *.jsonl file while sessions.db is in use here;")
        print("  its bytes stay in the undo journal")
    else:
        print(f"  undo with: {PROG} undo {one_line(key)}")
    return 0


def export_lines(backend: SessionBackend, key: str, fmt: str) -> Iterator[str]:
    count = backend.count_messages(key)
    chunks = (
        backend.read_range(key, i, min(count, i + EXPORT_CHUNK))
        for i in range(0, count, EXPORT_CHUNK)
    )
    if fmt == "jsonl":
        from storage.models import ChatMessage

        for chunk in chunks:
            for m in chunk:
                yield encode_message(ChatMessage(role=m.role, content=m.content)).decode() + "\n"
        return
    if fmt == "json":
        yield from _export_json(backend, key, chunks)
        return
    name = backend.get_session_name(key)
    yield f"# {name or key}\n\n- key: `{key}`\n- backend: {backend.backend_name}\n"
    yield f"- messages: {count}\n"
    for chunk in chunks:
        for m in chunk:
            stamp = f" · {m.created_at}" if m.created_at else ""
            yield f"\n## #{m.index} {m.role}{stamp}\n\n{m.content}\n"


def _export_json(
    backend: SessionBackend, key: str, chunks: Iterator[list[StoredMessage]]
) -> Iterator[str]:
    head = {"key": key, "name": backend.get_session_name(key), "backend": backend.backend_name}
    yield json.dumps(head, ensure_ascii=False)[:-1] + ', "messages": ['
    first = True
    for chunk in chunks:
        for m in chunk:
            yield ("" if first else ",") + "\n  " + json.dumps(message_json(m), ensure_ascii=False)
            first = False
    yield "\n]}\n"


def cmd_export(ws: Workspace, args: argparse.Namespace) -> int:
    backend, key = ws.find(args.key)
    if args.output is None:
        for piece in export_lines(backend, key, args.format):
            sys.stdout.write(
                json_terminal_safe(piece) if args.format != "markdown" else visible(piece)
            )
        return 0
    target = args.output.expanduser().resolve()
    if target.parent == ws.sessions_dir.resolve():
        raise StorageError("refusing to write an export into the sessions folder")
    from storage.journal import write_atomic

    write_atomic(target, "".join(export_lines(backend, key, args.format)).encode(), mode=0o644)
    print(f"exported {one_line(key)} to {target}", file=sys.stderr)
    return 0


def cmd_migrate(ws: Workspace, args: argparse.Namespace) -> int:
    from storage.migrate import migrate

    if ws.read_only:
        raise StorageError("read-only mode: migrate is off (start without --read-only to edit)")
    report = migrate(ws.sessions_dir, dry_run=args.dry_run)
    print(
        one_line(str(report.summary()), 2000)
        if hasattr(report, "summary")
        else report.model_dump_json()
    )
    return 0


COMMANDS: dict[str, Callable[[Workspace, argparse.Namespace], int]] = {
    "list": cmd_list,
    "show": cmd_show,
    "search": cmd_search,
    "rollback": cmd_rollback,
    "rename": cmd_rename,
    "compact": cmd_compact,
    "delete": cmd_delete,
    "export": cmd_export,
    "migrate": cmd_migrate,
}


def run_browser(args: argparse.Namespace) -> int:
    # The workspace is opened, and its listing started, before Textual is imported: with
    # 10,000 sessions the listing runs while that import does. (The CLI commands above never
    # load Textual.)
    from tui.launch import open_launch

    try:
        launch = open_launch(args.workspace, args.backend, args.read_only, args.demo, args.session)
    except OSError as err:
        return fail(f"{err.strerror or err}: {err.filename or ''}", 1)
    try:
        from tui.app import run_app
    except BaseException:
        launch.close()
        raise
    return run_app(launch=launch, session=args.session, stuck_after=args.stuck_after)


def dispatch(args: argparse.Namespace) -> int:
    if args.command is None:
        return run_browser(args)
    journal = Journal()
    ws = open_workspace(
        args.workspace, backend=args.backend, read_only=args.read_only, journal=journal
    )
    try:
        if args.command == "undo":
            return cmd_undo(ws, args, journal)
        return COMMANDS[args.command](ws, args)
    finally:
        ws.close()


def fail(message: str, code: int) -> int:
    sys.stderr.write(f"{PROG}: error: {one_line(message, 1000)}\n")
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return dispatch(args)
    except UsageError as err:
        return fail(str(err), 2)
    except SessionNotFound as err:
        return fail(str(err), 1)
    except StorageError as err:
        return fail(str(err), 1)
    except KeyboardInterrupt:
        return fail("interrupted", 1)
    except BrokenPipeError:
        return 0
    except Exception as err:  # the contract: one line, never a traceback
        return fail(f"unexpected {type(err).__name__}: {err}", 1)


if __name__ == "__main__":
    sys.exit(main())
