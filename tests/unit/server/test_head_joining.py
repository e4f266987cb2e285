"""`HeadJoiningTransport`: a response's head leaves with its body's first part in one write;
a head alone leaves at the next turn of the loop; `100 Continue` is never held."""

from __future__ import annotations

import asyncio

from rolegate.server.protocol import CONTINUE, HeadJoiningTransport

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


class RecordingTransport:
    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []
        self.is_closed = False

    def write(self, data: bytes) -> None:
        self.calls.append(("write", data))

    def writelines(self, parts) -> None:
        self.calls.append(("writelines", b"".join(parts)))

    def is_closing(self) -> bool:
        return self.is_closed

    def close(self) -> None:
        self.calls.append(("close", b""))
        self.is_closed = True


def joining() -> tuple[HeadJoiningTransport, RecordingTransport]:
    raw = RecordingTransport()
    return HeadJoiningTransport(raw, asyncio.get_running_loop()), raw  # type: ignore[arg-type]


async def test_a_head_and_its_body_leave_in_one_write():
    transport, raw = joining()
    transport.write(HEAD)
    assert raw.calls == []
    transport.write(b"{}")
    await asyncio.sleep(0)
    assert raw.calls == [("writelines", HEAD + b"{}")]


async def test_a_head_without_a_body_yet_leaves_at_the_next_turn_and_chunks_follow():
    transport, raw = joining()
    transport.write(HEAD)
    await asyncio.sleep(0)
    assert raw.calls == [("write", HEAD)]
    transport.write(b"data: 1\n\n")
    assert raw.calls[-1] == ("write", b"data: 1\n\n")


async def test_continue_is_written_at_once_and_the_head_after_it_is_still_joined():
    transport, raw = joining()
    transport.write(CONTINUE)
    assert raw.calls == [("write", CONTINUE)]
    transport.write(HEAD)
    transport.write(b"{}")
    assert raw.calls[1:] == [("writelines", HEAD + b"{}")]


async def test_close_writes_a_held_head_first():
    transport, raw = joining()
    transport.write(HEAD)
    transport.close()
    await asyncio.sleep(0)
    assert raw.calls == [("write", HEAD), ("close", b"")]


async def test_a_head_held_for_a_connection_that_closed_is_dropped():
    transport, raw = joining()
    transport.write(HEAD)
    raw.is_closed = True
    await asyncio.sleep(0)
    assert raw.calls == []
