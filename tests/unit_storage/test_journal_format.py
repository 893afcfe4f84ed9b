"""Undo journal entries are written without pydantic, as the same JSON pydantic writes (the
same values; a float may be spelled differently, 1e-08 against 1e-8), and read back (through
pydantic) as what was written."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from storage.journal import JournalEntry, _entry_format, entry_json, parse_entry
from storage.models import RemovedMessage

text = st.text(st.characters(exclude_categories=["Cs"]))  # no lone surrogates: nobody writes them
scalars: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),  # NaN and infinities included: written as null
    text,
    text.map(str.encode),  # UTF-8 bytes, as an SQLite BLOB of text
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)
removed = st.builds(
    RemovedMessage,
    index=st.integers(-10, 10**6),
    role=text,
    content=text,
    created_at=st.none() | text,
)
entries = st.builds(
    JournalEntry,
    id=text,
    created_at=text,
    store=text,
    backend=st.sampled_from(["jsonl", "sqlite"]),
    key=text,
    action=text,
    status=st.sampled_from(["pending", "done", "undone"]),
    removed=st.lists(removed, max_size=3).map(tuple),
    payload=st.dictionaries(text, values, max_size=5),
    has_blob=st.booleans(),
)


@given(entries)
def test_entries_are_written_as_pydantic_writes_them(entry: JournalEntry) -> None:
    assert json.loads(entry_json(entry)) == json.loads(_entry_format().dump_json(entry))


@given(entries)
def test_an_entry_reads_back_as_written(entry: JournalEntry) -> None:
    again = parse_entry(entry_json(entry))
    assert (again.id, again.key, again.status, again.removed) == (
        entry.id,
        entry.key,
        entry.status,
        entry.removed,
    )
    assert entry_json(again) == entry_json(entry)
