"""What the three HTTP SSE clients share: one pooled ``httpx.AsyncClient`` per client,
the request/stream loop, timeouts, interrupts, and the one place where httpx errors
become Tandem errors (``translate_httpx``).

Timeouts: the connect timeout bounds TCP/TLS set-up; the first-token timeout bounds the
time from sending the request to the first event that carries output; after that,
httpx's read timeout is the idle timeout (the longest silence between two chunks), and
an event that has started must also end within the idle timeout (a server trickling one
byte at a time does not hold the stream open). The total timeout bounds the whole call
(retries included) however steadily the server keeps sending output or keepalives.

Bounds: nothing a server sends is trusted. One event may hold ``MAX_EVENT_BYTES``
(``sse.py``), one response body ``MAX_RESPONSE_BYTES``; an error body is read up to
``MAX_ERROR_BODY_BYTES`` within the first-token timeout.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any, Protocol

import httpx

from orchestrator.errors import (
    ModelConnectError,
    ModelError,
    ModelProtocolError,
    ModelTimeout,
    StreamInterrupted,
)
from orchestrator.models.base import Recorder, with_retries
from orchestrator.models.jsonwire import loads
from orchestrator.models.mapping import (
    at,
    error_detail,
    parse_retry_after_s,
    server_text,
    status_error,
)
from orchestrator.models.sse import EventTooLarge, SSEDecoder
from orchestrator.models.tls import ssl_cause, ssl_context, tls_error
from orchestrator.models.types import (
    CallMetrics,
    Completed,
    EndpointConfig,
    Incomplete,
    ModelEvent,
    ModelRequest,
)
from orchestrator.secrets import redact

# After the terminal event, wait this long for the body's end so the connection can go
# back to the pool (a response closed mid-body closes its connection).
DRAIN_TIMEOUT_S = 1.0
# The most a response body may hold (every event of one response, all its output).
MAX_RESPONSE_BYTES = 256 * 1024 * 1024
# The most of an error answer's body that is read (its message: see mapping.server_text).
MAX_ERROR_BODY_BYTES = 64 * 1024
# What a malformed event raises inside a parser (a field of the wrong type, missing, ...).
SHAPE_ERRORS = (AttributeError, TypeError, KeyError, IndexError, ValueError, ArithmeticError)


class Parser(Protocol):
    done: bool
    completed: Completed | None
    n_deltas: int

    def feed(self, obj: dict[str, Any], out: list[ModelEvent]) -> None: ...


def translate_httpx(
    exc: Exception, url: str, cfg: EndpointConfig, *, streaming: bool
) -> ModelError:
    """The Tandem error for a foreign (httpx / network / JSON) error at ``url``.

    ``streaming``: the response headers had already arrived when it happened.
    """
    if isinstance(exc, httpx.ConnectTimeout):
        return at(ModelTimeout(
            f"connect timeout ({cfg.connect_timeout_s:g} s) to {url}: "
            "check the endpoint is up and reachable"), url)
    if isinstance(exc, httpx.ReadTimeout):
        return at(ModelTimeout(
            f"no data from {url} for {cfg.idle_timeout_s:g} s (idle timeout)"), url)
    if isinstance(exc, httpx.TimeoutException):
        return at(ModelTimeout(f"timeout talking to {url}: {type(exc).__name__}"), url)
    if isinstance(exc, httpx.ConnectError) and (tls := ssl_cause(exc)) is not None:
        return tls_error(tls, url)
    if isinstance(exc, httpx.ConnectError | ConnectionRefusedError):
        return at(ModelConnectError(
            f"cannot connect to {url}: check that the server is running and the base URL"), url)
    if isinstance(exc, json.JSONDecodeError | httpx.DecodingError | UnicodeDecodeError):
        return at(ModelProtocolError(
            f"undecodable data from {url} ({exc}): is this endpoint speaking the right API?"), url)
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return at(ModelConnectError(f"bad URL {url}: {exc}; check the base URL"), url)
    if not streaming and ("without sending" in str(exc) or isinstance(exc, httpx.ReadError)):
        # No response headers yet: an overloaded server, a reset, and a non-HTTP service on
        # that port all look alike here.
        return at(StreamInterrupted(
            f"{url} closed the connection without an HTTP response: check the base URL and "
            "port (is it an HTTP API?), or the server is overloaded"), url)
    if streaming or isinstance(exc, httpx.ReadError):
        return at(StreamInterrupted(
            f"connection to {url} broke before the response finished ({exc or type(exc).__name__})"
        ), url)
    if isinstance(exc, httpx.RemoteProtocolError | httpx.LocalProtocolError):
        return at(ModelProtocolError(
            f"{url} does not answer valid HTTP ({exc}): check the base URL and port"), url)
    return at(ModelError(f"{type(exc).__name__} talking to {url}: {exc}"), url)


def scrub_key(exc: ModelError, key: str | None) -> None:
    """Redact ``key`` from ``exc``'s message: a server may echo anything it was sent (the
    Authorization header included) into an error body or event."""
    if key and exc.args and isinstance(exc.args[0], str) and key in exc.args[0]:
        exc.args = (redact(exc.args[0], [key]), *exc.args[1:])


FOREIGN_ERRORS = (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError)


class _Flight:
    __slots__ = ("deadline", "interrupted", "response")

    def __init__(self, deadline: float) -> None:
        self.interrupted = False
        self.response: httpx.Response | None = None
        self.deadline = deadline  # loop time when the call's total timeout expires


class HTTPStreamClient:
    """Base class: subclasses set ``path`` and build headers, bodies and parsers."""

    transport = "http-sse"
    path = ""

    def __init__(self, cfg: EndpointConfig) -> None:
        self.cfg = cfg
        self.url = cfg.base_url.rstrip("/") + self.path
        self.last_metrics: CallMetrics | None = None
        self._flights: set[_Flight] = set()
        timeout = httpx.Timeout(
            connect=cfg.connect_timeout_s,
            read=cfg.idle_timeout_s,
            write=cfg.connect_timeout_s,
            pool=cfg.connect_timeout_s,
        )
        headers = {"accept": "text/event-stream", **self.auth_headers(), **cfg.extra_headers}
        context = ssl_context(cfg)
        self._client = httpx.AsyncClient(
            timeout=timeout, headers=headers, verify=True if context is None else context
        )

    # --- subclass hooks ---------------------------------------------------------------

    def auth_headers(self) -> dict[str, str]:
        key = self.cfg.api_key
        return {"authorization": f"Bearer {key}"} if key else {}

    def body(self, request: ModelRequest) -> dict[str, Any]:
        raise NotImplementedError

    def parser(self) -> Parser:
        raise NotImplementedError

    def on_done_marker(self, parser: Parser, out: list[ModelEvent]) -> None:
        """``data: [DONE]`` (Chat Completions); other APIs never send it."""

    def on_eof(self, parser: Parser, out: list[ModelEvent]) -> None:
        """The body ended before a terminal event."""
        raise at(StreamInterrupted(
            f"stream from {self.url} ended before the response finished"), self.url)

    # --- the protocol -----------------------------------------------------------------

    async def stream(self, request: ModelRequest) -> AsyncGenerator[ModelEvent, None]:
        rec = Recorder(self.transport, request.model)
        flight = _Flight(asyncio.get_running_loop().time() + self.cfg.total_timeout_s)
        self._flights.add(flight)
        body = self.body(request)
        events = with_retries(self.cfg, rec, lambda: self.attempt(body, rec, flight))
        try:
            async with aclosing(events):
                async for event in events:
                    yield event
        except ModelError as exc:
            scrub_key(exc, self.cfg.api_key)
            raise
        finally:
            self._flights.discard(flight)
            self.last_metrics = rec.metrics(rec.completed)

    async def interrupt(self, message: str | None = None) -> None:
        """Abort every in-flight stream (HTTP cannot steer): each ends ``Incomplete``
        with reason ``interrupted``; re-issue the request to continue."""
        for flight in list(self._flights):
            flight.interrupted = True
            if flight.response is not None:
                await flight.response.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> HTTPStreamClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- one attempt ------------------------------------------------------------------

    async def attempt(
        self, body: dict[str, Any], rec: Recorder, flight: _Flight
    ) -> AsyncGenerator[ModelEvent, None]:
        response = await self._open(body, rec, flight)
        flight.response = response
        try:
            await self._check(response)
            async with aclosing(self._events(response, rec, flight)) as events:
                async for event in events:
                    yield event
        finally:
            flight.response = None
            await response.aclose()

    async def _open(self, body: dict[str, Any], rec: Recorder, flight: _Flight) -> httpx.Response:
        rec.start_attempt()
        request = self._client.build_request("POST", self.url, json=body)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(
                    min(loop.time() + self.cfg.first_token_timeout_s, flight.deadline)):
                return await self._client.send(request, stream=True)
        except TimeoutError as exc:
            raise self._timeout(flight) from exc
        except FOREIGN_ERRORS as exc:
            raise translate_httpx(exc, self.url, self.cfg, streaming=False) from exc

    def _first_token_timeout(self) -> ModelTimeout:
        return at(ModelTimeout(
            f"no output from {self.url} within {self.cfg.first_token_timeout_s:g} s "
            "(first-token timeout)"), self.url)  # type: ignore[return-value]

    def _total_timeout(self) -> ModelTimeout:
        return at(ModelTimeout(
            f"{self.url} did not finish the response within {self.cfg.total_timeout_s:g} s "
            "(total timeout): raise the endpoint's total_timeout_s if answers take longer"),
            self.url)  # type: ignore[return-value]

    def _timeout(self, flight: _Flight) -> ModelTimeout:
        """The first-token timeout, or the total one when that is what expired."""
        if asyncio.get_running_loop().time() >= flight.deadline:
            return self._total_timeout()
        return self._first_token_timeout()

    async def _check(self, response: httpx.Response) -> None:
        if response.status_code == 200:
            ctype = response.headers.get("content-type", "")
            if not ctype.startswith("text/event-stream"):
                raise at(ModelProtocolError(
                    f"{self.url} answered {ctype or 'no content type'}, not an event stream: "
                    "check the base URL and provider"), self.url)
            return
        raw = await self._error_body(response)
        try:
            detail, code = error_detail(loads(raw))
        except (ValueError, RecursionError):
            detail, code = error_detail(raw.decode("utf-8", "replace"))
        key = self.cfg.api_key  # never echoed into a message (nor are other secrets)
        detail = server_text(detail, key)
        code = server_text(code, key, 80) if code else None
        raise status_error(
            response.status_code, self.url, detail=detail, key_env=self.cfg.api_key_env,
            retry_after_s=parse_retry_after_s(response.headers.get("retry-after")), code=code,
        )

    async def _error_body(self, response: httpx.Response) -> bytes:
        """The start of an error answer's body: at most ``MAX_ERROR_BODY_BYTES``, read
        within the first-token timeout (what arrived by then is enough to explain it)."""
        parts: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.cfg.first_token_timeout_s):
                async for chunk in response.aiter_raw():
                    parts.append(chunk)
                    size += len(chunk)
                    if size >= MAX_ERROR_BODY_BYTES:
                        break
        except (TimeoutError, *FOREIGN_ERRORS):
            pass  # the status says what happened; the body only adds detail
        return b"".join(parts)[:MAX_ERROR_BODY_BYTES]

    async def _events(
        self, response: httpx.Response, rec: Recorder, flight: _Flight
    ) -> AsyncGenerator[ModelEvent, None]:
        parser = self.parser()
        decoder = SSEDecoder()
        chunks = response.aiter_bytes()
        out: list[ModelEvent] = []
        loop = asyncio.get_running_loop()
        received = 0
        event_deadline: float | None = None  # when the event that has started must end
        try:
            while not parser.done:
                chunk = await self._next_chunk(chunks, rec, flight, event_deadline)
                if chunk is None or flight.interrupted:
                    break
                received += len(chunk)
                if received > MAX_RESPONSE_BYTES:
                    raise self._too_large(f"a response over {MAX_RESPONSE_BYTES >> 20} MiB")
                payloads = self._decode(decoder, chunk)
                if not decoder.pending_size:
                    event_deadline = None
                elif payloads or event_deadline is None:
                    event_deadline = loop.time() + self.cfg.idle_timeout_s
                self._parse(payloads, parser, out)
                if parser.done:
                    await _drain(chunks)
                if out:
                    rec.mark_first()
                    for event in out:
                        yield event
                    out.clear()
            if flight.interrupted:
                yield Incomplete(reason="interrupted")
            elif not parser.done:
                self.on_eof(parser, out)
                for event in out:
                    yield event
        finally:
            rec.completed = parser.completed
            rec.n_deltas = parser.n_deltas

    def _decode(self, decoder: SSEDecoder, chunk: bytes) -> list[bytes]:
        try:
            return decoder.feed(chunk)
        except EventTooLarge as exc:
            raise self._too_large(str(exc)) from exc

    def _too_large(self, what: str) -> ModelProtocolError:
        return at(ModelProtocolError(  # type: ignore[return-value]
            f"{self.url} sent {what}: refusing it; is this endpoint speaking the right API?"),
            self.url)

    async def _next_chunk(
        self, chunks: AsyncIterator[bytes], rec: Recorder, flight: _Flight,
        event_deadline: float | None = None,
    ) -> bytes | None:
        loop = asyncio.get_running_loop()
        deadline = flight.deadline
        if loop.time() >= deadline:  # also when every chunk is already there
            raise self._total_timeout()
        try:
            if rec.first_t is None:
                left_s = self.cfg.first_token_timeout_s - rec.elapsed_s()
                async with asyncio.timeout_at(min(loop.time() + max(left_s, 0.0), deadline)):
                    return await anext(chunks)
            if event_deadline is not None and event_deadline < deadline:
                try:
                    async with asyncio.timeout_at(event_deadline):
                        return await anext(chunks)
                except TimeoutError as exc:
                    raise at(ModelTimeout(
                        f"an event from {self.url} did not end within "
                        f"{self.cfg.idle_timeout_s:g} s (idle timeout)"), self.url) from exc
            async with asyncio.timeout_at(deadline):
                return await anext(chunks)
        except StopAsyncIteration:
            return None
        except TimeoutError as exc:
            raise self._timeout(flight) from exc
        except FOREIGN_ERRORS as exc:
            if flight.interrupted:
                return None
            raise translate_httpx(exc, self.url, self.cfg, streaming=True) from exc

    def _parse(self, payloads: list[bytes], parser: Parser, out: list[ModelEvent]) -> None:
        for payload in payloads:
            if payload == b"[DONE]":
                self.on_done_marker(parser, out)
                continue
            try:
                obj = loads(payload)
            except RecursionError as exc:
                raise self._too_large("JSON nested too deeply") from exc
            except ValueError as exc:
                raise translate_httpx(exc, self.url, self.cfg, streaming=True) from exc
            if not isinstance(obj, dict):
                raise at(ModelProtocolError(
                    f"unexpected event from {self.url}: {self._scrub(payload[:80])!r}"), self.url)
            try:
                parser.feed(obj, out)
            except SHAPE_ERRORS as exc:
                raise at(ModelProtocolError(
                    f"malformed {str(obj.get('type') or 'event')[:40]!r} from {self.url} "
                    f"({type(exc).__name__}: {self._scrub(first_line(exc))}): "
                    "is this endpoint speaking the right API?"), self.url) from exc

    def _scrub(self, text: str | bytes) -> str:
        """``text`` (from the server) with the API key redacted, ready for a message."""
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        return server_text(text, self.cfg.api_key)


def first_line(exc: BaseException) -> str:
    """The start of ``exc``'s message, for a one-line error."""
    text = str(exc).strip()
    return text.splitlines()[0][:80] if text else ""


async def _drain(chunks: AsyncIterator[bytes]) -> None:
    try:
        async with asyncio.timeout(DRAIN_TIMEOUT_S):
            async for _ in chunks:
                pass
    except (TimeoutError, *FOREIGN_ERRORS):
        pass
