"""The audit chain: a chain that was not touched holds; editing, deleting or reordering any one
entry is found, and the first broken entry is named."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from rolegate.audit.chain import GENESIS, AuditEntry, AuditEvent, first_break, hash_of, link


def events(count: int) -> list[AuditEvent]:
    return [AuditEvent(1000.0 + index, "authz", {"issuer": "https://idp", "subject": f"u{index}"},
                       {"decision": "allow", "rule": "analysts", "model": "gpt-4o"})
            for index in range(count)]


def test_an_untouched_chain_holds_and_links_each_entry_to_the_one_before():
    entries = link(None, events(5))

    assert first_break(entries) is None
    assert [entry.seq for entry in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == GENESIS
    assert all(later.prev_hash == earlier.hash for earlier, later in itertools.pairwise(entries))


def test_appending_after_a_head_continues_the_chain():
    first = link(None, events(3))
    more = link((first[-1].seq, first[-1].hash), events(2))

    assert first_break([*first, *more]) is None
    assert first_break(more, after=(first[-1].seq, first[-1].hash)) is None


@pytest.mark.parametrize("field", ["ts", "kind", "actor", "data"])
@pytest.mark.parametrize("index", [0, 2, 4])
def test_editing_any_field_of_any_entry_is_found_at_that_entry(field, index):
    entries = link(None, events(5))
    values = {"ts": 1.0, "kind": "key.create", "actor": {"issuer": "x", "subject": "y"},
              "data": {"decision": "deny"}}
    entries[index] = dataclasses.replace(entries[index], **{field: values[field]})

    broken = first_break(entries)

    assert broken is not None and broken.seq == index + 1
    assert "edited" in broken.reason


def test_an_edit_that_also_rehashes_the_entry_is_found_at_the_next_one():
    entries = link(None, events(5))
    edited = dataclasses.replace(entries[2], data={"decision": "deny"})
    entries[2] = dataclasses.replace(edited, hash=hash_of(edited.body()))

    broken = first_break(entries)

    assert broken is not None and broken.seq == 4
    assert "prev_hash" in broken.reason


@pytest.mark.parametrize("index", [0, 2, 4], ids=["first", "middle", "last-but-kept"])
def test_deleting_one_entry_is_found(index):
    entries = link(None, events(6))
    del entries[index]

    broken = first_break(entries)

    assert broken is not None and broken.seq == index + 2
    assert "missing or out of order" in broken.reason


def test_deleting_an_entry_and_renumbering_the_rest_is_found():
    entries = link(None, events(5))
    del entries[1]
    entries = [dataclasses.replace(entry, seq=number)
               for number, entry in enumerate(entries, start=1)]

    broken = first_break(entries)

    assert broken is not None and broken.seq == 2


def test_reordering_two_entries_is_found():
    entries = link(None, events(5))
    entries[1], entries[2] = entries[2], entries[1]

    broken = first_break(entries)

    assert broken is not None and broken.seq == 3


def test_swapping_two_entries_contents_while_keeping_the_seq_order_is_found():
    entries = link(None, events(5))
    one, two = entries[1], entries[2]
    entries[1] = dataclasses.replace(two, seq=2)
    entries[2] = dataclasses.replace(one, seq=3)

    broken = first_break(entries)

    assert broken is not None and broken.seq == 2


def test_an_entry_survives_its_json_line_unchanged():
    entry = link(None, events(1))[0]

    assert AuditEntry.from_json(entry.to_json()) == entry
    assert '"hash":' in entry.to_json() and " " not in entry.to_json().split('"data"')[0]
