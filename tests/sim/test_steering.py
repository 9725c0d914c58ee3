"""``response.steer`` on the WebSocket: accepted, the response ends as steered, a successor."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from openai import OpenAI

from orchestrator.sim import ModelProfile, SimConfig, SimServer
from orchestrator.sim.server import ThreadedSim
from orchestrator.sim.tokens import count_tokens

from .conftest import FAST

LONG_TEXT = " ".join(f"word{i}" for i in range(300))
STEER_TAPE = [
    {"match": {"contains": "write a lot"}, "text": LONG_TEXT},
    {"match": {"contains": "stop and summarise"}, "text": "Summary."},
]


@pytest.fixture
def steer_sim() -> Iterator[ThreadedSim]:
    slow = ModelProfile(name="slow", ttft_ms=0, tokens_per_s=200)
    config = SimConfig(models=[slow], tape=STEER_TAPE, steer_supported=True)
    with SimServer(config).run_in_thread() as sim:
        yield sim


def collect(conn: Any, until: str) -> list[Any]:
    events = []
    for event in conn:
        events.append(event)
        if event.type == until:
            return events
    raise AssertionError(f"closed before {until}")


def test_steer_ends_response_and_starts_successor(steer_sim: ThreadedSim) -> None:
    client = OpenAI(base_url=steer_sim.base_url, api_key="x", max_retries=0)
    with client.responses.connect() as conn:
        conn.response.create(model="slow", input="write a lot")
        first = collect(conn, "response.output_text.delta")
        response_id = first[0].response.id
        conn.response.steer(input="stop and summarise", previous_response_id=response_id)
        rest = collect(conn, "response.completed")
    client.close()
    types = [e.type for e in rest]
    accepted = rest[types.index("response.steer.accepted")]
    assert accepted.steer.previous_response_id == response_id and accepted.steer.id
    ended = rest[types.index("response.incomplete")]
    assert ended.response.id == response_id
    assert ended.response.incomplete_details.reason == "steered"
    partial = ended.response.output[0].content[0].text
    assert LONG_TEXT.startswith(partial) and len(partial) < len(LONG_TEXT)
    assert ended.response.usage.output_tokens == count_tokens(partial)
    successor_created = rest[types.index("response.incomplete") + 1]
    assert successor_created.type == "response.created"
    successor = rest[-1].response
    assert successor.id != response_id and successor.output_text == "Summary."
    expected_input = count_tokens("write a lot") + count_tokens(partial) + count_tokens(
        "stop and summarise")
    assert successor.usage.input_tokens == expected_input
    log = [r["previous_response_id"] for r in steer_sim.requests]
    assert log == [None, response_id]


def test_steer_unknown_response_fails(steer_sim: ThreadedSim) -> None:
    client = OpenAI(base_url=steer_sim.base_url, api_key="x", max_retries=0)
    with client.responses.connect() as conn:
        conn.response.steer(input="stop and summarise", previous_response_id="resp_nope")
        event = conn.recv()
    client.close()
    assert event.type == "response.steer.failed"
    assert event.error.code == "response_not_found"


def test_steer_unsupported_is_an_error_frame(client: OpenAI) -> None:
    with client.responses.connect() as conn:
        conn.response.create(model=FAST, input="say hello")
        created = conn.recv()
        conn.response.steer(input="stop", previous_response_id=created.response.id)
        events = []
        while not ({"error", "response.completed"} <= {e.type for e in events}):
            events.append(conn.recv())
    error = next(e for e in events if e.type == "error")
    assert error.status == 400 and error.error.code == "unsupported_event"
