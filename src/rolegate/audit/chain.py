"""The hash chain: how an audit entry is encoded and hashed, and how a chain is checked.

Each entry's `hash` is SHA-256 over the canonical encoding (JSON, sorted keys, no spaces,
ASCII) of its `seq`, `ts`, `kind`, `actor`, `data` and `prev_hash`; `prev_hash` is the hash
of the entry before it (`GENESIS` for the first, `seq` 1). Editing an entry changes its hash;
deleting or reordering entries breaks a `seq` or a `prev_hash` link. `first_break` names the
first entry where any of that shows.

>>> entries = link(head=None, events=[AuditEvent(ts, "key.create", actor, data)])
>>> first_break(entries) is None
True
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64


def canonical(value: Any) -> str:
    """One text for one value: what is hashed, stored and exported."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """Something to audit, before it has a place in the chain."""

    ts: float
    kind: str
    actor: dict[str, Any] | None
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    ts: float
    kind: str
    actor: dict[str, Any] | None
    data: dict[str, Any]
    prev_hash: str
    hash: str

    def body(self) -> dict[str, Any]:
        """The hashed fields."""
        return {"seq": self.seq, "ts": self.ts, "kind": self.kind, "actor": self.actor,
                "data": self.data, "prev_hash": self.prev_hash}

    def to_json(self) -> str:
        return canonical({**self.body(), "hash": self.hash})

    @classmethod
    def from_json(cls, line: str) -> AuditEntry:
        fields = json.loads(line)
        return cls(seq=fields["seq"], ts=fields["ts"], kind=fields["kind"],
                   actor=fields["actor"], data=fields["data"], prev_hash=fields["prev_hash"],
                   hash=fields["hash"])


def hash_of(body: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(body).encode("ascii")).hexdigest()


def link(head: tuple[int, str] | None, events: Sequence[AuditEvent]) -> list[AuditEntry]:
    """`events` as entries following `head` (the last entry's seq and hash; None: empty)."""
    seq, prev = head if head is not None else (0, GENESIS)
    entries = []
    for event in events:
        seq += 1
        entry = AuditEntry(seq, event.ts, event.kind, event.actor, event.data, prev, "")
        prev = hash_of(entry.body())
        entries.append(dataclasses.replace(entry, hash=prev))
    return entries


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first entry where the chain does not hold, and why."""

    seq: int
    reason: str


def first_break(entries: Iterable[AuditEntry], *,
                after: tuple[int, str] | None = None) -> ChainBreak | None:
    """The first broken entry of `entries` (in stored order), or None when the chain holds.
    `after`: the entry before the first one (a chain read from the middle); None: from seq 1."""
    seq, prev = after if after is not None else (0, GENESIS)
    for entry in entries:
        if entry.seq != seq + 1:
            return ChainBreak(entry.seq, f"expected seq {seq + 1} after {seq}: an entry is "
                              "missing or out of order")
        if entry.prev_hash != prev:
            return ChainBreak(entry.seq, "prev_hash does not match the hash of the entry "
                              "before it")
        if hash_of(entry.body()) != entry.hash:
            return ChainBreak(entry.seq, "hash does not match the entry's content: it was "
                              "edited")
        seq, prev = entry.seq, entry.hash
    return None
