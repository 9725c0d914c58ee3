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
- A stream abandoned before its terminal event (the consumer closed the generator, or
  its task was cancelled) aborts the connection: the rest of that response must not be
  read as the next one's. Until the next response's ``response.created``, frames that
  name the previous response (its id or one of its items) are dropped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import orjson
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
from orchestrator.models.base import RETRYABLE, Recorder, next_retry_wait_s
from orchestrator.models.http_base import (
    MAX_RESPONSE_BYTES,
    SHAPE_ERRORS,
    first_line,
    scrub_key,
)
from orchestrator.models.jsonwire import loads
from orchestrator.models.mapping import at, server_text
from orchestrator.models.responses_http import ResponsesHTTPClient
from orchestrator.models.responses_wire import ResponsesParser, input_item, request_fields
from orchestrator.models.tls import ssl_context
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


def _encode(frame: dict[str, Any]) -> bytes:
    """A request frame as UTF-8 JSON: ``orjson``, or the stdlib for what it refuses
    (integers beyond 64 bits, non-string keys in tool schemas or metadata)."""
    try:
        return orjson.dumps(frame)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(frame).encode()


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
    __slots__ = ("conn", "fields", "finished", "interrupted", "parser", "rec", "received",
                 "request", "stale", "watchdog")

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
        self.finished = False  # terminal event parsed, or interrupted
        self.watchdog: Watchdog | None = None
        self.received = 0  # bytes of the response's frames so far
        # ids of the connection's previous response (and its items): frames naming them
        # are late, dropped until this response is created; None once it was
        self.stale: frozenset[str] | None = None


class ResponsesWSClient:
    transport = "websocket"

    def __init__(self, cfg: EndpointConfig) -> None:
        self.cfg = cfg
        base = cfg.base_url.rstrip("/")
        self.url = base + "/responses" if base.startswith("ws") else ws_url_of(base)
        self._ssl = ssl_context(cfg)
        self.last_metrics: CallMetrics | None = None
        self.fallback_reason: str | None = None
        self.connections_opened = 0
        self._conn: BatchingConnection | None = None
        self._chain: _Chain | None = None
        self._connect_failures = 0
        self._http: ResponsesHTTPClient | None = None
        self._flight: _Flight | None = None
        self._watchdog: Watchdog | None = None
        self._stale: frozenset[str] = frozenset()  # see _Flight.stale
        self._lock = asyncio.Lock()

    # --- the protocol -----------------------------------------------------------------

    async def stream(self, request: ModelRequest) -> AsyncGenerator[ModelEvent, None]:
        """One response; requests on one client run one at a time.

        The hot path is this one generator: each batch of frames is read and parsed by a
        plain coroutine (``_read``) and its events yielded from here.
        """
        async with self._lock:
            retries = 0
            if self._http is None:
                rec = Recorder(self.transport, request.model)
                try:
                    flight, events = await self._first(request, rec)
                    while True:
                        for event in events:
                            yield event
                        if flight.finished:
                            return
                        events = await self._read(flight)
                except (UpgradeRequired, _FallBack) as exc:
                    self._fall_back(str(exc))
                    retries = rec.retries
                except ModelError as exc:
                    self._reset(drop_conn=not isinstance(exc, PreviousResponseNotFound))
                    scrub_key(exc, self.cfg.api_key)
                    raise
                except BaseException:  # closed early or cancelled
                    self._abandon()
                    raise
                finally:
                    self._land(rec, metrics=True)
            async with aclosing(self._via_http(request, retries)) as http_events:
                async for event in http_events:
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
            fields = request_fields(request)
            frame = {"type": "response.create", **fields,
                     "input": [input_item(m) for m in request.messages], "generate": False}
            try:
                flight = await self._send(request, fields, frame, rec)
                while not flight.finished:
                    await self._read(flight)
            except ModelError as exc:
                self._reset(drop_conn=True)
                scrub_key(exc, self.cfg.api_key)
                raise
            except BaseException:  # cancelled
                self._abandon()
                raise
            finally:
                self._land(rec, metrics=False)
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
                await flight.conn.send_text(_encode(steer))
                return
            except FOREIGN_WS_ERRORS:
                pass  # the socket is gone: abort below
        flight.interrupted = True
        flight.conn.transport.abort()

    async def aclose(self) -> None:
        self._reset(drop_conn=False)
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
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
            conn = await open_ws(self.url, self.cfg, self._ssl)
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
        self._watchdog = Watchdog(
            conn.transport.abort, self.cfg.first_token_timeout_s, self.cfg.idle_timeout_s
        )
        return conn

    def _abandon(self) -> None:
        """The call stopped before its response's terminal event: what the server still
        sends for it would be read as the next response's, so the connection goes."""
        flight = self._flight
        if flight is None or not flight.finished:
            self._reset(drop_conn=True)

    def _reset(self, *, drop_conn: bool) -> None:
        self._chain = None
        if drop_conn and self._conn is not None:
            self._conn.transport.abort()
            self._conn = None
            self._stale = frozenset()
            if self._watchdog is not None:
                self._watchdog.cancel()
                self._watchdog = None

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
        parser = ResponsesParser(self.url, self.cfg.api_key_env, self.cfg.api_key)
        self._flight = flight = _Flight(conn, request, fields, parser, rec)
        if self._stale:
            flight.stale = self._stale
        return flight

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

    async def _first(
        self, request: ModelRequest, rec: Recorder
    ) -> tuple[_Flight, list[ModelEvent]]:
        """Send the request and read up to its first events, retrying what may be retried
        before anything reached the caller: a retryable error after a backoff; a lost
        ``previous_response_id`` or the connection limit once each, at once, full input."""
        fields = request_fields(request)
        recovered: set[type] = set()
        while True:
            try:
                frame, chained = self._frame(request, fields)
                flight = await self._send(request, fields, frame, rec)
                rec.chained = chained
                return flight, await self._read(flight)
            except (PreviousResponseNotFound, ConnectionLimitReached) as exc:
                self._reset(drop_conn=isinstance(exc, ConnectionLimitReached))
                if type(exc) in recovered:
                    await self._back_off(rec, exc)
                    recovered.clear()
                    continue
                recovered.add(type(exc))
                rec.retries += 1
            except ModelError as exc:
                self._reset(drop_conn=True)
                await self._back_off(rec, exc)
                recovered.clear()

    async def _back_off(self, rec: Recorder, exc: ModelError) -> None:
        """Wait before the next try, or raise ``exc`` when it may not be retried."""
        if not isinstance(exc, RETRYABLE) or rec.retries >= self.cfg.max_retries:
            raise exc
        await asyncio.sleep(next_retry_wait_s(self.cfg, rec, exc))

    async def _send(
        self, request: ModelRequest, fields: dict[str, Any], frame: dict[str, Any],
        rec: Recorder,
    ) -> _Flight:
        conn = await self._connection()
        conn.discard_unread()  # sent after an earlier response's end: none of it is ours
        flight = self._new_flight(conn, request, fields, rec)
        try:
            await conn.send_text(_encode(frame))
        except FOREIGN_WS_ERRORS as exc:
            raise translate_ws(exc, self.url, self.cfg, streaming=True) from exc
        watchdog = flight.watchdog = self._watchdog
        assert watchdog is not None
        # The call's total deadline counts from its start (earlier attempts included).
        watchdog.start(asyncio.get_running_loop().time() + self.cfg.total_timeout_s
                       - (time.perf_counter() - rec.t0))
        return flight

    async def _read(self, flight: _Flight) -> list[ModelEvent]:
        """The flight's next events: at least one, unless its terminal event was parsed
        without output; ``Incomplete(interrupted)`` after ``interrupt()`` closed it."""
        conn, parser, watchdog = flight.conn, flight.parser, flight.watchdog
        assert watchdog is not None
        out: list[ModelEvent] = []
        while not out and not parser.done:
            watchdog.waiting = True
            try:
                batch = await conn.recv_batch()
            except FOREIGN_WS_ERRORS as exc:
                if not flight.interrupted:
                    raise self._read_error(exc, watchdog) from exc
                batch = []
            watchdog.received()
            if flight.interrupted:
                return self._interrupted(flight)
            if watchdog.expired:
                raise self._read_error(None, watchdog)
            flight.received += sum(map(len, batch))
            if flight.received > MAX_RESPONSE_BYTES:
                raise at(ModelProtocolError(
                    f"WebSocket {self.url} sent a response over {MAX_RESPONSE_BYTES >> 20} MiB: "
                    "refusing it; is this endpoint speaking the Responses API?"), self.url)
            self._feed(flight, batch, out)
        if parser.done:
            flight.finished = True
            watchdog.stop()
        if out and not watchdog.got_output:
            watchdog.got_output = True
            flight.rec.mark_first()
        return out

    def _interrupted(self, flight: _Flight) -> list[ModelEvent]:
        flight.finished = True
        self._reset(drop_conn=True)
        return [Incomplete(reason="interrupted")]

    def _land(self, rec: Recorder, *, metrics: bool) -> None:
        """The call is over: its flight's results go to ``rec`` (and ``last_metrics``)."""
        flight, self._flight = self._flight, None
        if flight is not None:
            if flight.watchdog is not None:
                flight.watchdog.stop()
            rec.completed = flight.parser.completed
            rec.n_deltas = flight.parser.n_deltas
        if metrics:
            self.last_metrics = rec.metrics(rec.completed)

    def _feed(self, flight: _Flight, batch: list[bytes], out: list[ModelEvent]) -> None:
        """Parse a batch of frames up to the terminal event (or an error frame); frames
        after it stay unread (the next request drops them before it is sent)."""
        parser = flight.parser
        for i, raw in enumerate(batch):
            try:
                obj = self._decode(raw)
                if flight.stale is not None and self._late(flight, obj):
                    continue
                parser.feed(obj, out)
            except SHAPE_ERRORS as exc:
                flight.conn.unread(batch[i + 1:])
                raise at(ModelProtocolError(
                    f"malformed {str(obj.get('type') or 'frame')[:40]!r} from {self.url} "
                    f"({type(exc).__name__}: {first_line(exc)}): is this endpoint speaking "
                    "the Responses API?"), self.url) from exc
            except BaseException:
                flight.conn.unread(batch[i + 1:])
                raise
            if parser.done:
                self._remember(flight)
                ids = {parser.response_id, *parser.item_ids}
                if parser.completed is not None:
                    ids.add(parser.completed.response_id)
                self._stale = frozenset(x for x in ids if x)
                flight.conn.unread(batch[i + 1:])
                return

    @staticmethod
    def _late(flight: _Flight, obj: dict[str, Any]) -> bool:
        """Whether ``obj`` belongs to the connection's previous response (a server that
        sent more of it after its terminal event); the new response's
        ``response.created`` ends the check."""
        stale = flight.stale
        assert stale is not None
        response, item = obj.get("response"), obj.get("item")
        rid = response.get("id") if isinstance(response, dict) else None
        iid = obj.get("item_id") or (item.get("id") if isinstance(item, dict) else None)
        if (isinstance(rid, str) and rid in stale) or (isinstance(iid, str) and iid in stale):
            return True
        if obj.get("type") == "response.created":
            flight.stale = None
        return False

    def _decode(self, raw: bytes | str) -> dict[str, Any]:
        try:
            obj = loads(raw)
        except ValueError as exc:
            raise translate_ws(exc, self.url, self.cfg, streaming=True) from exc
        if type(obj) is not dict:
            text = raw[:80].decode("utf-8", "replace") if isinstance(raw, bytes) else raw[:80]
            raise at(ModelProtocolError(f"unexpected frame from {self.url}: "
                                        f"{server_text(text, self.cfg.api_key, 80)!r}"), self.url)
        return obj

    def _read_error(self, exc: BaseException | None, watchdog: Watchdog) -> ModelError:
        if watchdog.expired:
            return at(ModelTimeout(
                f"{self.url} did not finish the response within {self.cfg.total_timeout_s:g} s "
                "(total timeout): raise the endpoint's total_timeout_s if answers take longer"),
                self.url)
        if watchdog.fired or exc is None:
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
