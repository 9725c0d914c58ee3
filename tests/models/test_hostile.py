"""A hostile or broken provider: nothing it sends is trusted. Each case gets a bounded,
one-line typed error naming the endpoint (never a hang, unbounded memory, a foreign
traceback or the API key), played by a raw loopback server (``hostile.py``)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from orchestrator.errors import (
    ModelError,
    ModelProtocolError,
    ModelTimeout,
    ServerError,
    StreamInterrupted,
)
from orchestrator.models import complete, http_base, make_client, ws
from orchestrator.models.types import Completed

from .conftest import KEY, endpoint, request
from .hostile import Request, hostile_server, sse_head, ws_accept, ws_frame, ws_messages

MiB = 1024 * 1024
DELTA = b'data: {"choices":[{"delta":{"content":"hi"}}]}\n\n'


async def _call(provider: str, scenario: Any, *, limit_s: float = 10, **kw: Any) -> Any:
    """``complete()`` against ``scenario``: its result, or the error it raised."""
    async with hostile_server(scenario) as srv:
        client = make_client(endpoint(provider, srv.url, max_retries=0, **kw))
        try:
            async with asyncio.timeout(limit_s):
                return await complete(client, request())
        except ModelError as exc:
            assert srv.url.split("//")[1] in str(exc) and "\n" not in str(exc)
            return exc
        finally:
            await client.aclose()


async def _endless(w: asyncio.StreamWriter, piece: bytes) -> None:
    while True:
        w.write(piece)
        await w.drain()


# --- HTTP SSE -------------------------------------------------------------------------


async def test_an_event_that_never_ends_is_refused_not_buffered() -> None:
    async def scenario(req: Request, w: asyncio.StreamWriter) -> None:
        w.write(sse_head() + DELTA + b"data: ")
        await _endless(w, b"x" * 65536)

    err = await _call("chat-completions", scenario)
    assert isinstance(err, ModelProtocolError) and "32 MiB" in str(err)


async def test_an_endless_error_body_is_read_only_up_to_a_bound() -> None:
    async def scenario(req: Request, w: asyncio.StreamWriter) -> None:
        w.write(sse_head(500, "text/plain") + b"overloaded\n")
        await _endless(w, b"y" * 65536)

    err = await _call("chat-completions", scenario, limit_s=5)
    assert isinstance(err, ServerError) and "overloaded" in str(err)


async def test_an_error_body_that_trickles_forever_does_not_hold_the_call() -> None:
    async def scenario(req: Request, w: asyncio.StreamWriter) -> None:
        w.write(sse_head(500, "text/plain") + b"busy")
        await _endless_slowly(w)

    err = await _call("anthropic", scenario, limit_s=5, first_token_timeout_s=0.5,
                      idle_timeout_s=0.4)
    assert isinstance(err, ServerError) and "busy" in str(err)


async def _endless_slowly(w: asyncio.StreamWriter) -> None:
    while True:
        await asyncio.sleep(0.1)
        w.write(b" ")
        await w.drain()


async def test_an_event_trickled_byte_by_byte_hits_the_idle_timeout() -> None:
    async def scenario(req: Request, w: asyncio.StreamWriter) -> None:
        w.write(sse_head() + DELTA + b"data: {")
        await _endless_slowly(w)

    err = await _call("chat-completions", scenario, limit_s=5, idle_timeout_s=0.5)
    assert isinstance(err, ModelTimeout) and "idle timeout" in str(err)


async def test_an_endless_stream_of_deltas_stops_at_the_response_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(http_base, "MAX_RESPONSE_BYTES", MiB)

    async def scenario(req: Request, w: asyncio.StreamWriter) -> None:
        w.write(sse_head())
        await _endless(w, DELTA * 100)

    err = await _call("chat-completions", scenario)
    assert isinstance(err, ModelProtocolError) and "over 1 MiB" in str(err)


MALFORMED = [
    ("chat-completions", b'{"choices": "x"}'),
    ("chat-completions", b'{"choices":[{"delta":"s"}]}'),
    ("chat-completions", b'{"choices":[{"delta":{"tool_calls":[{"index":"z"}]}}]}'),
    ("chat-completions", b'{"choices":[],"usage":{"prompt_tokens":"lots"}}'),
    ("chat-completions", b'{"choices":[],"usage":{"prompt_tokens":1e999}}'),
    ("chat-completions", b"[" * 5000 + b"]" * 5000),
    ("anthropic", b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta"}}'),
    ("anthropic", b'{"type":"message_start","message":"x"}'),
    ("openai-responses", b'{"type":"response.output_text.delta"}'),
    ("openai-responses", b'{"type":"response.output_text.delta","delta":5}'),
]


@pytest.mark.parametrize(("provider", "payload"), MALFORMED)
async def test_a_malformed_event_is_a_one_line_protocol_error(
    provider: str, payload: bytes
) -> None:
    async def scenario(req: Request, w: asyncio.StreamWriter) -> None:
        w.write(sse_head() + b"data: " + payload + b"\n\n")

    err = await _call(provider, scenario, limit_s=5)
    assert isinstance(err, ModelProtocolError)


async def test_done_before_any_choice_is_no_answer() -> None:
    async def scenario(req: Request, w: asyncio.StreamWriter) -> None:
        w.write(sse_head() + b"data: [DONE]\n\n")

    err = await _call("chat-completions", scenario, limit_s=5)
    assert isinstance(err, ModelProtocolError) and "before any choice" in str(err)


@pytest.mark.parametrize(("provider", "payload"), [
    ("chat-completions", b'{"error":{"message":"bad key %s"}}'),
    ("anthropic", b'{"type":"error","error":{"type":"invalid_request_error",'
                  b'"message":"Authorization: Bearer %s"}}'),
    ("openai-responses", b'{"type":"error","code":"x","message":"key %s"}'),
])
async def test_an_error_event_echoing_the_key_does_not_repeat_it(
    provider: str, payload: bytes
) -> None:
    async def scenario(req: Request, w: asyncio.StreamWriter) -> None:
        w.write(sse_head() + b"data: " + payload % KEY.encode() + b"\n\n")

    err = await _call(provider, scenario, limit_s=5)
    assert isinstance(err, ModelError) and KEY not in str(err) and "REDACTED" in str(err)


# --- WebSocket ------------------------------------------------------------------------


def _answer(*frames: bytes) -> Any:
    """A WebSocket server that answers each request with ``frames``."""
    async def scenario(req: Request, w: asyncio.StreamWriter) -> None:
        w.write(ws_accept(req))
        async for _ in ws_messages(req):
            for frame in frames:
                w.write(frame)
                await w.drain()
        await asyncio.sleep(5)
    return scenario


async def test_ws_redirect_is_not_followed_and_the_key_stays_home() -> None:
    async with hostile_server(_answer()) as elsewhere:
        port = elsewhere.url.split(":")[2].split("/")[0]

        async def scenario(req: Request, w: asyncio.StreamWriter) -> None:
            w.write(f"HTTP/1.1 302 Found\r\nlocation: ws://localhost:{port}/steal\r\n"
                    "content-length: 0\r\n\r\n".encode())

        err = await _call("openai-ws", scenario, limit_s=5)
        assert isinstance(err, ModelProtocolError) and "redirect" in str(err)
        assert elsewhere.requests == []


async def test_ws_oversized_frame_is_refused_before_it_is_buffered() -> None:
    async def scenario(req: Request, w: asyncio.StreamWriter) -> None:
        w.write(ws_accept(req))
        async for _ in ws_messages(req):
            w.write(ws_frame(b"", size=400 * MiB))
            await _endless(w, b"x" * 65536)

    err = await _call("openai-ws", scenario)
    assert isinstance(err, ModelProtocolError) and "32 MiB" in str(err)


async def test_ws_endless_fragmented_message_is_refused() -> None:
    async def scenario(req: Request, w: asyncio.StreamWriter) -> None:
        w.write(ws_accept(req))
        async for _ in ws_messages(req):
            w.write(ws_frame(b"{", fin=False))
            await _endless(w, ws_frame(b"x" * 65000, opcode=0, fin=False))

    err = await _call("openai-ws", scenario)
    assert isinstance(err, ModelProtocolError) and "32 MiB" in str(err)


async def test_ws_endless_deltas_stop_at_the_response_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ws, "MAX_RESPONSE_BYTES", MiB)
    delta = ws_frame(b'{"type":"response.output_text.delta","delta":"hi"}')

    async def scenario(req: Request, w: asyncio.StreamWriter) -> None:
        w.write(ws_accept(req))
        async for _ in ws_messages(req):
            await _endless(w, delta * 100)

    err = await _call("openai-ws", scenario)
    assert isinstance(err, ModelProtocolError) and "over 1 MiB" in str(err)


@pytest.mark.parametrize("payload", [
    b'{"type":"response.output_text.delta"}',
    b'{"type":"response.created","response":"x"}',
    b"[" * 5000,
])
async def test_ws_malformed_frame_is_a_one_line_protocol_error(payload: bytes) -> None:
    err = await _call("openai-ws", _answer(ws_frame(payload)), limit_s=5)
    assert isinstance(err, ModelProtocolError)


async def test_ws_error_frame_echoing_the_key_does_not_repeat_it() -> None:
    frame = ws_frame(b'{"type":"error","error":{"message":"key %s"}}' % KEY.encode())
    err = await _call("openai-ws", _answer(frame), limit_s=5)
    assert isinstance(err, ModelError) and KEY not in str(err) and "REDACTED" in str(err)


async def test_ws_frames_after_the_terminal_event_do_not_answer_the_next_request() -> None:
    n = 0

    async def scenario(req: Request, w: asyncio.StreamWriter) -> None:
        nonlocal n
        w.write(ws_accept(req))
        async for _ in ws_messages(req):
            n += 1
            done = b'{"type":"response.completed","response":{"id":"r%d"}}' % n
            delta = b'{"type":"response.output_text.delta","delta":"answer %d"}' % n
            w.write(ws_frame(delta) + ws_frame(done) + ws_frame(done))  # one too many
            await w.drain()

    async with hostile_server(scenario) as srv:
        client = make_client(endpoint("openai-ws", srv.url, max_retries=0))
        try:
            async with asyncio.timeout(5):
                first = await complete(client, request("hello 1"))
                second = await complete(client, request("hello 2"))
        finally:
            await client.aclose()
    assert isinstance(second, Completed)
    assert (first.text, second.text, second.response_id) == ("answer 1", "answer 2", "r2")


async def test_ws_close_frame_mid_stream_ends_the_call_though_the_socket_stays_open() -> None:
    delta = ws_frame(b'{"type":"response.output_text.delta","delta":"hi"}')
    close = ws_frame(b"\x03\xf3going away", opcode=8)  # 1011, then the TCP stays open
    err = await _call("openai-ws", _answer(delta, close), limit_s=5)
    assert isinstance(err, StreamInterrupted) and "1011" in str(err)
