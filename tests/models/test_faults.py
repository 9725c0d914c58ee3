"""Injected faults: each ends in a typed error or a visible recovery, for every client."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from orchestrator.errors import (
    ModelProtocolError,
    ModelTimeout,
    ServerError,
    StreamInterrupted,
)
from orchestrator.models import Completed, Incomplete, TextDelta, complete
from orchestrator.sim import Fault

from .conftest import PROVIDERS, request

pytestmark = pytest.mark.parametrize("provider", PROVIDERS)


async def test_429_waits_retry_after_then_retries(sim: Any, make: Any, provider: str) -> None:
    sim.inject(Fault(kind="http_error", status=429, retry_after_s=0.05))
    client = make(provider, sim.base_url)
    done = await complete(client, request("hello"))
    assert done.text == "Hello there, friend."
    assert client.last_metrics.retries == 1
    assert client.last_metrics.retry_wait_ms == pytest.approx(50)
    assert len(sim.requests) == 2


async def test_5xx_is_retried_then_raised(sim: Any, make: Any, provider: str) -> None:
    sim.inject(Fault(kind="http_error", status=503, count=10))
    client = make(provider, sim.base_url, max_retries=2)
    with pytest.raises(ServerError) as info:
        await complete(client, request("hello"))
    assert info.value.status == 503 and "/v1/" in str(info.value)
    assert len(sim.requests) == 3


async def test_drop_mid_stream_is_not_replayed(sim: Any, make: Any, provider: str) -> None:
    sim.inject(Fault(kind="drop_after_tokens", tokens=3))
    client = make(provider, sim.base_url)
    events: list[Any] = []
    with pytest.raises(StreamInterrupted):
        async for event in client.stream(request("write", max_output_tokens=20)):
            events.append(event)
    assert [type(e) for e in events] == [TextDelta] * 3
    assert len(sim.requests) == 1


async def test_drop_before_any_output_is_retried(sim: Any, make: Any, provider: str) -> None:
    sim.inject(Fault(kind="drop_after_tokens", tokens=0))
    client = make(provider, sim.base_url)
    done = await complete(client, request("hello"))
    assert done.text == "Hello there, friend."
    assert client.last_metrics.retries == 1


async def test_malformed_frame_is_a_protocol_error(sim: Any, make: Any, provider: str) -> None:
    sim.inject(Fault(kind="malformed_frame"))
    client = make(provider, sim.base_url)
    with pytest.raises(ModelProtocolError) as info:
        await complete(client, request("hello"))
    assert "/v1/" in str(info.value)
    assert info.value.__cause__ is not None


async def test_slow_first_token_times_out(sim: Any, make: Any, provider: str) -> None:
    sim.inject(Fault(kind="slow_first_token", delay_ms=3000))
    client = make(provider, sim.base_url, first_token_timeout_s=0.2, max_retries=0)
    with pytest.raises(ModelTimeout) as info:
        await complete(client, request("hello"))
    assert "first-token" in str(info.value)


async def test_interrupt_from_another_task(sim: Any, make: Any, provider: str) -> None:
    client = make(provider, sim.base_url)
    events: list[Any] = []
    two_deltas = asyncio.Event()

    async def consume() -> None:
        async for event in client.stream(request("x", model="sim-slow", max_output_tokens=500)):
            events.append(event)
            if len(events) == 2:
                two_deltas.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(two_deltas.wait(), timeout=10)
    await client.interrupt()
    await asyncio.wait_for(task, timeout=10)
    assert events[-1] == Incomplete(reason="interrupted")
    assert not any(isinstance(e, Completed) for e in events)
    done = await complete(client, request("hello"))
    assert done.text == "Hello there, friend."
