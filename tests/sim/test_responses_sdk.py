"""The official openai SDK as a client of the simulator: Responses over HTTP and WebSocket."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai import AsyncOpenAI, OpenAI

from orchestrator.sim.server import ThreadedSim
from orchestrator.sim.tokens import count_tokens

from .conftest import FAST

TERMINAL = ("response.completed", "response.incomplete", "response.failed", "error")


def ws_until_terminal(conn: Any) -> list[Any]:
    events = []
    for event in conn:
        events.append(event)
        if event.type in TERMINAL:
            return events
    raise AssertionError("connection closed before a terminal event")


def test_http_stream_text(client: OpenAI) -> None:
    stream = client.responses.create(model=FAST, input="please say hello", stream=True)
    events = list(stream)
    types = [e.type for e in events]
    assert types[:4] == ["response.created", "response.in_progress",
                         "response.output_item.added", "response.content_part.added"]
    assert types[-4:] == ["response.output_text.done", "response.content_part.done",
                          "response.output_item.done", "response.completed"]
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == "Hello from the simulator!"
    assert len(deltas) == count_tokens("Hello from the simulator!")
    seqs = [e.sequence_number for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    final = events[-1].response
    assert final.model == FAST
    assert final.output_text == "Hello from the simulator!"
    assert final.usage.output_tokens == len(deltas)
    assert final.usage.input_tokens == count_tokens("please say hello")


def test_stream_helper_final_response(client: OpenAI) -> None:
    with client.responses.stream(model=FAST, input="say hello") as stream:
        text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert text == final.output_text == "Hello from the simulator!"
    assert final.status == "completed"


def test_http_function_call_stream(client: OpenAI) -> None:
    events = list(client.responses.create(model=FAST, input="edit app please", stream=True))
    args = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    assert json.loads(args) == {"path": "app.py", "line": 3}
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert done.name == "apply_edit"
    call = events[-1].response.output[0]
    assert call.type == "function_call" and call.call_id and call.arguments == args


def test_http_non_stream_and_http_chain(client: OpenAI) -> None:
    first = client.responses.create(model=FAST, input="say hello")
    assert first.output_text == "Hello from the simulator!"
    second = client.responses.create(
        model=FAST, input="second turn", previous_response_id=first.id
    )
    assert second.output_text == "Second answer."
    assert second.usage.input_tokens == count_tokens("say hello") + count_tokens(
        "Hello from the simulator!") + count_tokens("second turn")


def test_synthetic_token_count_over_http(client: OpenAI) -> None:
    response = client.responses.create(model="sim-bench", input="no tape", max_output_tokens=37)
    assert response.usage.output_tokens == 37
    assert count_tokens(response.output_text) == 37


def test_ws_two_turn_chain(client: OpenAI, sim: ThreadedSim) -> None:
    with client.responses.connect() as conn:
        conn.response.create(model=FAST, input="say hello")
        first = ws_until_terminal(conn)
        assert first[-1].type == "response.completed"
        assert first[-1].response.output_text == "Hello from the simulator!"
        first_id = first[-1].response.id
        conn.response.create(model=FAST, input="second turn", previous_response_id=first_id)
        second = ws_until_terminal(conn)
    final = second[-1].response
    assert final.output_text == "Second answer."
    cached = count_tokens("say hello") + count_tokens("Hello from the simulator!")
    assert final.usage.input_tokens_details.cached_tokens == cached
    assert final.usage.input_tokens == cached + count_tokens("second turn")
    log = [r for r in sim.requests if r["transport"] == "ws"]
    assert [r["previous_response_id"] for r in log] == [None, first_id]
    assert log[0]["connection_id"] == log[1]["connection_id"]
    seqs = [e.sequence_number for e in first + second]
    assert seqs == sorted(seqs)


def test_ws_previous_response_not_found(client: OpenAI) -> None:
    with client.responses.connect() as conn:
        conn.response.create(model=FAST, input="hi", previous_response_id="resp_unknown")
        (event,) = ws_until_terminal(conn)
    assert event.type == "error"
    assert event.status == 400
    assert event.error.code == "previous_response_not_found"
    assert event.error.param == "previous_response_id"
    assert event.error.type == "invalid_request_error"


def test_ws_only_last_response_can_be_continued(client: OpenAI) -> None:
    with client.responses.connect() as conn:
        conn.response.create(model=FAST, input="say hello")
        old_id = ws_until_terminal(conn)[-1].response.id
        conn.response.create(model=FAST, input="say hello")
        ws_until_terminal(conn)
        conn.response.create(model=FAST, input="x", previous_response_id=old_id)
        assert ws_until_terminal(conn)[-1].error.code == "previous_response_not_found"


def test_ws_warmup_then_chain(client: OpenAI) -> None:
    with client.responses.connect() as conn:
        conn.response.create(model=FAST, instructions="be brief", input="say hello",
                             generate=False)
        warm = ws_until_terminal(conn)
        assert [e.type for e in warm] == ["response.created", "response.completed"]
        assert warm[-1].response.output == []
        conn.response.create(model=FAST, input="second turn",
                             previous_response_id=warm[-1].response.id)
        final = ws_until_terminal(conn)[-1].response
    assert final.output_text == "Second answer."
    assert final.usage.input_tokens_details.cached_tokens == count_tokens("say hello")


def test_ws_requests_are_sequential(client: OpenAI) -> None:
    with client.responses.connect() as conn:
        conn.response.create(model=FAST, input="say hello")
        conn.response.create(model=FAST, input="second turn", stream=True)
        first = ws_until_terminal(conn)
        second = ws_until_terminal(conn)
    assert first[-1].response.output_text == "Hello from the simulator!"
    assert second[-1].response.output_text == "Second answer."
    assert first[-1].sequence_number < second[0].sequence_number


@pytest.mark.asyncio
async def test_ws_async_client(sim: ThreadedSim) -> None:
    client = AsyncOpenAI(base_url=sim.base_url, api_key="sk-test", max_retries=0)
    async with client.responses.connect() as conn:
        await conn.response.create(model=FAST, input="edit app now")
        async for event in conn:
            if event.type == "response.completed":
                break
    call = event.response.output[0]
    assert call.type == "function_call" and call.name == "apply_edit"
    await client.close()


def test_tape_answer_longer_than_limit_is_incomplete(client: OpenAI) -> None:
    response = client.responses.create(model=FAST, input="say hello", max_output_tokens=2)
    assert response.status == "incomplete"
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output_text == "Hello from"
    assert response.usage.output_tokens == 2


def test_ws_stream_id_is_echoed(client: OpenAI) -> None:
    with client.responses.connect() as conn:
        conn.response.create(model=FAST, input="say hello", stream_id="lane-1")
        events = ws_until_terminal(conn)
    assert {e.stream_id for e in events} == {"lane-1"}


def test_ws_bad_frames_get_error_frames(sim: ThreadedSim) -> None:
    from websockets.sync.client import connect

    with connect(sim.ws_url + "/responses") as ws:
        ws.send("{not json")
        not_json = json.loads(ws.recv(timeout=20))
        ws.send(json.dumps({"type": "response.cancel"}))
        unknown = json.loads(ws.recv(timeout=20))
    assert not_json["type"] == "error" and not_json["status"] == 400
    assert unknown["error"]["code"] == "unsupported_event"
