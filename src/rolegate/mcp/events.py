"""`ScreenedEvents`: an MCP server's SSE stream relayed event by event as it arrives, each
JSON-RPC message passed through the caller's `Screen` (`screen.py`).

An event whose data is not one JSON object is dropped: the gateway cannot tell what it names,
and a client might read it differently. An event the screen drops is left out whole; the others
keep their `id:`, `event:` and `retry:` lines (resumption with `Last-Event-ID` still works), their
data re-encoded from what was read.
"""

from __future__ import annotations

import orjson

from rolegate.mcp.screen import Screen
from rolegate.translate.events import EventTranslator


class ScreenedEvents(EventTranslator):
    def __init__(self, screen: Screen) -> None:
        super().__init__()
        self._screen = screen

    def _event(self, event: bytes) -> list[bytes]:
        lines = event.splitlines()
        data = b"\n".join(line[5:].removeprefix(b" ") for line in lines
                          if line.startswith(b"data:"))
        if not data:  # comments, `retry:`, keep-alives: nothing named
            return [event + b"\n\n"]
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            return []
        if not isinstance(value, dict):
            return []
        screened = self._screen.message(value)
        if screened is None:
            return []
        kept = [line for line in lines if not line.startswith(b"data:")]
        return [b"\n".join([*kept, b"data: " + orjson.dumps(screened)]) + b"\n\n"]
