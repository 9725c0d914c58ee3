"""A raw loopback server for hostile-provider tests: each connection's request is read
(headers and body) and then handed to a scenario coroutine that writes whatever bytes it
likes, so a test can play a provider that breaks HTTP, SSE or WebSocket on purpose."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

Scenario = Callable[["Request", asyncio.StreamWriter], Awaitable[None]]
_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@dataclass
class Request:
    line: str
    headers: dict[str, str]
    body: bytes
    reader: asyncio.StreamReader


@dataclass
class Hostile:
    url: str  # http://127.0.0.1:port/v1
    requests: list[Request] = field(default_factory=list)


async def _read_request(reader: asyncio.StreamReader) -> Request:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    size = int(headers.get("content-length", "0"))
    body = await reader.readexactly(size) if size else b""
    return Request(lines[0], headers, body, reader)


@asynccontextmanager
async def hostile_server(scenario: Scenario) -> AsyncIterator[Hostile]:
    """Serve ``scenario`` on a loopback port until the block ends."""
    tasks: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            req = await _read_request(reader)
            server.requests.append(req)
            await scenario(req, writer)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            tasks.discard(task)
            writer.transport.abort()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    server = Hostile(url=f"http://127.0.0.1:{port}/v1")
    try:
        yield server
    finally:
        srv.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await srv.wait_closed()


def sse_head(status: int = 200, ctype: str = "text/event-stream", extra: str = "") -> bytes:
    """Response headers for a body that ends when the connection closes."""
    return (f"HTTP/1.1 {status} X\r\ncontent-type: {ctype}\r\n{extra}"
            "connection: close\r\n\r\n").encode()


def ws_accept(req: Request) -> bytes:
    """The 101 answer to ``req``'s WebSocket upgrade."""
    key = req.headers["sec-websocket-key"].encode()
    accept = base64.b64encode(hashlib.sha1(key + _WS_GUID).digest()).decode()
    return ("HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
            f"sec-websocket-accept: {accept}\r\n\r\n").encode()


def ws_frame(payload: bytes, *, opcode: int = 1, fin: bool = True, size: int | None = None
             ) -> bytes:
    """One unmasked server frame; ``size`` overrides the declared payload length."""
    n = len(payload) if size is None else size
    first = (0x80 if fin else 0) | opcode
    if n < 126:
        head = struct.pack("!BB", first, n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", first, 126, n)
    else:
        head = struct.pack("!BBQ", first, 127, n)
    return head + payload


async def ws_messages(req: Request) -> AsyncIterator[bytes]:
    """The payloads of the client's (masked) frames, one per frame, until it closes."""
    reader = req.reader
    while True:
        b1, b2 = await reader.readexactly(2)
        if b1 & 0x0F == 8:  # close: the connection ends here
            return
        n = b2 & 0x7F
        if n == 126:
            n = struct.unpack("!H", await reader.readexactly(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", await reader.readexactly(8))[0]
        mask = await reader.readexactly(4)
        data = bytearray(await reader.readexactly(n))
        for i in range(n):
            data[i] ^= mask[i % 4]
        yield bytes(data)
