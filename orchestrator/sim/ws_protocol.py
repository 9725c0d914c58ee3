"""The simulator's WebSocket protocol: uvicorn's sans-I/O ``websockets`` protocol with a
short path for the one message a stream sends over and over, an uncompressed text frame,
and an ASGI extension to send several at once.

uvicorn builds each outgoing frame through ``websockets``' generic machinery (a ``Frame``
object, extension hooks, a list of pending writes); a server-to-client text frame without
extensions is a two-to-ten-byte header and the payload (RFC 6455 §5.2, servers never mask),
so it is written directly. Everything else (handshake, close, ping/pong, compression, a
connection that is closing or paused) takes uvicorn's own path. Any bytes the protocol
already queued go first, so frames never overtake each other. Reading stops only when
``MAX_QUEUED_MESSAGES`` client messages wait for the application, not after each one.

``SEND_TEXTS`` is that extension: advertised in ``scope["extensions"]``, it accepts
``{"type": SEND_TEXTS, "texts": [...]}``, one text message per item (``str``, or ``bytes``
already UTF-8 encoded), in order, written together (an application streaming unpaced
events awaits once per burst, not per event).

``ON_MESSAGE`` is the receiving side: a ``MessageTap`` in ``scope["extensions"]``. An
application that sets its ``callback`` gets each complete client message (``str`` for
text, ``bytes`` for binary) in the protocol's ``data_received``, with no ASGI receive
queue and no task switch in between; ``receive()`` then only reports the disconnect. The
application bounds its own backlog with ``pause_reading()`` / ``resume_reading()``.

``WEBSOCKET_PROTOCOL`` is what ``uvicorn.Config(ws=...)`` gets: this class where the
installed uvicorn has the sans-I/O implementation, else ``"auto"``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from websockets.protocol import State

_FIN_TEXT = 0x81  # FIN bit + opcode 1 (text)
# Client messages the application has not taken yet before the socket stops being read.
MAX_QUEUED_MESSAGES = 16
SEND_TEXTS = "tandem.websocket.send_texts"
ON_MESSAGE = "tandem.websocket.on_message"
_HEAD_16 = struct.Struct("!BBH")
_HEAD_64 = struct.Struct("!BBQ")


def text_frame(payload: bytes) -> bytes:
    """One unmasked, unfragmented text frame (what a server sends)."""
    n = len(payload)
    if n < 126:
        return bytes((_FIN_TEXT, n)) + payload
    if n < 65536:
        return _HEAD_16.pack(_FIN_TEXT, 126, n) + payload
    return _HEAD_64.pack(_FIN_TEXT, 127, n) + payload


class MessageTap:
    """Where a protocol hands client messages straight to the application."""

    __slots__ = ("callback", "_pause", "_resume")

    def __init__(self, pause: Callable[[], None], resume: Callable[[], None]) -> None:
        self.callback: Callable[[str | bytes], None] | None = None
        self._pause = pause
        self._resume = resume

    def pause_reading(self) -> None:
        self._pause()

    def resume_reading(self) -> None:
        self._resume()


try:
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
except ImportError:  # uvicorn older than the sans-I/O implementation
    WEBSOCKET_PROTOCOL: Any = "auto"
else:

    class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
        tap: MessageTap | None = None  # set once the handshake is accepted
        def handle_connect(self, event: Any) -> None:
            super().handle_connect(event)
            if self.response.status_code == 101:
                self.tap = MessageTap(self._tap_pause, self._tap_resume)
                extensions = self.scope["extensions"]
                extensions[SEND_TEXTS] = {}
                extensions[ON_MESSAGE] = self.tap  # type: ignore[assignment]

        def _tap_pause(self) -> None:
            if not self.read_paused and not self.disconnected:
                self.read_paused = True
                self.transport.pause_reading()

        def _tap_resume(self) -> None:
            if self.read_paused and not self.disconnected:
                self.read_paused = False
                self.transport.resume_reading()

        async def send(self, message: Any) -> None:
            kind = message["type"]
            if kind == SEND_TEXTS:
                texts = message["texts"]
            elif kind == "websocket.send" and message.get("text") is not None:
                texts = (message["text"],)
            else:
                await super().send(message)
                return
            if self._plain_open():
                pending = self.conn.data_to_send()
                pending.extend(
                    text_frame(text if type(text) is bytes else text.encode()) for text in texts
                )
                self.transport.write(b"".join(pending))
                return
            for text in texts:
                if type(text) is bytes:
                    text = text.decode()
                await super().send({"type": "websocket.send", "text": text})

        def _plain_open(self) -> bool:
            """Open, writable, past the handshake, not closing, no extensions in use."""
            conn = self.conn
            return (
                self.handshake_complete
                and not self.close_sent
                and not self.disconnected
                and self.initial_response is None
                and self.writable.is_set()
                and conn.state is State.OPEN
                and not conn.extensions
                and not conn.expect_continuation_frame
            )

        def send_receive_event_to_app(self) -> None:
            tap = self.tap
            callback = tap.callback if tap is not None else None
            if callback is not None and not self.close_sent:
                frames = self.frames
                data = frames[0] if len(frames) == 1 else b"".join(frames)
                if self.curr_msg_data_type != "text":
                    self.frames = []
                    callback(bytes(data))
                    return
                try:
                    text = data.decode()
                except UnicodeDecodeError:
                    pass  # uvicorn's own path closes with 1007
                else:
                    self.frames = []
                    callback(text)
                    return
            # uvicorn stops reading after every message until the app has taken it (two
            # epoll_ctl calls per request); a bounded queue is flow control enough.
            was_paused = self.read_paused
            self.read_paused = True  # keeps uvicorn from pausing
            super().send_receive_event_to_app()
            self.read_paused = was_paused
            if not was_paused and self.queue.qsize() >= MAX_QUEUED_MESSAGES:
                self.read_paused = True
                self.transport.pause_reading()

    WEBSOCKET_PROTOCOL = LeanWebSocketProtocol
