"""Bounds on what a provider can make a call do: a total deadline however steadily it
sends, no secrets and no unbounded text from its error messages, no frames of an earlier
response taken for the current one, and no long sleeps on its Retry-After."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import ValidationError

from orchestrator.errors import ModelError, ModelTimeout, RateLimited, ResponseFailed
from orchestrator.models import Completed, Failed, TextDelta, complete, make_client
from orchestrator.models.mapping import server_text
from orchestrator.sim import Fault

from .conftest import KEY, PROVIDERS, endpoint, request
from .hostile import Request, hostile_server, sse_head, ws_accept, ws_frame, ws_messages

# --- a total deadline per call ----------------------------------------------------------

CREATED = b'{"type":"response.created","response":{"id":"r1"}}'
RESP_DELTA = b'{"type":"response.output_text.delta","delta":"hi"}'
# What each provider keeps sending, slowly and forever: valid output or keepalives.
TRICKLE = {
    "chat-completions": (b"", b'data: {"choices":[{"delta":{"content":"hi"}}]}\n\n'),
    "anthropic": (
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
        b'"delta":{"type":"text_delta","text":"hi"}}\n\n',
        b'event: ping\ndata: {"type":"ping"}\n\n'),
    "openai-responses": (b"data: " + CREATED + b"\n\ndata: " + RESP_DELTA + b"\n\n",
                         b": keepalive\n\ndata: " + RESP_DELTA + b"\n\n"),
}


async def _forever(w: asyncio.StreamWriter, piece: bytes) -> None:
    while True:
        w.write(piece)
        await w.drain()
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_stream_that_never_ends_stops_at_the_total_deadline(provider: str) -> None:
    async def scenario(req: Request, w: asyncio.StreamWriter) -> None:
        if provider == "openai-ws":
            w.write(ws_accept(req))
            async for _ in ws_messages(req):
                w.write(ws_frame(CREATED))
                await _forever(w, ws_frame(RESP_DELTA))
            return
        first, piece = TRICKLE[provider]
        w.write(sse_head() + first)
        await _forever(w, piece)

    async with hostile_server(scenario) as srv:
        client = make_client(endpoint(provider, srv.url, max_retries=0, total_timeout_s=0.6))
        events: list[Any] = []
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        try:
            with pytest.raises(ModelTimeout) as info:
                async with asyncio.timeout(5):
                    async for event in client.stream(request()):
                        events.append(event)
        finally:
            await client.aclose()
    assert "total timeout" in str(info.value) and srv.url.split("//")[1] in str(info.value)
    assert 0.6 <= loop.time() - t0 < 2
    assert events and all(isinstance(e, TextDelta) for e in events)


async def test_a_policy_entry_sets_the_total_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bounds are model-entry fields of a policy, carried to the endpoint the job's
    calls use (they were endpoint settings only, so a policy could not change them)."""
    from orchestrator.gateway import endpoint_config
    from orchestrator.policy import ModelEntry

    async def scenario(req: Request, w: asyncio.StreamWriter) -> None:
        w.write(sse_head())
        await _forever(w, TRICKLE["chat-completions"][1])

    monkeypatch.setenv("TEST_MODEL_KEY", KEY)
    async with hostile_server(scenario) as srv:
        entry = ModelEntry(provider="chat-completions", base_url=srv.url, model="m",
                           api_key_env="TEST_MODEL_KEY", total_timeout_s=0.5,
                           max_retry_after_s=5, max_retry_wait_s=7)
        cfg = endpoint_config(entry, None)
        assert (cfg.max_retry_after_s, cfg.max_retry_wait_s) == (5, 7)
        client = make_client(cfg)
        try:
            with pytest.raises(ModelTimeout, match="total timeout"):
                async with asyncio.timeout(5):
                    await complete(client, request())
        finally:
            await client.aclose()
    with pytest.raises(ValidationError, match="total_timeout_s"):
        ModelEntry(provider="chat-completions", base_url="http://x/v1", model="m",
                   total_timeout_s=0)


@pytest.mark.parametrize("field", ["total_timeout_s", "max_retry_after_s", "max_retry_wait_s"])
def test_the_bounds_are_validated(field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        endpoint("chat-completions", "http://127.0.0.1:1/v1", **{field: -1})
    with pytest.raises(ValidationError, match="total_timeout_s"):
        endpoint("chat-completions", "http://127.0.0.1:1/v1", total_timeout_s=0)


# --- server error text: redacted and bounded --------------------------------------------


def test_server_text_is_one_bounded_line_without_control_characters() -> None:
    text = server_text("bad\x1b[2J\x1b]0;owned\x07 key\r\n\x9b31mBearer abc.DEF-123_x " + "y" * 900)
    assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text
    assert "\n" not in text and "\r" not in text and "abc.DEF-123_x" not in text
    assert text.startswith("bad [2J ]0;owned  key 31mBearer [REDACTED:credential] yyy")
    assert len(text) == 300 and text.endswith("...")
    assert server_text("quota exceeded for sk-test-key", KEY) == (
        "quota exceeded for [REDACTED:known-secret]")
    assert server_text("basic validation failed") == "basic validation failed"

OTHER_KEY = "sk-proj-Zq8vW2xL9mN4bR7tY1cK6hJ3"
BEARER = "Bearer zQ7_vX2.mN8-kL4pR9tW"
LEAK = f"invalid key {OTHER_KEY}, got {BEARER} and {KEY}; " + "pad " * 20000


def _leaks(text: str) -> list[str]:
    return [s for s in (OTHER_KEY, KEY, BEARER.split()[1]) if s in text]


FAILED = (b'{"type":"response.failed","response":{"id":"r1","error":'
          b'{"code":"server_error","message":"%s"}}}' % LEAK.encode())
ERROR_EVENTS = {
    "chat-completions": b'data: {"error":{"message":"%s"}}\n\n' % LEAK.encode(),
    "anthropic": (b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error",'
                  b'"message":"%s"}}\n\n' % LEAK.encode()),
    "openai-responses": b"data: " + FAILED + b"\n\n",
}


async def _first_error(provider: str, scenario: Any) -> tuple[list[Any], Exception | None]:
    async with hostile_server(scenario) as srv:
        client = make_client(endpoint(provider, srv.url, max_retries=0))
        events: list[Any] = []
        try:
            async with asyncio.timeout(5):
                async for event in client.stream(request()):
                    events.append(event)
        except ModelError as exc:
            return events, exc
        finally:
            await client.aclose()
    return events, None


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_error_from_the_server_is_redacted_and_bounded(provider: str) -> None:
    async def scenario(req: Request, w: asyncio.StreamWriter) -> None:
        if provider == "openai-ws":
            w.write(ws_accept(req))
            async for _ in ws_messages(req):
                w.write(ws_frame(FAILED))
                await w.drain()
                await asyncio.sleep(5)
            return
        w.write(sse_head() + ERROR_EVENTS[provider])

    events, err = await _first_error(provider, scenario)
    texts = [str(err)] if err is not None else []
    texts += [e.error for e in events if isinstance(e, Failed)]
    assert texts and all(not _leaks(t) and "REDACTED" in t for t in texts), texts
    assert all(len(t) < 500 and "\n" not in t for t in texts)


async def test_a_failed_response_raises_redacted_and_bounded() -> None:
    async def scenario(req: Request, w: asyncio.StreamWriter) -> None:
        w.write(sse_head() + ERROR_EVENTS["openai-responses"])

    async with hostile_server(scenario) as srv:
        client = make_client(endpoint("openai-responses", srv.url, max_retries=0))
        try:
            with pytest.raises(ResponseFailed) as info:
                await complete(client, request())
        finally:
            await client.aclose()
    assert not _leaks(str(info.value)) and len(str(info.value)) < 500


async def test_an_error_answer_is_redacted_and_bounded() -> None:
    async def scenario(req: Request, w: asyncio.StreamWriter) -> None:
        w.write(sse_head(400, "application/json")
                + b'{"error":{"message":"%s","code":"bad"}}' % LEAK.encode())

    events, err = await _first_error("chat-completions", scenario)
    assert err is not None and not _leaks(str(err)) and "REDACTED" in str(err)
    assert len(str(err)) < 500


# --- the persistent WebSocket: no frames of an earlier response -------------------------


def _frames(rid: bytes, text: bytes, *, item: bytes | None = None) -> bytes:
    """A whole response ``rid`` whose text is ``text``."""
    item = item or b"msg_" + rid
    return (
        ws_frame(b'{"type":"response.created","response":{"id":"%s"}}' % rid)
        + ws_frame(b'{"type":"response.output_item.added","output_index":0,'
                   b'"item":{"id":"%s","type":"message"}}' % item)
        + ws_frame(b'{"type":"response.output_text.delta","item_id":"%s","delta":"%s"}'
                   % (item, text))
        + ws_frame(b'{"type":"response.completed","response":{"id":"%s"}}' % rid))


async def test_ws_late_frames_of_the_previous_response_are_ignored() -> None:
    """The server repeats the end of response r1 after the second request arrived."""
    async def scenario(req: Request, w: asyncio.StreamWriter) -> None:
        w.write(ws_accept(req))
        n = 0
        async for _ in ws_messages(req):
            n += 1
            if n == 1:
                w.write(_frames(b"r1", b"answer 1"))
            else:
                w.write(ws_frame(b'{"type":"response.output_text.delta","item_id":"msg_r1",'
                                 b'"delta":" late"}')
                        + ws_frame(b'{"type":"response.completed","response":{"id":"r1"}}')
                        + _frames(b"r2", b"answer 2"))
            await w.drain()

    async with hostile_server(scenario) as srv:
        client = make_client(endpoint("openai-ws", srv.url, max_retries=0))
        try:
            async with asyncio.timeout(5):
                first = await complete(client, request("hello 1"))
                second = await complete(client, request("hello 2"))
        finally:
            await client.aclose()
    assert (first.text, first.response_id) == ("answer 1", "r1")
    assert (second.text, second.response_id) == ("answer 2", "r2")


async def test_ws_an_abandoned_response_does_not_leak_into_the_next() -> None:
    """The caller stops reading r1 half-way; the server would go on with r1 (without ids
    on its deltas) on the same socket, so the next request must not be sent there."""
    async def scenario(req: Request, w: asyncio.StreamWriter) -> None:
        w.write(ws_accept(req))
        n = 0
        async for message in ws_messages(req):
            n += 1
            if b"abandoned" in message:
                w.write(ws_frame(CREATED) + ws_frame(RESP_DELTA))
            elif n == 1:
                w.write(_frames(b"r2", b"answer 2"))
            else:  # the rest of r1, then the answer
                w.write(ws_frame(RESP_DELTA)
                        + ws_frame(b'{"type":"response.completed","response":{"id":"r1"}}')
                        + _frames(b"r2", b"answer 2"))
            await w.drain()

    async with hostile_server(scenario) as srv:
        client = make_client(endpoint("openai-ws", srv.url, max_retries=0))
        try:
            async with asyncio.timeout(5):
                async for event in client.stream(request("abandoned")):
                    assert isinstance(event, TextDelta)
                    break
                second = await complete(client, request("hello 2"))
        finally:
            await client.aclose()
    assert isinstance(second, Completed)
    assert (second.text, second.response_id) == ("answer 2", "r2")


async def test_ws_a_cancelled_stream_does_not_leak_into_the_next() -> None:
    """The caller's task is cancelled half-way through r1: the next request must not
    read the rest of r1 (its deltas carry no ids)."""
    async def scenario(req: Request, w: asyncio.StreamWriter) -> None:
        w.write(ws_accept(req))
        n = 0
        async for message in ws_messages(req):
            n += 1
            if b"abandoned" in message:
                w.write(ws_frame(CREATED) + ws_frame(RESP_DELTA))
            elif n == 1:
                w.write(_frames(b"r2", b"answer 2"))
            else:
                w.write(ws_frame(RESP_DELTA)
                        + ws_frame(b'{"type":"response.completed","response":{"id":"r1"}}')
                        + _frames(b"r2", b"answer 2"))
            await w.drain()

    got_delta = asyncio.Event()

    async def consume(client: Any) -> None:
        async for _ in client.stream(request("abandoned")):
            got_delta.set()

    async with hostile_server(scenario) as srv:
        client = make_client(endpoint("openai-ws", srv.url, max_retries=0))
        try:
            async with asyncio.timeout(5):
                task = asyncio.create_task(consume(client))
                await got_delta.wait()
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                second = await complete(client, request("hello 2"))
        finally:
            await client.aclose()
    assert (second.text, second.response_id) == ("answer 2", "r2")
    assert len(srv.requests) == 2  # a new connection for the second request


# --- Retry-After: bounded waits ---------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_long_retry_after_fails_fast_saying_how_long(
    sim: Any, make: Any, provider: str
) -> None:
    sim.inject(Fault(kind="http_error", status=429, retry_after_s=300))
    client = make(provider, sim.base_url, max_retry_after_s=30)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    with pytest.raises(RateLimited) as info:
        await complete(client, request("hello"))
    assert loop.time() - t0 < 2
    assert "300 s" in str(info.value) and "\n" not in str(info.value)
    assert info.value.retry_after_s == 300
    assert len(sim.requests) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_retry_waits_stop_at_the_total_retry_wait(
    sim: Any, make: Any, provider: str
) -> None:
    sim.inject(Fault(kind="http_error", status=429, retry_after_s=0.06, count=5))
    client = make(provider, sim.base_url, max_retries=5, max_retry_wait_s=0.1)
    with pytest.raises(RateLimited) as info:
        await complete(client, request("hello"))
    assert "0.06 s" in str(info.value)
    assert len(sim.requests) == 2  # waited once (0.06 s); a second wait would pass 0.1 s
