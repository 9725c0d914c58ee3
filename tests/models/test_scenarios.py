"""The same scenarios for all four clients, against the simulated provider."""

from __future__ import annotations

import json
from typing import Any

import pytest

from orchestrator.models import (
    Completed,
    Incomplete,
    TextDelta,
    ToolCall,
    ToolSpec,
    Usage,
    complete,
)
from orchestrator.sim import Fault

from .conftest import PROVIDERS, request

pytestmark = pytest.mark.parametrize("provider", PROVIDERS)

WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather for a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)


async def collect(client: Any, req: Any) -> list[Any]:
    return [event async for event in client.stream(req)]


async def test_text_streams_then_completes(sim: Any, make: Any, provider: str) -> None:
    client = make(provider, sim.base_url)
    events = await collect(client, request("say hello"))
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    done = events[-1]
    assert isinstance(done, Completed)
    assert "".join(deltas) == done.text == "Hello there, friend."
    assert len(deltas) > 1
    assert sum(isinstance(e, Completed | Incomplete) for e in events) == 1


async def test_tool_call_arrives_whole(sim: Any, make: Any, provider: str) -> None:
    client = make(provider, sim.base_url)
    done = await complete(client, request("what is the weather?", tools=[WEATHER]))
    assert [c.name for c in done.tool_calls] == ["get_weather"]
    assert json.loads(done.tool_calls[0].arguments) == {"city": "Paris", "unit": "C"}
    assert done.tool_calls[0].call_id


async def test_tool_call_is_an_event(sim: Any, make: Any, provider: str) -> None:
    client = make(provider, sim.base_url)
    events = await collect(client, request("weather please", tools=[WEATHER]))
    calls = [e for e in events if isinstance(e, ToolCall)]
    assert len(calls) == 1 and calls[0].name == "get_weather"


async def test_usage_and_metrics(sim: Any, make: Any, provider: str) -> None:
    client = make(provider, sim.base_url)
    events = await collect(client, request("write something", max_output_tokens=7))
    usage = [e for e in events if isinstance(e, Usage)]
    assert len(usage) == 1
    assert usage[0].output_tokens == 7 and usage[0].input_tokens > 0
    m = client.last_metrics
    assert m is not None
    assert m.output_tokens == 7 and m.input_tokens == usage[0].input_tokens
    assert m.requested_model == m.served_model == "sim-bench"
    assert m.ttft_ms is not None and m.duration_ms >= m.ttft_ms
    assert m.retries == 0 and not m.fell_back_to_http
    assert m.transport == ("websocket" if provider == "openai-ws" else "http-sse")


async def test_served_model_is_reported(sim: Any, make: Any, provider: str) -> None:
    sim.inject(Fault(kind="served_model", served_model="other-model"))
    client = make(provider, sim.base_url)
    done = await complete(client, request("hello"))
    assert done.served_model == "other-model"
    assert client.last_metrics is not None
    assert client.last_metrics.served_model == "other-model"
    assert client.last_metrics.requested_model == "sim-bench"


async def test_connection_is_reused(sim: Any, make: Any, provider: str) -> None:
    client = make(provider, sim.base_url)
    for text in ("hello", "hello again", "and hello"):
        await complete(client, request(text))
    conns = {r["connection_id"] for r in sim.requests}
    assert len(sim.requests) == 3 and len(conns) == 1
