"""The Responses stream as plain steps: events, with pacing waits only where one is due."""

from __future__ import annotations

from typing import Any

from orchestrator.sim.config import ModelProfile, SimConfig
from orchestrator.sim.responses_render import response_steps
from orchestrator.sim.responses_run import build_run
from orchestrator.sim.sse import sse_json, sse_message
from orchestrator.sim.state import SimState


def _run(model: str, tokens: int) -> Any:
    state = SimState(SimConfig(models=[
        ModelProfile(name="unpaced"), ModelProfile(name="paced", ttft_ms=5, tokens_per_s=100),
    ]))
    body = {"model": model, "input": "hello", "max_output_tokens": tokens}
    return build_run(state, body, [], websocket=True)[0]


async def _drive(model: str, tokens: int) -> tuple[list[dict[str, Any]], int]:
    events: list[dict[str, Any]] = []
    waits = 0
    run = _run(model, tokens)
    for step in response_steps(run):
        if isinstance(step, dict):
            events.append(step)
        else:
            assert not isinstance(step, str)
            waits += 1
            await step
    return events, waits


async def test_an_unpaced_answer_is_produced_without_a_wait() -> None:
    events, waits = await _drive("unpaced", 3)
    assert waits == 0
    kinds = [e["type"] for e in events]
    assert kinds.count("response.output_text.delta") == 3
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    done = next(e for e in events if e["type"] == "response.output_text.done")
    assert done["text"] == deltas
    assert events[-1]["response"]["usage"]["output_tokens"] == 3


async def test_a_paced_answer_waits_for_the_first_token_and_between_tokens() -> None:
    events, waits = await _drive("paced", 3)
    assert waits == 3  # TTFT, then one gap of 10 ms before each later token
    assert [e["type"] for e in events].count("response.output_text.delta") == 3


def test_the_opening_snapshots_are_the_same_in_progress_response() -> None:
    steps = list(response_steps(_run("unpaced", 1)))
    created, in_progress = steps[0], steps[1]
    assert isinstance(created, dict) and isinstance(in_progress, dict)
    assert created["response"] == in_progress["response"]
    assert created["response"]["status"] == "in_progress"
    assert created["response"]["max_output_tokens"] == 1  # echoed from the request
    assert created["response"]["tools"] == []  # an API default


def test_sse_json_matches_the_formatted_message() -> None:
    data = '{"type":"response.completed","x":"é"}'
    assert sse_json(data.encode(), "response.completed") == sse_message(
        data, event="response.completed")
