"""Server-sent events over plain ASGI, with the one thing Starlette's response cannot do:
close the connection abruptly, without finishing the chunked body (a simulated drop).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.types import Receive, Scope, Send

from orchestrator.sim.generation import Dropped

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


class SSEResponse:
    """Streams ``chunks`` (bytes) as ``text/event-stream``; ``Dropped`` aborts the socket."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self.chunks = chunks

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
        try:
            async for chunk in self.chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except Dropped:
            return False
        return True


async def _wait_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


def json_dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def numbered(start: int = 0) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Stamp increasing ``sequence_number``s on events."""
    counter = [start]

    def stamp(event: dict[str, Any]) -> dict[str, Any]:
        event["sequence_number"] = counter[0]
        counter[0] += 1
        return event

    return stamp
