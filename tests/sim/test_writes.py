"""How the simulator writes: corked transports, batched stream events, direct text frames."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import pytest
from websockets.frames import OP_TEXT, Frame

from orchestrator.sim import ModelProfile
from orchestrator.sim.cork import FLUSH_AT_BYTES, CorkedTransport
from orchestrator.sim.pacing import Pacer
from orchestrator.sim.sse import SSEResponse
from orchestrator.sim.ws_protocol import text_frame


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_text_frame_is_what_websockets_would_send(size: int) -> None:
    payload = b"x" * size
    assert text_frame(payload) == Frame(OP_TEXT, payload).serialize(mask=False, extensions=[])


async def corked_pair() -> tuple[CorkedTransport, socket.socket]:
    ours, peer = socket.socketpair()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_connection(asyncio.Protocol, sock=ours)
    peer.setblocking(False)
    return CorkedTransport(transport, loop), peer


async def read_to_eof(peer: socket.socket) -> bytes:
    loop = asyncio.get_running_loop()
    data = b""
    while chunk := await loop.sock_recv(peer, 1 << 20):
        data += chunk
    return data


async def test_writes_of_one_tick_leave_together_on_the_next() -> None:
    corked, peer = await corked_pair()
    for piece in (b"one ", b"two ", b"three"):
        corked.write(piece)
    assert corked.get_write_buffer_size() == len(b"one two three")
    with pytest.raises(BlockingIOError):
        peer.recv(100)  # nothing was sent during this tick
    await asyncio.sleep(0)
    assert corked.get_write_buffer_size() == 0
    corked.close()
    assert await read_to_eof(peer) == b"one two three"
    peer.close()


@pytest.mark.parametrize("end", ["close", "abort"])
async def test_close_and_abort_send_what_was_corked_first(end: str) -> None:
    corked, peer = await corked_pair()
    corked.write(b"last frames ")
    corked.write(b"before the drop")
    getattr(corked, end)()
    assert await read_to_eof(peer) == b"last frames before the drop"
    peer.close()


async def test_a_large_burst_is_not_held_back_to_the_next_tick() -> None:
    corked, peer = await corked_pair()
    corked.write(b"a" * FLUSH_AT_BYTES)
    first = peer.recv(1 << 20)  # already sent, within this tick
    assert first and set(first) == {ord("a")}
    corked.close()
    assert len(first + await read_to_eof(peer)) == FLUSH_AT_BYTES
    peer.close()


class VirtualClock:
    """Time advances only when the pacer sleeps."""

    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s

    async def sleep(self, seconds: float) -> None:
        self.now_s += seconds
        await asyncio.sleep(0)


async def sse_bodies(profile: ModelProfile, n_tokens: int) -> list[bytes]:
    """Run an ``SSEResponse`` whose chunks are paced like a generation; its body messages."""
    clock = VirtualClock()
    pacer = Pacer(profile, 0, clock=clock, sleep=clock.sleep)

    async def chunks() -> AsyncIterator[bytes]:
        await pacer.first_token()
        for i in range(n_tokens):
            if i:
                await pacer.next_token()
            yield f"{i};".encode()

    sent: list[MutableMapping[str, Any]] = []
    never = asyncio.Event()

    async def receive() -> MutableMapping[str, Any]:
        await never.wait()
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await SSEResponse(chunks(), pacer=pacer)({"type": "http"}, receive, send)
    return [m["body"] for m in sent if m["type"] == "http.response.body"]


async def test_sse_unpaced_events_go_out_once_per_loop_yield() -> None:
    bodies = await sse_bodies(ModelProfile(name="u"), 40)
    assert bodies[0] == b"".join(f"{i};".encode() for i in range(32))  # up to the yield
    assert bodies[1] == b"".join(f"{i};".encode() for i in range(32, 40))
    assert bodies[2:] == [b""]  # end of the body


async def test_sse_paced_tokens_each_go_out_before_the_next_wait() -> None:
    bodies = await sse_bodies(ModelProfile(name="p", ttft_ms=50, tokens_per_s=70), 5)
    assert bodies == [f"{i};".encode() for i in range(5)] + [b""]


def test_pipelined_creates_beyond_the_read_backlog_are_all_answered_in_order(
    sim: Any,
) -> None:
    """Client frames are taken in the protocol callback; a backlog of more than
    ``MAX_QUEUED_MESSAGES`` pauses reading and the worker resumes it (no deadlock)."""
    import json

    from websockets.sync.client import connect

    from orchestrator.sim.ws_protocol import MAX_QUEUED_MESSAGES

    n = MAX_QUEUED_MESSAGES * 3
    with connect(sim.ws_url + "/responses") as ws:
        for i in range(n):
            ws.send(json.dumps({"type": "response.create", "model": "sim-bench",
                                "input": f"say hello {i}", "max_output_tokens": 1,
                                "stream_id": i}))
        ws.send("not json")
        done: list[int] = []
        errors = 0
        while len(done) < n or not errors:
            frame = json.loads(ws.recv(timeout=20))
            if frame["type"] in ("response.completed", "response.incomplete"):
                done.append(frame["stream_id"])
            elif frame["type"] == "error":
                assert frame["error"]["code"] == "invalid_json"
                errors += 1
    assert done == list(range(n))
    assert errors == 1
