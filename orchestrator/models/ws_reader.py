"""A ``websockets`` client connection that hands the reader every message received so far
in one await (``recv_batch``), instead of one ``recv()`` per message, and writes an
already-encoded text message without ``send()``'s context manager (``send_text``).

A response arrives as a burst of small frames (nine for a one-token answer, often in one
TCP segment); ``recv()`` runs each through an assembler queue with flow control and a
waiter. Here the data frames of a burst go to a plain list and wake the reader once.
Control frames, the handshake and closing stay ``websockets``' own. Fragmented messages
are reassembled; reading pauses while ``MAX_QUEUED_MESSAGES`` wait for the reader, like
``websockets``' own ``max_queue``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.frames import Frame, Opcode
from websockets.protocol import State

MAX_QUEUED_MESSAGES = 64


class BatchingConnection(ClientConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._messages: list[bytes] = []
        self._parts: list[bytes] | None = None  # a fragmented message so far
        self._waiter: asyncio.Future[None] | None = None
        self._reading_paused = False

    async def recv_batch(self) -> list[bytes]:
        """Every complete message received and not yet returned (at least one), as bytes.

        Raises ``ConnectionClosed`` once the connection is closed and all were returned.
        """
        while not self._messages:
            if self.connection_lost_waiter.done():
                raise self.protocol.close_exc from getattr(self, "recv_exc", None)
            self._waiter = self.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        batch, self._messages = self._messages, []
        if self._reading_paused:
            self._reading_paused = False
            self.transport.resume_reading()
        return batch

    async def send_text(self, data: bytes) -> None:
        """Send UTF-8 ``data`` as one text message. The common case (open, nothing being
        sent in fragments, the socket writable) frames and writes it at once; anything
        else goes through ``send()``. Raises ``ConnectionClosed`` as ``send()`` does."""
        if self.fragmented_send_waiter is not None or self.protocol.state is not State.OPEN:
            await self.send(data, text=True)
            return
        self.protocol.send_text(data)
        try:
            self.send_data()
        except OSError as exc:
            self.transport.abort()
            await asyncio.shield(self.connection_lost_waiter)
            raise self.protocol.close_exc from exc
        if self.paused or self.transport.is_closing():
            await self.drain()

    def unread(self, messages: list[bytes]) -> None:
        """Put messages back in front, for the next ``recv_batch``."""
        if messages:
            self._messages[:0] = messages

    def process_event(self, event: Any) -> None:
        if self.response is None or not isinstance(event, Frame):
            super().process_event(event)  # the handshake
            return
        opcode = event.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if not event.fin:
                self._parts = [bytes(event.data)]
                return
            self._messages.append(bytes(event.data))
        elif opcode is Opcode.CONT and self._parts is not None:
            self._parts.append(bytes(event.data))
            if not event.fin:
                return
            self._messages.append(b"".join(self._parts))
            self._parts = None
        else:
            super().process_event(event)  # ping, pong, close
            return
        self._wake()
        if len(self._messages) >= MAX_QUEUED_MESSAGES and not self._reading_paused:
            self._reading_paused = True
            self.transport.pause_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
