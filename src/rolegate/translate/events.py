"""`EventTranslator`: the part every translated stream shares, cutting the upstream's bytes into
whole SSE events (a chunk may end mid-event; the rest waits for the next one)."""

from __future__ import annotations

import re
from typing import Any

import orjson

_EVENT_END = re.compile(rb"\r?\n\r?\n")


class EventTranslator:
    """`feed(chunk)` hands each whole event, without its blank line, to `_event`, and returns
    what those translate to."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self._pending + chunk
        out: list[bytes] = []
        start = 0
        for match in _EVENT_END.finditer(data):
            out += self._event(data[start:match.start()])
            start = match.end()
        self._pending = data[start:]
        return b"".join(out)

    def _event(self, event: bytes) -> list[bytes]:
        raise NotImplementedError


def event_data(event: bytes) -> dict[str, Any] | None:
    """The JSON object on an event's first `data:` line, if there is one."""
    for line in event.splitlines():
        if line.startswith(b"data:"):
            try:
                value = orjson.loads(line[5:])
            except orjson.JSONDecodeError:
                return None
            return value if isinstance(value, dict) else None
    return None
