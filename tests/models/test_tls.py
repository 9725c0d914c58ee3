"""Our clients over TLS (https/wss) against the simulator with a throwaway private CA:
``ca_file`` makes them trust it; without it the connection fails with a typed error that
points at the certificate; a bad ``ca_file`` is a clear config error at build time."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import ConfigError, ModelTLSError, StreamInterrupted
from orchestrator.models import TextDelta, complete
from orchestrator.models.ws import ResponsesWSClient
from orchestrator.sim import Fault, SimServer

from .conftest import KEY, endpoint, request, sim_config

TLS_PROVIDERS = ["openai-ws", "openai-responses", "chat-completions", "anthropic"]
Certs = tuple[Path, Path, Path]


@pytest.fixture(scope="module")
def tls_server(tls_certs: Certs) -> Iterator[Any]:
    _, cert, key = tls_certs
    with SimServer(sim_config(api_key=KEY)).run_in_thread(tls_cert=cert, tls_key=key) as sim:
        yield sim


@pytest.fixture
def tls_sim(tls_server: Any) -> Any:
    tls_server.reset()
    return tls_server


@pytest.mark.parametrize("provider", TLS_PROVIDERS)
async def test_streams_over_tls_with_ca_file(
    tls_sim: Any, make: Any, tls_certs: Certs, provider: str
) -> None:
    assert tls_sim.base_url.startswith("https://")
    client = make(provider, tls_sim.base_url, ca_file=str(tls_certs[0]))
    for _ in range(2):  # the second request reuses the TLS connection
        done = await complete(client, request("hello"))
        assert done.text == "Hello there, friend."
    logged = tls_sim.requests
    assert len(logged) == 2 and logged[0]["connection_id"] == logged[1]["connection_id"]
    if provider == "openai-ws":
        assert isinstance(client, ResponsesWSClient) and client.fallback_reason is None
        assert {r["transport"] for r in logged} == {"ws"}


@pytest.mark.parametrize("provider", ["openai-ws", "openai-responses"])
async def test_long_stream_and_drop_over_tls(
    tls_sim: Any, make: Any, tls_certs: Certs, provider: str
) -> None:
    client = make(provider, tls_sim.base_url, ca_file=str(tls_certs[0]))
    done = await complete(client, request("write", max_output_tokens=4000))
    assert done.usage.output_tokens == 4000
    tls_sim.inject(Fault(kind="drop_after_tokens", tokens=3))
    events: list[Any] = []
    with pytest.raises(StreamInterrupted):
        async for event in client.stream(request("write", max_output_tokens=20)):
            events.append(event)
    assert [type(e) for e in events] == [TextDelta] * 3


@pytest.mark.parametrize("provider", TLS_PROVIDERS)
async def test_untrusted_certificate_is_a_tls_error_naming_it(
    tls_sim: Any, make: Any, provider: str
) -> None:
    # Retries and the WebSocket's fallback to HTTP SSE are on: neither may hide the error.
    # A retry would first wait at least half of backoff_base_s (10 s).
    client = make(provider, tls_sim.base_url, max_retries=3, ws_fallback_after_failures=1,
                  backoff_base_s=10.0, backoff_max_s=10.0)
    started = time.monotonic()
    with pytest.raises(ModelTLSError) as info:
        await complete(client, request("hello"))
    assert time.monotonic() - started < 4.0
    message = str(info.value)
    assert "TLS certificate of " in message and "not trusted" in message
    assert "ca_file" in message and info.value.endpoint in message
    assert info.value.endpoint.startswith("wss://" if provider == "openai-ws" else "https://")
    assert "\n" not in message
    assert tls_sim.requests == []
    assert getattr(client, "fallback_reason", None) is None


@pytest.mark.parametrize("provider", ["openai-ws", "openai-responses"])
async def test_tls_client_against_plain_server_says_so(
    sim: Any, make: Any, tls_certs: Certs, provider: str
) -> None:
    url = sim.base_url.replace("http://", "https://")
    client = make(provider, url, ca_file=str(tls_certs[0]), max_retries=0)
    with pytest.raises(ModelTLSError, match=r"TLS handshake with .* failed .*speaks TLS"):
        await complete(client, request("hello"))


@pytest.mark.parametrize("provider", TLS_PROVIDERS)
def test_bad_ca_file_is_a_config_error_at_build(
    tmp_path: Path, tls_certs: Certs, provider: str
) -> None:
    from orchestrator.models import make_client

    missing = tmp_path / "no-such-ca.pem"
    with pytest.raises(ConfigError) as info:
        make_client(endpoint(provider, "https://127.0.0.1:1/v1", ca_file=str(missing)))
    assert str(missing) in str(info.value) and "cannot be read" in str(info.value)
    with pytest.raises(ConfigError, match=r"holds no PEM certificate"):
        make_client(endpoint(provider, "https://127.0.0.1:1/v1", ca_file=str(tls_certs[2])))


async def test_policy_entry_ca_file_reaches_the_client(
    tls_sim: Any, tls_certs: Certs, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.gateway import endpoint_config
    from orchestrator.models import make_client
    from orchestrator.policy import ModelEntry

    monkeypatch.setenv("TEST_MODEL_KEY", KEY)
    entry = ModelEntry(provider="chat-completions", base_url=tls_sim.base_url, model="sim-bench",
                       api_key_env="TEST_MODEL_KEY", ca_file=str(tls_certs[0]))
    client = make_client(endpoint_config(entry, None))
    try:
        assert (await complete(client, request("hello"))).text == "Hello there, friend."
    finally:
        await client.aclose()
