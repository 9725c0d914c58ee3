"""The official openai SDK as a Chat Completions client of the simulator."""

from __future__ import annotations

import json

import httpx
from openai import OpenAI

from orchestrator.sim import SimServer
from orchestrator.sim.tokens import count_tokens

from .conftest import FAST, unpaced_config


def test_chat_stream_text_with_usage(client: OpenAI) -> None:
    chunks = list(client.chat.completions.create(
        model=FAST, messages=[{"role": "system", "content": "be nice"},
                              {"role": "user", "content": "say hello"}],
        stream=True, stream_options={"include_usage": True},
    ))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from the simulator!"
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {None}
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == []
    assert usage_chunk.usage.completion_tokens == count_tokens(text)
    assert usage_chunk.usage.prompt_tokens == count_tokens("be nice") + count_tokens("say hello")
    assert {c.id for c in chunks} == {chunks[0].id}
    assert {c.model for c in chunks} == {FAST}


def test_chat_stream_tool_call_deltas(client: OpenAI) -> None:
    chunks = list(client.chat.completions.create(
        model=FAST, messages=[{"role": "user", "content": "edit app"}], stream=True,
    ))
    fragments = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    first, rest = fragments[0], fragments[1:]
    assert first.index == 0 and first.id and first.type == "function"
    assert first.function.name == "apply_edit"
    assert rest and all(f.id is None and f.function.name is None and f.index == 0 for f in rest)
    args = "".join(f.function.arguments or "" for f in fragments)
    assert json.loads(args) == {"path": "app.py", "line": 3}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_chat_non_stream(client: OpenAI) -> None:
    done = client.chat.completions.create(
        model=FAST, messages=[{"role": "user", "content": "edit app"}]
    )
    call = done.choices[0].message.tool_calls[0]
    assert call.function.name == "apply_edit"
    assert json.loads(call.function.arguments) == {"path": "app.py", "line": 3}
    assert done.choices[0].finish_reason == "tool_calls"
    plain = client.chat.completions.create(
        model="sim-bench", messages=[{"role": "user", "content": "anything"}], max_tokens=21
    )
    assert plain.usage.completion_tokens == 21
    assert count_tokens(plain.choices[0].message.content) == 21


def test_chat_synthetic_max_completion_tokens(client: OpenAI) -> None:
    chunks = list(client.chat.completions.create(
        model="sim-bench", messages=[{"role": "user", "content": "x"}],
        max_completion_tokens=9, stream=True,
    ))
    pieces = [c.choices[0].delta.content for c in chunks[1:-1]]
    assert len(pieces) == 9


def test_usage_choices_null_option() -> None:
    with SimServer(unpaced_config(usage_choices_null=True)).run_in_thread() as sim:
        body = {"model": FAST, "stream": True, "stream_options": {"include_usage": True},
                "messages": [{"role": "user", "content": "say hello"}]}
        lines = httpx.post(sim.base_url + "/chat/completions", json=body).text.splitlines()
    data = [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    usage = json.loads(data[-2])
    assert usage["choices"] is None
    assert usage["usage"]["completion_tokens"] == count_tokens("Hello from the simulator!")
    assert all(json.loads(d)["usage"] is None for d in data[:-2])


def test_chat_truncated_answer_finishes_with_length(client: OpenAI) -> None:
    done = client.chat.completions.create(
        model=FAST, messages=[{"role": "user", "content": "say hello"}], max_tokens=3
    )
    assert done.choices[0].finish_reason == "length"
    assert done.choices[0].message.content == "Hello from the"
