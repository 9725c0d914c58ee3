"""Write coalescing ("corking") for the simulator's connections, as streaming servers do.

An unpaced answer produces all its events in one event-loop tick; written one by one, each
event costs a ``send()`` system call, a TCP segment and a wake-up of the client, on HTTP
SSE and on the WebSocket alike. ``CorkedTransport`` collects the writes of one tick and
hands them to the real transport as one write at the start of the next loop iteration
(``call_soon``), or at once when ``FLUSH_AT_BYTES`` pile up. Paced tokens are written in
separate ticks, so each still leaves on schedule. ``close``/``abort``/``write_eof`` flush
first: a simulated drop loses no frame that was written before it, and order is kept.

``CorkedHTTPProtocol`` is uvicorn's own HTTP protocol on such a transport; a WebSocket
upgraded from it inherits the transport. Over TLS the real transport is asyncio's SSL
transport: it has every method used here except ``write_eof`` (it raises
``NotImplementedError``, as it would uncorked; nothing in uvicorn or the simulator calls it).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.auto import AutoHTTPProtocol

# Large enough for a whole one-token answer and the events of an unpaced burst; small enough
# that a long burst reaches the kernel (and its flow control) in pieces.
FLUSH_AT_BYTES = 64 * 1024


class CorkedTransport:
    """An ``asyncio.Transport`` whose writes within one loop tick leave as one write."""

    def __init__(self, inner: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._inner = inner
        self._loop = loop
        self._chunks: list[bytes] = []
        self._size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if self._inner.is_closing():
            self._inner.write(data)  # as an uncorked transport would (asyncio decides)
            return
        if not self._chunks:
            self._loop.call_soon(self.flush)
        self._chunks.append(data if type(data) is bytes else bytes(data))
        self._size += len(data)
        if self._size >= FLUSH_AT_BYTES:
            self.flush()

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        """Hand everything corked so far to the real transport (no-op when empty)."""
        chunks = self._chunks
        if not chunks:
            return
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._size = 0
        if not self._inner.is_closing():  # else the peer is gone: nothing can arrive
            self._inner.write(data)

    def close(self) -> None:
        self.flush()
        self._inner.close()

    def abort(self) -> None:
        self.flush()
        self._inner.abort()

    def write_eof(self) -> None:
        self.flush()
        self._inner.write_eof()

    def get_write_buffer_size(self) -> int:
        return self._size + self._inner.get_write_buffer_size()

    def __getattr__(self, name: str) -> Any:  # everything else is the real transport's
        return getattr(self._inner, name)


class CorkedHTTPProtocol(AutoHTTPProtocol):  # type: ignore[misc,valid-type]
    """uvicorn's HTTP protocol (httptools or h11, as uvicorn picks) on a corked transport."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        super().connection_made(CorkedTransport(transport, asyncio.get_running_loop()))
