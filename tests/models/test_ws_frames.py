"""The WebSocket client cuts the server's byte stream into frames itself: a raw loopback
server writes a crafted stream (every length encoding, a ping, a fragmented message, a
close) in pieces of every size, and the client must read the same messages, answer the
ping and see the close, whether its own frame cutter or ``websockets``' parser reads them
(the latter when the handshake response arrives with frame bytes after it)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct

import pytest
from websockets.exceptions import ConnectionClosed

from orchestrator.models.types import EndpointConfig
from orchestrator.models.ws_conn import open_ws
from orchestrator.models.ws_frames import frame_bounds

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXTS = [b"", b"hello", b"x" * 125, b"y" * 126, "é".encode() * 150, b"z" * 65_536]
PING = b"are you there"


def frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    first = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        return bytes((first, n)) + payload
    if n < 65_536:
        return struct.pack("!BBH", first, 126, n) + payload
    return struct.pack("!BBQ", first, 127, n) + payload


def stream() -> tuple[bytes, list[bytes]]:
    """The server's frames after the handshake, and the messages the client must read."""
    out, expected = [], []
    for i, text in enumerate(TEXTS):
        out.append(frame(1, text))
        expected.append(text)
        if i == 2:
            out.append(frame(9, PING))  # the client must answer with a pong
    out += [frame(1, b"frag-", fin=False), frame(0, b"ment-", fin=False), frame(0, b"ed")]
    expected.append(b"frag-ment-ed")
    out.append(frame(1, b"last"))
    expected.append(b"last")
    out.append(frame(8, struct.pack("!H", 1000)))
    return b"".join(out), expected


async def read_client_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    first, second = await reader.readexactly(2)
    n = second & 0x7F
    if n == 126:
        n = struct.unpack("!H", await reader.readexactly(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", await reader.readexactly(8))[0]
    mask = await reader.readexactly(4)
    data = await reader.readexactly(n)
    return first & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


async def serve(chunk: int, glued: bool, got: dict[str, object]) -> asyncio.Server:
    data, _ = stream()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        key = next(line.split(":", 1)[1].strip() for line in head.split("\r\n")
                   if line.lower().startswith("sec-websocket-key:"))
        accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
        response = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n").encode()
        # glued: the first frame bytes arrive with the handshake response, cut mid-frame
        body = data
        if glued:
            writer.write(response + body[:3])
            body = body[3:]
        else:
            writer.write(response)
        await writer.drain()
        got["request"] = await read_client_frame(reader)  # as a model server, answer first
        for i in range(0, len(body), chunk):
            writer.write(body[i:i + chunk])
            await writer.drain()
            if chunk < 64:
                await asyncio.sleep(0)
        got["pong"] = await read_client_frame(reader)
        got["close"] = await read_client_frame(reader)
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


CASES = [(1, False), (7, False), (1000, False), (1 << 20, False),
         (7, True), (1000, True), (1 << 20, True)]


@pytest.mark.parametrize(("chunk", "glued"), CASES, ids=[
    f"{chunk}-{'websockets-parser' if glued else 'own-cutter'}" for chunk, glued in CASES])
async def test_client_reads_every_frame_shape_in_pieces_of_any_size(
    chunk: int, glued: bool
) -> None:
    got: dict[str, object] = {}
    server = await serve(chunk, glued, got)
    port = server.sockets[0].getsockname()[1]
    cfg = EndpointConfig(provider="openai-ws", base_url=f"http://127.0.0.1:{port}/v1",
                         ws_ping_interval_s=None)
    conn = await open_ws(f"ws://127.0.0.1:{port}/v1/responses", cfg)
    assert conn._own_frames is not glued  # which reader this case exercises
    await conn.send_text(b'{"type": "response.create"}')
    messages: list[bytes] = []
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            messages.extend(await asyncio.wait_for(conn.recv_batch(), 10))
    server.close()
    await server.wait_closed()
    _, expected = stream()
    assert messages == expected
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000
    assert got["request"] == (1, b'{"type": "response.create"}')
    assert got["pong"] == (10, PING)
    assert got["close"][0] == 8  # type: ignore[index]


def test_frame_bounds_needs_the_whole_frame() -> None:
    data = frame(1, b"a" * 300)
    assert frame_bounds(data, 0) == (4, len(data))
    assert all(frame_bounds(data[:n], 0) is None for n in range(len(data)))
    masked = bytes((0x81, 0x80 | 3)) + b"\x01\x02\x03\x04" + b"abc"
    assert frame_bounds(masked, 0) == (6, 9)
    long = frame(1, b"b" * 70_000)
    assert frame_bounds(b"xx" + long, 2) == (12, 2 + len(long))
