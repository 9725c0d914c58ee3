"""Fixtures for the model clients: a real simulated provider on loopback, and clients.

One simulator per module (it is reset before every test); clients are built per test
with short backoffs so retry tests stay quick.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from orchestrator.models import EndpointConfig, Message, ModelClient, ModelRequest, make_client
from orchestrator.sim import ModelProfile, SimConfig, SimServer, TapeEntry

PROVIDERS = ["openai-ws", "openai-responses", "chat-completions", "anthropic"]
KEY = "sk-test-key"

TAPE = [
    TapeEntry.model_validate(
        {"match": {"contains": "weather"},
         "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris", "unit": "C"}}]}
    ),
    TapeEntry.model_validate({"match": {"contains": "hello"}, "text": "Hello there, friend."}),
]


def sim_config(**overrides: Any) -> SimConfig:
    models = [
        ModelProfile(name="sim-bench", ttft_ms=0, tokens_per_s=0),
        ModelProfile(name="sim-slow", ttft_ms=0, tokens_per_s=100),
    ]
    return SimConfig(models=models, tape=list(TAPE), **overrides)


@pytest.fixture(scope="module")
def sim_server() -> Iterator[Any]:
    with SimServer(sim_config(api_key=KEY)).run_in_thread() as sim:
        yield sim


@pytest.fixture
def sim(sim_server: Any) -> Any:
    sim_server.reset()
    return sim_server


def request(text: str = "hello", *, model: str = "sim-bench", **kw: Any) -> ModelRequest:
    return ModelRequest(model=model, messages=[Message(role="user", content=text)], **kw)


def endpoint(provider: str, base_url: str, **kw: Any) -> EndpointConfig:
    defaults: dict[str, Any] = {
        "api_key": KEY, "api_key_env": "TEST_MODEL_KEY", "backoff_base_s": 0.01,
        "backoff_max_s": 0.05, "connect_timeout_s": 5, "first_token_timeout_s": 10,
        "idle_timeout_s": 10,
    }
    defaults.update(kw)
    return EndpointConfig(provider=provider, base_url=base_url, **defaults)  # type: ignore[arg-type]


@pytest.fixture
async def make() -> AsyncIterator[Callable[..., ModelClient]]:
    """``make(provider, base_url, **endpoint_fields)`` → a client closed after the test."""
    made: list[ModelClient] = []

    def _make(provider: str, base_url: str, **kw: Any) -> ModelClient:
        client = make_client(endpoint(provider, base_url, **kw))
        made.append(client)
        return client

    yield _make
    for client in made:
        await client.aclose()
