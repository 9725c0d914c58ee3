"""The WebSocket fast path: chaining, warm-up, recovery, fallback, interrupt and steer."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from orchestrator.models import Completed, Incomplete, Message, ModelRequest, TextDelta, complete
from orchestrator.sim import Fault, SimServer

from .conftest import request, sim_config


def conversation(*texts: str, model: str = "sim-bench", **kw: Any) -> ModelRequest:
    roles = ["user", "assistant"]
    msgs = [Message(role=roles[i % 2], content=t) for i, t in enumerate(texts)]  # type: ignore[arg-type]
    return ModelRequest(model=model, messages=msgs, **kw)


async def test_second_turn_chains_with_only_new_items(sim: Any, make: Any) -> None:
    client = make("openai-ws", sim.base_url)
    first = await complete(client, conversation("hello"))
    assert client.last_metrics.chained is False
    await complete(client, conversation("hello", first.text, "more please"))
    assert client.last_metrics.chained is True
    turn1, turn2 = sim.requests
    assert turn1["previous_response_id"] is None and turn1["input_items"] == 1
    assert turn2["previous_response_id"] == first.response_id
    assert turn2["input_items"] == 1
    assert turn1["connection_id"] == turn2["connection_id"]
    assert client.connections_opened == 1


async def test_changed_field_sends_full_input(sim: Any, make: Any) -> None:
    client = make("openai-ws", sim.base_url)
    first = await complete(client, conversation("hello"))
    await complete(client, conversation("hello", first.text, "more", instructions="be brief"))
    assert sim.requests[1]["previous_response_id"] is None
    assert sim.requests[1]["input_items"] == 3


async def test_edited_history_sends_full_input(sim: Any, make: Any) -> None:
    client = make("openai-ws", sim.base_url)
    await complete(client, conversation("hello"))
    await complete(client, conversation("hello", "not what was said", "more"))
    assert sim.requests[1]["previous_response_id"] is None


async def test_after_an_error_the_next_turn_sends_full_input(sim: Any, make: Any) -> None:
    client = make("openai-ws", sim.base_url, max_retries=0)
    first = await complete(client, conversation("hello"))
    sim.inject(Fault(kind="http_error", status=500))
    with pytest.raises(Exception) as info:
        await complete(client, conversation("hello", first.text, "more"))
    assert type(info.value).__name__ == "ServerError"
    await complete(client, conversation("hello", first.text, "more"))
    failed, retried = sim.requests[1], sim.requests[2]
    assert failed["previous_response_id"] == first.response_id
    assert retried["previous_response_id"] is None and retried["input_items"] == 3


async def test_warm_up_chains_next_turn(sim: Any, make: Any) -> None:
    client = make("openai-ws", sim.base_url)
    warm_id = await client.warm_up(ModelRequest(
        model="sim-bench", instructions="you edit code",
        messages=[Message(role="system", content="repo: demo")]))
    req = ModelRequest(model="sim-bench", instructions="you edit code", messages=[
        Message(role="system", content="repo: demo"), Message(role="user", content="hello")])
    await complete(client, req)
    assert sim.requests[1]["previous_response_id"] == warm_id
    assert sim.requests[1]["input_items"] == 1
    assert client.last_metrics.chained is True


async def test_previous_response_not_found_resends_full_input_once(sim: Any, make: Any) -> None:
    client = make("openai-ws", sim.base_url)
    first = await complete(client, conversation("hello"))
    # The server forgets the chained state (as after a restart behind the same socket
    # address): simulate by pointing the client's chain at an id the server never issued.
    client._chain.response_id = "resp_forgotten"
    done = await complete(client, conversation("hello", first.text, "more"))
    assert isinstance(done, Completed)
    chained, resent = sim.requests[1], sim.requests[2]
    assert chained["previous_response_id"] == "resp_forgotten"
    assert resent["previous_response_id"] is None and resent["input_items"] == 3
    assert len(sim.requests) == 3
    assert client.last_metrics.chained is False


async def test_connection_limit_reconnects_transparently(sim: Any, make: Any) -> None:
    client = make("openai-ws", sim.base_url)
    await complete(client, request("hello"))
    sim.inject(Fault(kind="connection_limit"))
    done = await complete(client, request("hello again"))
    assert done.text == "Hello there, friend."
    assert client.connections_opened == 2
    conns = [r["connection_id"] for r in sim.requests]
    assert len(conns) == 3 and conns[0] == conns[1] != conns[2]


async def test_426_falls_back_to_http_and_says_so(
    sim: Any, make: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sim.inject(Fault(kind="ws_handshake_status", status=426))
    client = make("openai-ws", sim.base_url)
    with caplog.at_level(logging.WARNING, logger="orchestrator.models"):
        done = await complete(client, request("hello"))
    assert done.text == "Hello there, friend."
    assert client.last_metrics.fell_back_to_http is True
    assert client.last_metrics.transport == "http-sse"
    assert "426" in client.fallback_reason
    assert any("falling back" in r.getMessage() for r in caplog.records)
    await complete(client, request("hello"))
    assert [r["transport"] for r in sim.requests] == ["sse", "sse"]
    assert client.last_metrics.fell_back_to_http is True


async def test_repeated_connect_failures_fall_back(sim: Any, make: Any) -> None:
    sim.inject(Fault(kind="ws_handshake_status", status=503, count=3))
    client = make("openai-ws", sim.base_url, ws_fallback_after_failures=3, max_retries=5)
    done = await complete(client, request("hello"))
    assert isinstance(done, Completed)
    assert client.last_metrics.fell_back_to_http is True
    assert client.last_metrics.retries == 2
    assert "3 consecutive" in client.fallback_reason


async def test_first_token_timeout_fires_on_a_reused_connection(sim: Any, make: Any) -> None:
    """The watchdog is per connection; a later request gets its own first-token deadline
    (shorter than the idle timeout, so the timer left by the first request is too late)."""
    from orchestrator.errors import ModelTimeout

    client = make("openai-ws", sim.base_url, first_token_timeout_s=0.3, idle_timeout_s=30,
                  max_retries=0)
    await complete(client, request("hello"))
    sim.inject(Fault(kind="slow_first_token", delay_ms=5000))
    with pytest.raises(ModelTimeout) as info:
        await asyncio.wait_for(complete(client, request("hello")), timeout=4)
    assert "first-token" in str(info.value)
    done = await complete(client, request("hello"))
    assert done.text and client.connections_opened == 2


async def test_interrupt_aborts_then_next_request_reconnects(sim: Any, make: Any) -> None:
    client = make("openai-ws", sim.base_url)
    events = []
    async for event in client.stream(request("write", model="sim-slow", max_output_tokens=300)):
        events.append(event)
        if sum(isinstance(e, TextDelta) for e in events) == 3:
            await client.interrupt()
    assert events[-1] == Incomplete(reason="interrupted")
    assert not any(isinstance(e, Completed) for e in events)
    done = await complete(client, request("hello"))
    assert done.text == "Hello there, friend."
    assert client.connections_opened == 2
    assert sim.requests[1]["previous_response_id"] is None


async def test_steer_continues_with_the_successor() -> None:
    from orchestrator.models import EndpointConfig, make_client

    with SimServer(sim_config(steer_supported=True)).run_in_thread() as sim:
        client = make_client(EndpointConfig(
            provider="openai-ws", base_url=sim.base_url, steer_supported=True))
        try:
            events = []
            req = request("write", model="sim-slow", max_output_tokens=300)
            async for event in client.stream(req):
                events.append(event)
                if sum(isinstance(e, TextDelta) for e in events) == 3:
                    await client.interrupt("say hello instead")
            done = events[-1]
            assert isinstance(done, Completed)
            assert done.text == "Hello there, friend."
            assert client.last_metrics.steered is True
            first, successor = sim.requests
            assert successor["previous_response_id"] is not None
            assert first["connection_id"] == successor["connection_id"]
            assert done.response_id != successor["previous_response_id"]
        finally:
            await client.aclose()


async def test_steer_after_the_server_finished_returns_the_original() -> None:
    """The client still reads text the server finished sending a while ago (a busy
    client lags behind an unpaced server): the steer is refused as too late (or, when the
    client has already parsed the end, not sent) and the stream ends with the original
    response, without a successor, so the caller re-issues."""
    from orchestrator.models import EndpointConfig, make_client

    with SimServer(sim_config(steer_supported=True)).run_in_thread() as sim:
        client = make_client(EndpointConfig(
            provider="openai-ws", base_url=sim.base_url, steer_supported=True))
        try:
            events = []
            async for event in client.stream(request("write", max_output_tokens=100)):
                events.append(event)
                if len(events) == 1:
                    await asyncio.sleep(0.5)  # ample for the unpaced server to send all 100
                    await client.interrupt("say hello instead")
            done = events[-1]
            assert isinstance(done, Completed)
            assert done.usage.output_tokens == 100
            assert "Hello there" not in done.text
            assert len(sim.requests) == 1  # no successor was started
            await complete(client, request("hello"))
            assert client.connections_opened == 1  # a late interrupt does not cost the socket
        finally:
            await client.aclose()
