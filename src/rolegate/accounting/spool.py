"""`Spool`: usage records the database could not take, kept on disk until it can.

A spool is a directory of JSON-lines segment files (`usage-000000000001.jsonl`, …), one record
a line. `append` adds a batch to the newest segment and fsyncs it before it returns, so a batch
once spooled survives the process being killed and the machine losing power. A segment is
closed once it holds `segment_bytes`; `oldest()` reads the oldest closed-or-open segment whole
and `remove()` deletes it once its records are in the database, so records are replayed in the
order they were spooled. A half-written last line (the process died in the middle of an append,
before the batch was acknowledged) is skipped with a warning. With `accounting.write_ahead`
every record is appended as its request ends, without fsync (`is_synced=False`): it outlives
the process being killed, not the machine losing power.

The spool is bounded: an append that would take it past `max_bytes` raises `SpoolFull` and
writes nothing. The recorder then keeps those records in memory and the gateway refuses new
paid requests with 503 until the spool drains (`Recorder.is_accepting`): a refused request is
retried by its caller, an unrecorded one is never paid for.

Each process owns one slot (`slot-N/`) of the configured directory, held with an exclusive
`flock` for its lifetime (the kernel releases it however the process ends). `open()` takes the
first free slot and moves into it the segments of every other free slot after its own, so the
spool of a process that crashed (or of a worker no longer started) is replayed by the next
process to start.

>>> spool = Spool(Path("state/usage-spool"), max_bytes=256 << 20); spool.open()
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import fields
from itertools import count
from pathlib import Path
from typing import Any

from rolegate.accounting.records import UsageRecord

log = logging.getLogger("rolegate.accounting")
SEGMENT_BYTES = 4 << 20
LOCK_FILE = ".lock"
_PREFIX, _SUFFIX = "usage-", ".jsonl"
_FIELDS = tuple(column.name for column in fields(UsageRecord))


class SpoolFull(Exception):
    """The spool holds `max_bytes` already: the batch was not written."""


class Spool:
    """Records waiting on disk for the database, oldest first (see the module's docstring)."""

    def __init__(self, directory: Path, *, max_bytes: int,
                 segment_bytes: int = SEGMENT_BYTES) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._segment_bytes = segment_bytes
        self.slot: Path | None = None
        self._lock = -1
        self._segments: dict[Path, list[int]] = {}  # oldest first: [bytes, records]
        self._appending: Path | None = None  # the newest segment, while it takes appends
        self._next = count(1)
        # Appends come from the event loop (`accounting.write_ahead`) while the flusher reads
        # and removes segments in a thread.
        self._guard = threading.Lock()
        # Totals kept as they change (read from the event loop while a thread appends).
        self.records = 0  # the spool's depth
        self.bytes = 0

    def open(self) -> None:
        """Take a slot and adopt what free slots hold (see the module's docstring)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for index in count():
            slot = self.directory / f"slot-{index}"
            lock = _try_lock(slot)
            if lock >= 0:
                self.slot, self._lock = slot, lock
                break
        assert self.slot is not None
        self._adopt(self.slot)
        for other in sorted(self.directory.glob("slot-*")):
            if other != self.slot and (lock := _try_lock(other)) >= 0:
                try:
                    self._adopt(other)
                finally:
                    os.close(lock)
        if self._segments:
            log.warning("%d usage records were left in the spool %s; they are written to the "
                        "database before new ones", self.records, self.directory)

    def close(self) -> None:
        if self._lock >= 0:
            os.close(self._lock)  # closing the descriptor releases the lock
            self._lock = -1

    def append(self, records: Sequence[UsageRecord], *, is_synced: bool = True) -> None:
        """Add `records` after everything spooled, in the file (and, `is_synced`, on disk:
        fsync'd) when this returns; raises `SpoolFull`, or `OSError` (then nothing of the
        batch stays in the spool). Without `is_synced` the records outlive the process (the
        kernel holds them) but not the machine."""
        if not records:
            return
        data = b"".join(spooled_line(record) for record in records)
        with self._guard:
            self._append(data, len(records), is_synced)

    def _append(self, data: bytes, count: int, is_synced: bool) -> None:
        if self.bytes + len(data) > self.max_bytes:
            raise SpoolFull(f"the usage spool holds {self.bytes} of {self.max_bytes} bytes")
        segment = self._appending
        if segment is None or self._segments[segment][0] >= self._segment_bytes:
            segment = self._appending = self._new_segment()
        size = self._segments.get(segment, [0, 0])[0]
        descriptor = os.open(segment, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(descriptor, data)
            if is_synced:
                os.fsync(descriptor)
        except OSError:
            os.ftruncate(descriptor, size)  # no half batch for the next append to follow
            raise
        finally:
            os.close(descriptor)
        if segment not in self._segments:
            if is_synced:
                _sync_directory(segment.parent)  # the new file's name is durable too
            self._segments[segment] = [0, 0]
        self._segments[segment][0] += len(data)
        self._segments[segment][1] += count
        self.bytes += len(data)
        self.records += count

    def oldest(self) -> tuple[Path, list[UsageRecord]] | None:
        """The oldest segment and its records (None: the spool is empty). Appends after this
        go to a new segment, so removing this one never removes them."""
        with self._guard:
            if not self._segments:
                return None
            segment = next(iter(self._segments))
            if segment == self._appending:
                self._appending = None
        return segment, read_segment(segment)  # no longer appended to: read unguarded

    def remove(self, segment: Path) -> None:
        """Forget `segment`, whose records are now in the database."""
        segment.unlink(missing_ok=True)
        with self._guard:
            size, records = self._segments.pop(segment)
            self.bytes -= size
            self.records -= records

    def _adopt(self, slot: Path) -> None:
        for segment in sorted(slot.glob(f"{_PREFIX}*{_SUFFIX}")):
            target = self._new_segment()
            if segment != target:
                segment.rename(target)
            records = read_segment(target)
            if records:
                size = target.stat().st_size
                self._segments[target] = [size, len(records)]
                self.bytes += size
                self.records += len(records)
            else:
                target.unlink()
        assert self.slot is not None
        _sync_directory(self.slot)

    def _new_segment(self) -> Path:
        assert self.slot is not None
        return self.slot / f"{_PREFIX}{next(self._next):012d}{_SUFFIX}"


def spooled_line(record: UsageRecord) -> bytes:
    """One record as one line of ASCII JSON."""
    # Field by field: `dataclasses.asdict` deep-copies every value (a write-ahead spool runs
    # this once per request).
    values = {name: getattr(record, name) for name in _FIELDS}
    return json.dumps(values, separators=(",", ":")).encode("ascii") + b"\n"


def read_segment(segment: Path) -> list[UsageRecord]:
    """The records of one segment file; a line that is not a record (a half-written last
    line) is skipped and logged."""
    records = []
    for number, line in enumerate(segment.read_bytes().splitlines(), 1):
        try:
            records.append(spooled_record(json.loads(line)))
        except (ValueError, TypeError, KeyError):
            log.warning("%s line %d is not a usage record (cut short when the process "
                        "stopped?); skipped", segment, number)
    return records


def spooled_record(data: dict[str, Any]) -> UsageRecord:
    dimensions = tuple((str(name), str(value)) for name, value in data.pop("dimensions", ()))
    return UsageRecord(**data, dimensions=dimensions)


def _try_lock(slot: Path) -> int:
    """A descriptor holding `slot`'s lock, or -1 when another process holds it."""
    slot.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(slot / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        return -1
    return descriptor


def _sync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
