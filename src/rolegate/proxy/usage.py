"""`UsageTap`: reads token usage from an upstream reply as it passes, without delaying it.

A JSON reply carries `usage` at its top level; a stream (SSE) carries it in one of its last
`data:` events (OpenAI sends it when `stream_options.include_usage` is set). The tap sees each
chunk after it has been handed on, keeps only an incomplete trailing line between chunks, and
parses only `data:` lines that mention `"usage"`. Both OpenAI's names (`prompt_tokens`,
`completion_tokens`) and the Responses API's (`input_tokens`, `output_tokens`, also nested in a
`response` object of its stream events) are understood.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from rolegate.accounting.records import TokenUsage
from rolegate.errors import GatewayError

MAX_LINE = 1024 * 1024


class UsageTap:
    """>>> tap = UsageTap(is_stream=True); chunks = tap.watch(chunks); ...; tap.usage"""

    def __init__(self, *, is_stream: bool) -> None:
        self.is_stream = is_stream
        self.usage = TokenUsage()
        self.is_complete = False
        self.failed_status: int | None = None
        self._partial = b""
        self._body: list[bytes] = []
        self._is_finished = False

    async def watch(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """The same chunks, observed after each one has been passed on."""
        try:
            async for chunk in chunks:
                yield chunk
                self.observe(chunk)
        except GatewayError as error:
            self.failed_status = error.status
            raise
        self.is_complete = True
        self.finish()

    def observe(self, chunk: bytes) -> None:
        if not self.is_stream:
            self._body.append(chunk)
            return
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        if len(self._partial) > MAX_LINE:
            self._partial = b""
        for line in lines:
            self._read_event_line(line)

    def finish(self) -> None:
        """The reply has ended: read the JSON body, or a last stream line without newline."""
        if self._is_finished:
            return
        self._is_finished = True
        if self.is_stream:
            self._read_event_line(self._partial)
            self._partial = b""
            return
        body, self._body = b"".join(self._body), []
        self._read_json(body)

    def _read_event_line(self, line: bytes) -> None:
        line = line.strip()
        if line.startswith(b"data:") and b'"usage"' in line:
            self._read_json(line[5:])

    def _read_json(self, data: bytes) -> None:
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        if isinstance(value, dict):
            found = read_usage(value)
            if found is not None:
                self.usage = found


def read_usage(value: dict[str, Any]) -> TokenUsage | None:
    usage = value.get("usage")
    if not isinstance(usage, dict) and isinstance(value.get("response"), dict):
        usage = value["response"].get("usage")
    if not isinstance(usage, dict):
        return None
    prompt = _count(usage, "prompt_tokens", "input_tokens")
    completion = _count(usage, "completion_tokens", "output_tokens")
    total = _count(usage, "total_tokens") or prompt + completion
    return TokenUsage(prompt, completion, total)


def _count(usage: dict[str, Any], *names: str) -> int:
    for name in names:
        value = usage.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return 0


def with_stream_usage(body: dict[str, Any]) -> dict[str, Any] | None:
    """The body asking for a final usage chunk, or None when it already asks (or says not to)."""
    options = body.get("stream_options")
    if options is None:
        return {**body, "stream_options": {"include_usage": True}}
    if isinstance(options, dict) and "include_usage" not in options:
        return {**body, "stream_options": {**options, "include_usage": True}}
    return None


async def without_usage_events(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The stream without its usage-only events (`"choices": []` and a `usage`), for callers
    that did not ask for them: some clients read `choices[0]` of every chunk. Chunks are passed
    on at line boundaries; a line is held back only until its end arrives."""
    pending = b""
    async for chunk in chunks:
        data = pending + chunk
        cut = data.rfind(b"\n") + 1
        complete, pending = data[:cut], data[cut:]
        if len(pending) > MAX_LINE:
            complete, pending = data, b""
        kept = _drop_usage_lines(complete) if b'"usage"' in complete else complete
        if kept:
            yield kept
    if pending:
        yield pending


def _drop_usage_lines(data: bytes) -> bytes:
    lines = data.split(b"\n")
    kept = [line for line in lines if not _is_usage_only(line)]
    return b"\n".join(kept)


def _is_usage_only(line: bytes) -> bool:
    stripped = line.strip()
    if not stripped.startswith(b"data:") or b'"usage"' not in stripped:
        return False
    try:
        value = orjson.loads(stripped[5:])
    except orjson.JSONDecodeError:
        return False
    return isinstance(value, dict) and value.get("choices") == [] and "usage" in value
