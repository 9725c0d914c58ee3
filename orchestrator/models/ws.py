"""OpenAI Responses over one persistent WebSocket — the fast path.

- One connection, reused by every request (``connections_opened`` counts them); opened
  lazily, re-opened when it died or after any error.
- Chaining: when every field but ``input`` equals the last request's and the messages
  extend the last input + the last answer, only the new messages are sent with
  ``previous_response_id``; otherwise (and after any error) the full input.
- ``warm_up(request)`` sends ``generate: false`` so the next request can chain from it.
- Recovery before any output: ``previous_response_not_found`` → one resend with the full
  input; ``websocket_connection_limit_reached`` → a new connection and a full resend.
- Fallback to HTTP SSE, for the rest of the client's life, on a 426 answer to the
  upgrade or after ``ws_fallback_after_failures`` consecutive connect failures; it is
  logged as a warning, kept in ``fallback_reason`` and in ``CallMetrics.fell_back_to_http``.
- ``interrupt(message)``: ``response.steer`` where the endpoint supports it (the same
  stream goes on with the successor response), else close the socket (the stream ends
  with ``Incomplete(reason="interrupted")``; the next request reconnects). Once the
  response's terminal event has been parsed there is nothing left to stop: no-op.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from websockets.protocol import State

from orchestrator.errors import (
    ConnectionLimitReached,
    ModelConnectError,
    ModelError,
    ModelProtocolError,
    ModelTimeout,
    PreviousResponseNotFound,
    ServerError,
)
from orchestrator.models.base import Recorder, with_retries
from orchestrator.models.jsonwire import loads
from orchestrator.models.mapping import at
from orchestrator.models.responses_http import ResponsesHTTPClient
from orchestrator.models.responses_wire import ResponsesParser, input_item, request_fields
from orchestrator.models.types import (
    CallMetrics,
    EndpointConfig,
    Incomplete,
    Message,
    ModelEvent,
    ModelRequest,
)
from orchestrator.models.ws_conn import (
    FOREIGN_WS_ERRORS,
    UpgradeRequired,
    Watchdog,
    open_ws,
    translate_ws,
    ws_url_of,
)
from orchestrator.models.ws_reader import BatchingConnection

logger = logging.getLogger(__name__)
_dumps = json.dumps


class _FallBack(Exception):
    """Too many consecutive connect failures: use HTTP SSE instead."""


@dataclass
class _Chain:
    """What the server holds for this connection after the last response."""

    fields: dict[str, Any]
    messages: list[Message]
    response_id: str
    output_text: str


class _Flight:
    __slots__ = ("conn", "fields", "interrupted", "parser", "rec", "request")

    def __init__(
        self, conn: BatchingConnection, request: ModelRequest, fields: dict[str, Any],
        parser: ResponsesParser, rec: Recorder,
    ) -> None:
        self.conn = conn
        self.request = request
        self.fields = fields
        self.parser = parser
        self.rec = rec
        self.interrupted = False


class ResponsesWSClient:
    transport = "websocket"

    def __init__(self, cfg: EndpointConfig) -> None:
        self.cfg = cfg
        base = cfg.base_url.rstrip("/")
        self.url = base + "/responses" if base.startswith("ws") else ws_url_of(base)
        self.last_metrics: CallMetrics | None = None
        self.fallback_reason: str | None = None
        self.connections_opened = 0
        self._conn: BatchingConnection | None = None
        self._chain: _Chain | None = None
        self._connect_failures = 0
        self._http: ResponsesHTTPClient | None = None
        self._flight: _Flight | None = None
        self._lock = asyncio.Lock()

    # --- the protocol -----------------------------------------------------------------

    async def stream(self, request: ModelRequest) -> AsyncGenerator[ModelEvent, None]:
        """One response; requests on one client run one at a time."""
        async with self._lock:
            retries = 0
            if self._http is None:
                rec = Recorder(self.transport, request.model)
                events = with_retries(self.cfg, rec, lambda: self._attempt(request, rec))
                try:
                    async with aclosing(events):
                        async for event in events:
                            yield event
                    return
                except (UpgradeRequired, _FallBack) as exc:
                    self._fall_back(str(exc))
                    retries = rec.retries
                finally:
                    self.last_metrics = rec.metrics(rec.completed)
            async with aclosing(self._via_http(request, retries)) as events:
                async for event in events:
                    yield event

    @property
    def successors(self) -> int:
        """Successor responses the in-flight stream has started after a ``response.steer``
        (0 when nothing is in flight)."""
        flight = self._flight
        return flight.parser.successors if flight is not None else 0

    async def warm_up(self, request: ModelRequest) -> str | None:
        """Send ``request`` with ``generate: false`` (no output) so the server prepares its
        state; the next request that extends it chains from it. Returns the response id."""
        async with self._lock:
            if self._http is not None:
                return None
            rec = Recorder(self.transport, request.model)
            conn = await self._connection()
            fields = request_fields(request)
            frame = {"type": "response.create", **fields,
                     "input": [input_item(m) for m in request.messages], "generate": False}
            flight = self._new_flight(conn, request, fields, rec)
            try:
                async with aclosing(self._run(flight, frame)) as events:
                    async for _ in events:
                        pass
            except ModelError:
                self._reset(drop_conn=True)
                raise
            finally:
                self._flight = None
            return self._chain.response_id if self._chain else None

    async def interrupt(self, message: str | None = None) -> None:
        if self._http is not None:
            await self._http.interrupt(message)
            return
        flight = self._flight
        if flight is None:
            return
        parser = flight.parser
        if parser.done:
            return  # complete: its last events are on their way to the caller; keep the socket
        if message and self.cfg.steer_supported and parser.response_id:
            parser.expect_successor = True
            flight.rec.steered = True
            steer = {"type": "response.steer", "previous_response_id": parser.response_id,
                     "input": message}
            try:
                await flight.conn.send(_dumps(steer))
                return
            except FOREIGN_WS_ERRORS:
                pass  # the socket is gone: abort below
        flight.interrupted = True
        flight.conn.transport.abort()

    async def aclose(self) -> None:
        self._reset(drop_conn=False)
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()
        if self._http is not None:
            await self._http.aclose()

    async def __aenter__(self) -> ResponsesWSClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- connection and fallback --------------------------------------------------------

    async def _connection(self) -> BatchingConnection:
        conn = self._conn
        if conn is not None and conn.state is State.OPEN:
            return conn
        self._reset(drop_conn=True)
        try:
            conn = await open_ws(self.url, self.cfg)
        except (ModelConnectError, ModelTimeout, ServerError) as exc:
            self._connect_failures += 1
            if self._connect_failures >= self.cfg.ws_fallback_after_failures:
                raise _FallBack(
                    f"{self._connect_failures} consecutive WebSocket connect failures ({exc})"
                ) from exc
            raise
        self._connect_failures = 0
        self.connections_opened += 1
        self._conn = conn
        return conn

    def _reset(self, *, drop_conn: bool) -> None:
        self._chain = None
        if drop_conn and self._conn is not None:
            self._conn.transport.abort()
            self._conn = None

    def _fall_back(self, reason: str) -> None:
        self.fallback_reason = reason
        logger.warning("falling back from WebSocket to HTTP SSE for %s: %s", self.url, reason)
        self._reset(drop_conn=True)
        cfg = self.cfg.model_copy(update={"provider": "openai-responses"})
        self._http = ResponsesHTTPClient(cfg)

    async def _via_http(
        self, request: ModelRequest, retries: int
    ) -> AsyncGenerator[ModelEvent, None]:
        assert self._http is not None
        try:
            async with aclosing(self._http.stream(request)) as events:
                async for event in events:
                    yield event
        finally:
            metrics = self._http.last_metrics
            if metrics is not None:
                metrics.fell_back_to_http = True
                metrics.retries += retries
                self.last_metrics = metrics

    # --- one attempt ----------------------------------------------------------------------

    def _new_flight(
        self, conn: BatchingConnection, request: ModelRequest, fields: dict[str, Any],
        rec: Recorder,
    ) -> _Flight:
        parser = ResponsesParser(self.url, self.cfg.api_key_env)
        self._flight = _Flight(conn, request, fields, parser, rec)
        return self._flight

    def _frame(self, request: ModelRequest, fields: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        frame: dict[str, Any] = {"type": "response.create", **fields}
        new = self._new_messages(fields, request.messages)
        if new is None:
            frame["input"] = [input_item(m) for m in request.messages]
            return frame, False
        assert self._chain is not None
        frame["previous_response_id"] = self._chain.response_id
        frame["input"] = [input_item(m) for m in new]
        return frame, True

    def _new_messages(
        self, fields: dict[str, Any], messages: list[Message]
    ) -> list[Message] | None:
        chain = self._chain
        if chain is None or chain.fields != fields:
            return None
        known = list(chain.messages)
        if chain.output_text:
            known.append(Message(role="assistant", content=chain.output_text))
        n = len(known)
        if len(messages) <= n or messages[:n] != known:
            return None
        return messages[n:]

    async def _attempt(
        self, request: ModelRequest, rec: Recorder
    ) -> AsyncGenerator[ModelEvent, None]:
        recovered: set[type] = set()
        fields = request_fields(request)
        while True:
            flight = self._new_flight(await self._connection(), request, fields, rec)
            frame, rec.chained = self._frame(request, fields)
            yielded = False
            try:
                async with aclosing(self._run(flight, frame)) as events:
                    async for event in events:
                        yielded = True
                        yield event
                return
            except (PreviousResponseNotFound, ConnectionLimitReached) as exc:
                self._reset(drop_conn=isinstance(exc, ConnectionLimitReached))
                if yielded or type(exc) in recovered:
                    raise
                recovered.add(type(exc))
                rec.retries += 1
            except ModelError:
                self._reset(drop_conn=True)
                raise
            finally:
                self._flight = None
                rec.completed = flight.parser.completed
                rec.n_deltas = flight.parser.n_deltas

    async def _run(
        self, flight: _Flight, frame: dict[str, Any]
    ) -> AsyncGenerator[ModelEvent, None]:
        conn, parser, rec = flight.conn, flight.parser, flight.rec
        try:
            await conn.send(_dumps(frame))
        except FOREIGN_WS_ERRORS as exc:
            raise translate_ws(exc, self.url, self.cfg, streaming=True) from exc
        watchdog = Watchdog(
            conn.transport.abort, self.cfg.first_token_timeout_s, self.cfg.idle_timeout_s
        )
        now = asyncio.get_running_loop().time
        recv_batch = conn.recv_batch
        out: list[ModelEvent] = []
        try:
            while not parser.done:
                watchdog.waiting = True
                try:
                    batch = await recv_batch()
                except FOREIGN_WS_ERRORS as exc:
                    if flight.interrupted:
                        break
                    raise self._read_error(exc, watchdog) from exc
                watchdog.waiting = False
                watchdog.last_rx = now()
                if flight.interrupted:
                    break
                self._feed(flight, batch, out)
                if out:
                    if not watchdog.got_output:
                        watchdog.got_output = True
                        rec.mark_first()
                    for event in out:
                        yield event
                    out.clear()
        finally:
            watchdog.cancel()
        if not parser.done:  # interrupted
            self._reset(drop_conn=True)
            yield Incomplete(reason="interrupted")

    def _feed(self, flight: _Flight, batch: list[bytes], out: list[ModelEvent]) -> None:
        """Parse a batch of frames up to the terminal event (or an error frame); frames
        after it stay unread, for the next request, as with one ``recv()`` per frame."""
        parser = flight.parser
        for i, raw in enumerate(batch):
            try:
                parser.feed(self._decode(raw), out)
            except BaseException:
                flight.conn.unread(batch[i + 1:])
                raise
            if parser.done:
                self._remember(flight)
                flight.conn.unread(batch[i + 1:])
                return

    def _decode(self, raw: bytes | str) -> dict[str, Any]:
        try:
            obj = loads(raw)
        except ValueError as exc:
            raise translate_ws(exc, self.url, self.cfg, streaming=True) from exc
        if type(obj) is not dict:
            raise at(ModelProtocolError(f"unexpected frame from {self.url}: {raw[:80]!r}"),
                     self.url)
        return obj

    def _read_error(self, exc: BaseException, watchdog: Watchdog) -> ModelError:
        if watchdog.fired:
            what = "idle" if watchdog.got_output else "first-token"
            return at(ModelTimeout(
                f"no data from {self.url} for {watchdog.timeout_s:g} s ({what} timeout)"),
                self.url)
        return translate_ws(exc, self.url, self.cfg, streaming=True)

    def _remember(self, flight: _Flight) -> None:
        done = flight.parser.completed
        if done is None or flight.parser.successors or not done.response_id or done.tool_calls:
            self._chain = None
            return
        self._chain = _Chain(
            fields=flight.fields, messages=list(flight.request.messages),
            response_id=done.response_id, output_text=done.text,
        )
