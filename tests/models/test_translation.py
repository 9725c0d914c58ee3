"""Every foreign error (httpx, websockets, network, JSON) becomes a Tandem ModelError at
the one boundary of each client, and the SSE decoder handles real-world framing."""

from __future__ import annotations

import inspect
import json
import warnings
from typing import Any

import httpx
import pytest
import websockets.exceptions as wse
from websockets.datastructures import Headers
from websockets.frames import Close
from websockets.http11 import Response

from orchestrator.errors import ModelError
from orchestrator.models import EndpointConfig
from orchestrator.models.http_base import translate_httpx
from orchestrator.models.sse import SSEDecoder
from orchestrator.models.ws_conn import translate_ws

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

URL = "http://127.0.0.1:9/v1/responses"
CFG = EndpointConfig(provider="openai-responses", base_url="http://127.0.0.1:9/v1")


def _foreign_classes(module: Any, base: type) -> list[type]:
    with warnings.catch_warnings():  # deprecated aliases warn when touched
        warnings.simplefilter("ignore", DeprecationWarning)
        members = inspect.getmembers(module, inspect.isclass)
    return sorted(
        {c for _, c in members
         if issubclass(c, base) and c.__module__.startswith(module.__name__.split(".")[0])},
        key=lambda c: c.__name__,
    )


def _httpx_instance(cls: type) -> BaseException:
    request = httpx.Request("POST", URL)
    if issubclass(cls, httpx.HTTPStatusError):
        return cls("boom", request=request, response=httpx.Response(500, request=request))
    if issubclass(cls, httpx.RequestError):
        return cls("boom", request=request)
    try:
        return cls("boom")
    except TypeError:  # the stream-misuse errors take no message
        return cls()


HTTPX_ERRORS = _foreign_classes(httpx, Exception)
OTHER_ERRORS = [
    ConnectionRefusedError(111, "refused"), ConnectionResetError(104, "reset"),
    TimeoutError(), json.JSONDecodeError("bad", "x", 0),
    UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad"),
]


@pytest.mark.parametrize("cls", HTTPX_ERRORS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("streaming", [False, True])
def test_every_httpx_error_is_mapped(cls: type, streaming: bool) -> None:
    exc = _httpx_instance(cls)
    mapped = translate_httpx(exc, URL, CFG, streaming=streaming)  # type: ignore[arg-type]
    assert isinstance(mapped, ModelError)
    assert URL in str(mapped) and mapped.endpoint == URL


@pytest.mark.parametrize("exc", OTHER_ERRORS, ids=lambda e: type(e).__name__)
def test_network_and_json_errors_are_mapped(exc: Exception) -> None:
    for mapped in (translate_httpx(exc, URL, CFG, streaming=False),
                   translate_ws(exc, URL, CFG, streaming=True)):
        assert isinstance(mapped, ModelError) and URL in str(mapped)


def _ws_instance(cls: type) -> BaseException:
    close = Close(1006, "")
    special: dict[type, tuple[Any, ...]] = {
        wse.ConnectionClosed: (close, None),
        wse.InvalidStatus: (Response(503, "Service Unavailable", Headers()),),
        wse.InvalidHeader: ("Upgrade", "h2c"),
        wse.InvalidHeaderFormat: ("Upgrade", "bad", "x", 0),
        wse.InvalidHeaderValue: ("Upgrade", "h2c"),
        wse.InvalidUpgrade: ("Upgrade", "h2c"),
        wse.InvalidOrigin: ("http://x",),
        wse.DuplicateParameter: ("p",),
        wse.InvalidParameterName: ("p",),
        wse.InvalidParameterValue: ("p", "v"),
        wse.InvalidURI: ("x://", "bad scheme"),
        wse.InvalidProxy: ("x://", "bad scheme"),
        wse.InvalidProxyMessage: ("bad",),
        wse.InvalidProxyStatus: (Response(502, "Bad Gateway", Headers()),),
        wse.AbortHandshake: (503, Headers()),
        wse.InvalidStatusCode: (503, Headers()),
        wse.RedirectHandshake: ("http://x",),
    }
    if cls in special:
        return cls(*special[cls])
    for base, args in special.items():
        if issubclass(cls, base):
            return cls(*args)
    return cls("boom")


WS_ERRORS = [c for c in _foreign_classes(wse, wse.WebSocketException)
             if not c.__name__.startswith("_")]


@pytest.mark.parametrize("cls", WS_ERRORS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("streaming", [False, True])
def test_every_websockets_error_is_mapped(cls: type, streaming: bool) -> None:
    try:
        exc = _ws_instance(cls)
    except TypeError as err:  # pragma: no cover - a new class needs a constructor above
        pytest.fail(f"add a constructor for {cls.__name__}: {err}")
    mapped = translate_ws(exc, URL, CFG, streaming=streaming)
    assert isinstance(mapped, ModelError)
    assert URL in str(mapped) and mapped.endpoint == URL


def test_sse_decoder_handles_crlf_split_chunks_and_multiline_data() -> None:
    decoder = SSEDecoder()
    stream = (b'event: a\r\ndata: {"x": 1}\r\n\r\n: comment\n\ndata: line1\ndata: line2\n\n'
              b"data: [DONE]\n\n")
    out: list[bytes] = []
    for i in range(0, len(stream), 3):  # every split point, CR and LF apart included
        out += decoder.feed(stream[i:i + 3])
    assert out == [b'{"x": 1}', b"line1\nline2", b"[DONE]"]
    assert decoder.pending == b""
