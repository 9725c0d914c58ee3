"""A ``websockets`` client connection that hands the reader every message received so far
in one await (``recv_batch``), instead of one ``recv()`` per message, and writes an
already-encoded text message without ``send()``'s context manager (``send_text``).

A response arrives as a burst of small frames (nine for a one-token answer, often in one
TCP segment); ``recv()`` runs each through an assembler queue with flow control and a
waiter. Here the data frames of a burst go to a plain list and wake the reader once.
Control frames, the handshake and closing stay ``websockets``' own. Fragmented messages
are reassembled; reading pauses while ``MAX_QUEUED_MESSAGES`` wait for the reader, like
``websockets``' own ``max_queue``.

Once the handshake is done, ``data_received`` cuts the byte stream into frames itself
(``ws_frames``): a final text frame goes straight to the list, any other frame is handed
whole to ``websockets`` (which so always sees a stream cut at frame boundaries). Only when
the server's handshake response arrived with frame bytes after it (``websockets`` may then
hold part of a frame) does the connection keep ``websockets``' parser for everything.

A message (one frame, or a fragmented message so far) may hold ``MAX_MESSAGE_BYTES``;
past that the connection is aborted and ``recv_batch`` raises ``PayloadTooBig`` (the same
cap is ``websockets``' ``max_size`` for the frames it parses itself).
"""

from __future__ import annotations

import asyncio
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import PayloadTooBig
from websockets.frames import Frame, Opcode
from websockets.protocol import State

from orchestrator.models.ws_frames import FIN_TEXT, MASK_BIT, frame_bounds

MAX_QUEUED_MESSAGES = 64
MAX_MESSAGE_BYTES = 32 * 1024 * 1024


class BatchingConnection(ClientConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._messages: list[bytes] = []
        self._parts: list[bytes] | None = None  # a fragmented message so far
        self._parts_size = 0
        self.oversized = False  # a message over MAX_MESSAGE_BYTES arrived: aborted
        self._waiter: asyncio.Future[None] | None = None
        self._reading_paused = False
        self._own_frames = False  # True: data_received cuts frames (after a clean handshake)
        self._handshake = bytearray()  # the bytes read until the handshake completed
        self._pending = bytearray()  # the start of a frame that has not fully arrived

    async def recv_batch(self) -> list[bytes]:
        """Every complete message received and not yet returned (at least one), as bytes.

        Raises ``ConnectionClosed`` once the connection is closed and all were returned.
        """
        while not self._messages:
            if self.connection_lost_waiter.done():
                if self.oversized:
                    raise PayloadTooBig(None, MAX_MESSAGE_BYTES)
                raise self.protocol.close_exc from getattr(self, "recv_exc", None)
            if self.protocol.state is State.CLOSING:
                await self._closed_within_close_timeout()
                continue
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

    async def _closed_within_close_timeout(self) -> None:
        """The closing handshake has started. After the server's close frame it gets
        ``close_timeout`` to end the connection, however much it keeps sending; after a
        protocol error on our side (a frame too big, a bad frame) it is aborted at once."""
        if self.protocol.close_rcvd is None:
            self.transport.abort()
        deadline = self.close_deadline or self.loop.time() + (self.close_timeout or 0)
        try:
            async with asyncio.timeout_at(deadline):
                await asyncio.shield(self.connection_lost_waiter)
        except TimeoutError:
            self.transport.abort()
            await asyncio.shield(self.connection_lost_waiter)

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

    def discard_unread(self) -> None:
        """Drop every message received and not yet returned."""
        self._messages.clear()

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
                self._parts_size = len(event.data)
                return
            self._messages.append(bytes(event.data))
        elif opcode is Opcode.CONT and self._parts is not None:
            self._parts.append(bytes(event.data))
            self._parts_size += len(event.data)
            if self._parts_size > MAX_MESSAGE_BYTES:
                self._refuse()
                return
            if not event.fin:
                return
            self._messages.append(b"".join(self._parts))
            self._parts = None
        else:
            super().process_event(event)  # ping, pong, close
            return
        self._delivered()

    def data_received(self, data: bytes) -> None:
        self._receive(data)
        if self.protocol.state is State.CLOSING:
            self._wake()  # the reader starts the close timeout

    def _receive(self, data: bytes) -> None:
        if not self._own_frames:
            self._before_own_frames(data)
            return
        if self._pending:
            self._pending += data
            buf: bytes | bytearray = self._pending
        else:
            buf = data
        pos, got = self._cut_frames(buf)
        if buf is self._pending:
            del self._pending[:pos]
        elif pos < len(buf):
            self._pending += buf[pos:]
        if got:
            self._delivered()
        if len(self._pending) > MAX_MESSAGE_BYTES:  # one frame, not all of it here yet
            self._refuse()

    def _refuse(self) -> None:
        """A message grew past ``MAX_MESSAGE_BYTES``: drop it and the connection."""
        self.oversized = True
        self._parts = None
        self._pending = bytearray()
        self.transport.abort()

    def _delivered(self) -> None:
        """Messages were added: wake the reader; stop reading while too many wait."""
        self._wake()
        if len(self._messages) >= MAX_QUEUED_MESSAGES and not self._reading_paused:
            self._reading_paused = True
            self.transport.pause_reading()

    def _before_own_frames(self, data: bytes) -> None:
        """``websockets`` reads everything until (and unless) a clean handshake is done."""
        if self.response is not None:
            super().data_received(data)
            return
        self._handshake += data
        super().data_received(data)
        if self.response is not None:
            self._own_frames = self._clean_handshake()
            self._handshake = bytearray()

    def _cut_frames(self, buf: bytes | bytearray) -> tuple[int, bool]:
        """Take the complete frames of ``buf``: how far that got, and whether any message
        was added. Final text frames are messages; every other frame goes to ``websockets``
        (all the rest of ``buf`` once it is closing)."""
        pos, end, got = 0, len(buf), False
        while (bounds := frame_bounds(buf, pos)) is not None:
            start, stop = bounds
            if buf[pos] == FIN_TEXT and not buf[pos + 1] & MASK_BIT and self._parts is None:
                self._messages.append(bytes(buf[start:stop]))
                got = True
            else:
                super().data_received(bytes(buf[pos:stop]))
                if self.protocol.state is not State.OPEN:
                    self._own_frames = False
                    if stop < end:
                        super().data_received(bytes(buf[stop:]))
                    return end, got
            pos = stop
        return pos, got

    def _clean_handshake(self) -> bool:
        """Open, no extensions, and nothing read past the end of the handshake response."""
        end = self._handshake.find(b"\r\n\r\n")
        return (self.protocol.state is State.OPEN and not self.protocol.extensions
                and end >= 0 and end + 4 == len(self._handshake))

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
