"""Server-sent events over plain ASGI, with the one thing Starlette's response cannot do:
close the connection abruptly, without finishing the chunked body (a simulated drop).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from orchestrator.sim.generation import Dropped
from orchestrator.sim.pacing import Pacer

# uvicorn logs this when an app ends a response early; for the simulator that is the
# intended drop, not an error worth a log line.
_ABORT_LOG_MESSAGE = "ASGI callable returned without completing response."


class _DropFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != _ABORT_LOG_MESSAGE


def quiet_intentional_drops() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _DropFilter) for f in logger.filters):
        logger.addFilter(_DropFilter())


def sse_message(data: str, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {data}\n\n".encode()


_EVENT_HEADS: dict[str, bytes] = {}  # event type -> b"event: TYPE\ndata: "


def sse_json(data: bytes, event: str) -> bytes:
    """``sse_message`` for already-encoded JSON: the same bytes, built without a decode or a
    format (the ``event:`` line of each event type is built once)."""
    head = _EVENT_HEADS.get(event)
    if head is None:
        head = _EVENT_HEADS[event] = f"event: {event}\ndata: ".encode()
    return head + data + b"\n\n"


class SSEResponse:
    """Streams ``chunks`` (bytes) as ``text/event-stream``; ``Dropped`` aborts the socket.

    With ``pacer``, chunks are batched into one body message until the generator is about
    to wait (the pacer's ``before_wait``) or ends: an unpaced answer is one send, a paced
    one still sends each token on time. Without, each chunk is sent as it comes.
    """

    def __init__(self, chunks: AsyncIterator[bytes], pacer: Pacer | None = None) -> None:
        self.chunks = chunks
        self._batch: list[bytes] | None = None
        self._send: Send | None = None
        if pacer is not None:
            self._batch = []
            pacer.before_wait = self.flush

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/event-stream; charset=utf-8"),
                (b"cache-control", b"no-cache"),
            ],
        })
        stream = asyncio.ensure_future(self._stream(send))
        watch = asyncio.ensure_future(_wait_disconnect(receive))
        done, _ = await asyncio.wait({stream, watch}, return_when=asyncio.FIRST_COMPLETED)
        for task in (stream, watch):
            if task not in done:
                task.cancel()
        await asyncio.gather(stream, watch, return_exceptions=True)
        if stream not in done:
            return  # the client went away
        error = stream.exception()
        if error is not None:
            raise error
        if stream.result():
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _stream(self, send: Send) -> bool:
        """Send every chunk; False when the stream was dropped on purpose."""
        self._send = send
        batch = self._batch
        try:
            async for chunk in self.chunks:
                if batch is None:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                else:
                    batch.append(chunk)
        except Dropped:
            await self.flush()  # what was produced before the drop still arrives
            return False
        await self.flush()
        return True

    async def flush(self) -> None:
        """Send the batched chunks as one body message (no-op when there are none)."""
        batch = self._batch
        if batch and self._send is not None:
            body = b"".join(batch)
            batch.clear()
            await self._send({"type": "http.response.body", "body": body, "more_body": True})


async def _wait_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


def json_dumps(obj: Any) -> str:
    """Compact JSON of one event. ``orjson``, as encoding is most of an event's cost; what it
    refuses (integers beyond 64 bits echoed from a request) goes to the stdlib."""
    try:
        return orjson.dumps(obj).decode()
    except TypeError:
        return json.dumps(obj, separators=(",", ":"))


def json_bytes(obj: Any) -> bytes:
    """``json_dumps`` as UTF-8 bytes (what goes on the wire), without a decode/encode."""
    try:
        return orjson.dumps(obj)
    except TypeError:
        return json.dumps(obj, separators=(",", ":")).encode()
