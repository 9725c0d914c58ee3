"""Anthropic Messages, read over raw httpx SSE."""

from __future__ import annotations

import json
from typing import Any

import httpx

from orchestrator.sim import SimServer
from orchestrator.sim.server import ThreadedSim
from orchestrator.sim.tokens import count_tokens

from .conftest import DEEP, unpaced_config


def sse_events(text: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((lines["event"], json.loads(lines["data"])))
    return out


def post(sim: ThreadedSim, body: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(sim.base_url + "/messages", json=body, headers=headers, timeout=20)


def test_messages_stream_text(sim: ThreadedSim) -> None:
    body = {"model": DEEP, "max_tokens": 100, "stream": True, "system": "be terse",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "say hello"}]}]}
    response = post(sim, body, **{"x-api-key": "k", "anthropic-version": "2023-06-01"})
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    names = [name for name, _ in events]
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert all(name == data["type"] for name, data in events)
    text = "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta")
    assert text == "Hello from the simulator!"
    start = events[0][1]["message"]
    assert start["model"] == DEEP and start["content"] == []
    assert start["usage"]["input_tokens"] == count_tokens("be terse") + count_tokens("say hello")
    delta = events[-2][1]
    assert delta["delta"]["stop_reason"] == "end_turn"
    assert delta["usage"]["output_tokens"] == count_tokens(text)


def test_messages_stream_tool_use(sim: ThreadedSim) -> None:
    body = {"model": DEEP, "max_tokens": 100, "stream": True,
            "messages": [{"role": "user", "content": "edit app"}]}
    events = sse_events(post(sim, body).text)
    start = next(d for n, d in events if n == "content_block_start")
    assert start["content_block"]["type"] == "tool_use"
    assert start["content_block"]["name"] == "apply_edit"
    partial = "".join(d["delta"]["partial_json"] for n, d in events if n == "content_block_delta")
    assert json.loads(partial) == {"path": "app.py", "line": 3}
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_messages_non_stream_synthetic(sim: ThreadedSim) -> None:
    body = {"model": DEEP, "max_tokens": 12, "messages": [{"role": "user", "content": "?"}]}
    message = post(sim, body).json()
    assert message["type"] == "message" and message["stop_reason"] == "end_turn"
    assert message["usage"]["output_tokens"] == 12
    assert count_tokens(message["content"][0]["text"]) == 12


def test_messages_auth_and_unknown_model() -> None:
    with SimServer(unpaced_config(api_key="sk-right")).run_in_thread() as sim:
        body = {"model": DEEP, "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
        denied = post(sim, body, **{"x-api-key": "sk-wrong"})
        assert denied.status_code == 401
        assert denied.json()["error"]["type"] == "authentication_error"
        assert post(sim, body, **{"x-api-key": "sk-right"}).status_code == 200
        assert post(sim, body, authorization="Bearer sk-right").status_code == 200
        missing = post(sim, {**body, "model": "claude-nope"}, **{"x-api-key": "sk-right"})
    assert missing.status_code == 404
    assert missing.json() == {"type": "error", "error": {
        "type": "not_found_error", "message": missing.json()["error"]["message"]}}
    assert "claude-nope" in missing.json()["error"]["message"]


def test_messages_truncated_answer_stops_with_max_tokens(sim: ThreadedSim) -> None:
    body = {"model": DEEP, "max_tokens": 1, "messages": [{"role": "user", "content": "say hello"}]}
    message = post(sim, body).json()
    assert message["stop_reason"] == "max_tokens"
    assert message["content"][0]["text"] == "Hello"
