"""The WebSocket side of the Responses client: opening a connection, a cheap watchdog for
first-token / idle timeouts, and the one place where ``websockets`` errors become Tandem
errors (``translate_ws``).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
    PayloadTooBig,
    WebSocketException,
)
from websockets.frames import CloseCode

from orchestrator.errors import (
    ModelConnectError,
    ModelError,
    ModelProtocolError,
    ModelTimeout,
    StreamInterrupted,
)
from orchestrator.models.mapping import at, parse_retry_after_s, server_text, status_error
from orchestrator.models.tls import tls_error
from orchestrator.models.types import EndpointConfig
from orchestrator.models.ws_reader import MAX_MESSAGE_BYTES, BatchingConnection

FOREIGN_WS_ERRORS = (WebSocketException, OSError, TimeoutError, ValueError)


class UpgradeRequired(Exception):
    """The server answered the WebSocket upgrade with 426: use HTTP SSE instead."""


class _Connect(connect):
    """``websockets.connect`` that never follows a redirect: it would send the
    Authorization header to wherever the server points (another host included)."""

    def process_redirect(self, exc: Exception) -> Exception | str:
        return exc


def ws_url_of(base_url: str) -> str:
    """``http(s)://host/v1`` → ``ws(s)://host/v1/responses``."""
    url = base_url.rstrip("/")
    if url.startswith("https://"):
        url = "wss://" + url[len("https://"):]
    elif url.startswith("http://"):
        url = "ws://" + url[len("http://"):]
    return url + "/responses"


async def open_ws(
    url: str, cfg: EndpointConfig, context: ssl.SSLContext | None = None
) -> BatchingConnection:
    """Open one connection (messages up to ``MAX_MESSAGE_BYTES``, keepalive pings, no
    compression, redirects refused); ``context``
    (from ``ca_file``) is used for wss:// URLs only (websockets refuses one for ws://)."""
    headers = dict(cfg.extra_headers)
    if cfg.api_key:
        headers["Authorization"] = f"Bearer {cfg.api_key}"
    tls: dict[str, Any] = {"ssl": context} if context is not None and url.startswith("wss:") else {}
    try:
        conn = await _Connect(
            url,
            create_connection=BatchingConnection,
            additional_headers=headers,
            max_size=MAX_MESSAGE_BYTES,
            compression=None,
            open_timeout=cfg.connect_timeout_s,
            ping_interval=cfg.ws_ping_interval_s,
            ping_timeout=cfg.ws_ping_interval_s,
            close_timeout=2,
            **tls,
        )
        assert isinstance(conn, BatchingConnection)
        return conn
    except InvalidStatus as exc:
        if exc.response.status_code == 426:
            raise UpgradeRequired(f"{url} answered 426 Upgrade Required") from exc
        raise translate_ws(exc, url, cfg, streaming=False) from exc
    except FOREIGN_WS_ERRORS as exc:
        raise translate_ws(exc, url, cfg, streaming=False) from exc


def translate_ws(
    exc: BaseException, url: str, cfg: EndpointConfig, *, streaming: bool
) -> ModelError:
    """The Tandem error for a foreign (websockets / network / JSON) error at ``url``.

    ``streaming``: the request had been sent when it happened.
    """
    if isinstance(exc, InvalidStatus):
        return _handshake_status(exc, url, cfg)
    if isinstance(exc, ssl.SSLError):  # before ValueError: a failed verification is both
        if streaming:
            return at(StreamInterrupted(f"WebSocket {url} broke: TLS error {exc}"), url)
        return tls_error(exc, url)
    if isinstance(exc, PayloadTooBig) or (
            isinstance(exc, ConnectionClosed) and exc.sent is not None
            and exc.sent.code == CloseCode.MESSAGE_TOO_BIG):
        return at(ModelProtocolError(
            f"WebSocket {url} sent a message over {MAX_MESSAGE_BYTES >> 20} MiB: refusing it; "
            "is this endpoint speaking the Responses API?"), url)
    if isinstance(exc, InvalidURI):
        return at(ModelConnectError(f"bad URL {url}: {exc}; check the base URL"), url)
    if isinstance(exc, InvalidHandshake):
        return at(ModelProtocolError(
            f"{url} did not complete a WebSocket handshake ({exc}): "
            "check the base URL and that the server speaks Responses WebSocket mode"), url)
    if isinstance(exc, ConnectionClosed):
        return at(StreamInterrupted(
            f"WebSocket {url} closed before the response finished ({exc})"), url)
    if isinstance(exc, TimeoutError):
        return at(ModelTimeout(
            f"WebSocket handshake with {url} took over {cfg.connect_timeout_s:g} s: "
            "check the endpoint is up and reachable"), url)
    if isinstance(exc, ValueError):  # json.JSONDecodeError and UnicodeDecodeError included
        return at(ModelProtocolError(
            f"undecodable frame from {url} ({exc}): is this endpoint speaking the Responses API?"
        ), url)
    if isinstance(exc, OSError):
        if streaming:
            return at(StreamInterrupted(f"WebSocket {url} broke: {exc}"), url)
        return at(ModelConnectError(
            f"cannot connect to {url} ({exc.strerror or exc}): "
            "check that the server is running and the base URL"), url)
    return at(ModelProtocolError(f"WebSocket error from {url}: {type(exc).__name__}: {exc}"), url)


def _handshake_status(exc: InvalidStatus, url: str, cfg: EndpointConfig) -> ModelError:
    status = exc.response.status_code
    if 300 <= status < 400:
        where = server_text(exc.response.headers.get("location") or "nowhere", cfg.api_key, 200)
        return at(ModelProtocolError(
            f"HTTP {status} from {url} redirects to {where!r}: redirects are not followed "
            "(the API key would go along); set the endpoint's base URL to the new address"),
            url)
    if status in (401, 403, 429) or status >= 500:
        retry = exc.response.headers.get("retry-after")
        return status_error(status, url, key_env=cfg.api_key_env,
                            retry_after_s=parse_retry_after_s(retry))
    return at(ModelProtocolError(
        f"HTTP {status} from {url} instead of a WebSocket upgrade: the endpoint does not serve "
        "Responses WebSocket mode; check the base URL or use provider 'openai-responses'"), url)


class Watchdog:
    """Calls ``abort`` when the server stays silent too long while the reader waits:
    longer than the first-token timeout before any output, than the idle timeout after;
    and, waiting or not, at the request's total deadline (``expired``), however steadily
    the server keeps sending.

    One per connection, shared by its requests: ``start()`` at each request only resets
    fields, and the one timer is re-armed only when it would fire too late (or after it
    stopped, once a request had ended). The reader updates two fields per batch.
    """

    __slots__ = ("_abort", "_ft_s", "_idle_s", "_loop", "_t0", "last_rx", "waiting",
                 "got_output", "fired", "expired", "active", "_handle", "_end")

    def __init__(self, abort: Callable[[], None], first_token_s: float, idle_s: float) -> None:
        self._abort = abort
        self._ft_s = first_token_s
        self._idle_s = idle_s
        self._loop = asyncio.get_running_loop()
        self._t0 = self.last_rx = self._loop.time()
        self.waiting = False
        self.got_output = False
        self.fired = False
        self.expired = False
        self.active = False
        self._handle: asyncio.TimerHandle | None = None
        self._end = self._t0

    def start(self, end: float) -> None:
        """A request was sent: its first-token deadline starts now; ``end`` (loop time) is
        its total deadline."""
        self._t0 = self.last_rx = now = self._loop.time()
        self.got_output = self.fired = self.expired = self.waiting = False
        self.active = True
        self._end = end
        handle = self._handle
        deadline = min(now + self._ft_s, end)
        if handle is None or handle.when() > deadline:
            if handle is not None:
                handle.cancel()
            self._handle = self._loop.call_at(deadline, self._check)

    def received(self) -> None:
        """Data arrived: the reader stops waiting, the idle deadline restarts."""
        self.waiting = False
        self.last_rx = self._loop.time()

    def stop(self) -> None:
        """The request ended; the timer stops the next time it fires."""
        self.active = self.waiting = False

    def _check(self) -> None:
        if not self.active:
            self._handle = None
            return
        now = self._loop.time()
        if now >= self._end:
            self.fired = self.expired = True
            self._handle = None
            self._abort()
            return
        deadline = self.last_rx + self._idle_s if self.got_output else self._t0 + self._ft_s
        if now >= deadline:
            if self.waiting:
                self.fired = True
                self._handle = None
                self._abort()
                return
            deadline = now + self._idle_s  # the consumer is busy, not the server
        self._handle = self._loop.call_at(min(deadline, self._end), self._check)

    def cancel(self) -> None:
        self.active = False
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    @property
    def timeout_s(self) -> float:
        return self._idle_s if self.got_output else self._ft_s
