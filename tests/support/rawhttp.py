"""A raw HTTP/1.1 client over a socket, for requests no HTTP library would send as written:
un-normalised paths, oversized or trickled heads and bodies."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


@dataclass
class RawReply:
    status: int | None  # None: the connection closed without a status line
    head: bytes
    body: bytes


async def exchange(port: int, data: bytes, *, trickle: list[tuple[float, bytes]] = (),
                   timeout: float = 15.0) -> RawReply:
    """Send `data`, then each `(delay, bytes)` of `trickle`, and read until the server closes.

    The server must answer and close within `timeout` (a generous bound against hanging the
    test, not a timing assertion). Writes that fail because the server closed are ignored."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    # Read while writing: once the server answers and closes, further writes would make its
    # kernel reset the connection, and a reset can discard the answer before it is read.
    reading = asyncio.ensure_future(_read_all(reader))
    try:
        async with asyncio.timeout(timeout):
            try:
                writer.write(data)
                await writer.drain()
                for delay, chunk in trickle:
                    await asyncio.wait([reading], timeout=delay)
                    if reading.done():
                        break
                    writer.write(chunk)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            received = await reading
    finally:
        reading.cancel()
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, OSError):
            pass
    return _parse(received)


async def _read_all(reader: asyncio.StreamReader) -> bytes:
    chunks = []
    try:
        while chunk := await reader.read(65536):
            chunks.append(chunk)
    except (ConnectionError, OSError):
        pass
    return b"".join(chunks)


def _parse(received: bytes) -> RawReply:
    head, _, body = received.partition(b"\r\n\r\n")
    parts = head.split(b" ", 2)
    if len(parts) >= 2 and parts[0].startswith(b"HTTP/1.") and parts[1].isdigit():
        return RawReply(int(parts[1]), head, body)
    return RawReply(None, head, body)


def request(method: str, target: bytes, *, headers: dict[str, str] | None = None,
            body: bytes = b"") -> bytes:
    """The bytes of one request with `Connection: close`, target sent exactly as given."""
    lines = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1",
             b"Connection: close", b"Content-Length: " + str(len(body)).encode()]
    lines += [f"{name}: {value}".encode() for name, value in (headers or {}).items()]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body
