"""Chat Completions servers that differ from OpenAI's own: usage with ``choices: null``."""

from __future__ import annotations

from typing import Any

from orchestrator.models import EndpointConfig, Usage, make_client
from orchestrator.sim import SimServer

from .conftest import request, sim_config


async def test_usage_chunk_with_null_choices() -> None:
    with SimServer(sim_config(usage_choices_null=True)).run_in_thread() as sim:
        client = make_client(EndpointConfig(provider="chat-completions", base_url=sim.base_url))
        try:
            events: list[Any] = [e async for e in client.stream(request("x", max_output_tokens=9))]
        finally:
            await client.aclose()
    usage = [e for e in events if isinstance(e, Usage)]
    assert usage and usage[0].output_tokens == 9
    assert events[-1].kind == "completed" and events[-1].usage.output_tokens == 9
