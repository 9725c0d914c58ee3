"""One test per fault kind, showing what arrives on the wire."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK, InvalidStatus
from websockets.sync.client import connect

from orchestrator.sim import Fault
from orchestrator.sim.server import ThreadedSim

from .conftest import DEEP, FAST


def ws_create(ws: Any, **fields: Any) -> None:
    ws.send(json.dumps({"type": "response.create", **fields}))


def ws_frames_until_terminal(ws: Any) -> list[str]:
    frames = []
    while True:
        frame = ws.recv(timeout=20)
        frames.append(frame)
        try:
            kind = json.loads(frame).get("type")
        except json.JSONDecodeError:
            continue
        if kind in ("response.completed", "response.incomplete", "error"):
            return frames


def sse_stream_lines(sim: ThreadedSim, body: dict[str, Any]) -> tuple[list[str], Exception | None]:
    lines: list[str] = []
    try:
        with httpx.stream("POST", sim.base_url + "/responses", json=body, timeout=20) as r:
            for line in r.iter_lines():
                lines.append(line)
    except httpx.HTTPError as exc:
        return lines, exc
    return lines, None


def test_drop_after_tokens_http(sim: ThreadedSim) -> None:
    sim.inject(Fault(kind="drop_after_tokens", tokens=3))
    lines, error = sse_stream_lines(sim, {"model": FAST, "input": "say hello", "stream": True})
    assert isinstance(error, httpx.RemoteProtocolError)  # body cut off mid-chunk stream
    events = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    assert events.count("response.output_text.delta") == 3
    assert "response.completed" not in events


def test_drop_after_tokens_ws_closes_without_close_frame(sim: ThreadedSim) -> None:
    sim.inject(Fault(kind="drop_after_tokens", tokens=2))
    with connect(sim.ws_url + "/responses") as ws:
        ws_create(ws, model=FAST, input="say hello")
        frames = []
        with pytest.raises(ConnectionClosedError) as closed:
            while True:
                frames.append(json.loads(ws.recv(timeout=20)))
    assert closed.value.rcvd is None  # TCP closed, no WebSocket close frame
    types = [f["type"] for f in frames]
    assert types.count("response.output_text.delta") == 2
    assert not {"response.completed", "error"} & set(types)


def test_drop_after_more_tokens_than_the_answer_still_drops(client: OpenAI,
                                                            sim: ThreadedSim) -> None:
    sim.inject(Fault(kind="drop_after_tokens", tokens=1000))
    with pytest.raises(openai.APIConnectionError):
        client.responses.create(model=FAST, input="say hello")


def test_http_error_429_with_retry_after(client: OpenAI, sim: ThreadedSim) -> None:
    sim.inject(Fault(kind="http_error", status=429, retry_after_s=2))
    with pytest.raises(openai.RateLimitError) as caught:
        client.responses.create(model=FAST, input="say hello", stream=True)
    assert caught.value.response.headers["retry-after"] == "2"
    assert caught.value.body["code"] == "rate_limit_exceeded"
    # count=1: the next request is served normally
    assert client.responses.create(model=FAST, input="say hello").status == "completed"


def test_http_error_on_chat_is_500(client: OpenAI, sim: ThreadedSim) -> None:
    sim.inject(Fault(kind="http_error", status=500))
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model=FAST, messages=[{"role": "user", "content": "x"}])


def test_http_error_ws_is_an_error_frame_and_socket_survives(sim: ThreadedSim) -> None:
    sim.inject(Fault(kind="http_error", status=503, retry_after_s=1.5))
    with connect(sim.ws_url + "/responses") as ws:
        ws_create(ws, model=FAST, input="say hello")
        (frame,) = ws_frames_until_terminal(ws)
        ws_create(ws, model=FAST, input="say hello")
        again = ws_frames_until_terminal(ws)
    error = json.loads(frame)
    assert error["type"] == "error" and error["status"] == 503
    assert error["error"]["type"] == "server_error"
    assert error["error"]["headers"] == {"retry-after": "1.5"}
    assert json.loads(again[-1])["type"] == "response.completed"


def test_malformed_frame_http(sim: ThreadedSim) -> None:
    sim.inject(Fault(kind="malformed_frame"))
    lines, error = sse_stream_lines(sim, {"model": FAST, "input": "say hello", "stream": True})
    assert error is None
    data = [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]
    bad = [d for d in data if not d.startswith("{")]
    assert bad == ["this is not json {"]
    assert json.loads(data[-1])["type"] == "response.completed"


def test_malformed_frame_ws(sim: ThreadedSim) -> None:
    sim.inject(Fault(kind="malformed_frame"))
    with connect(sim.ws_url + "/responses") as ws:
        ws_create(ws, model=FAST, input="say hello")
        frames = ws_frames_until_terminal(ws)
    unparsable = []
    for frame in frames:
        try:
            json.loads(frame)
        except json.JSONDecodeError:
            unparsable.append(frame)
    assert unparsable == ["this is not json {"]


def test_slow_first_token_delays_only_the_first_token(client: OpenAI, sim: ThreadedSim) -> None:
    sim.inject(Fault(kind="slow_first_token", delay_ms=300))
    started = time.monotonic()
    first_delta_after_s = None
    for event in client.responses.create(model=FAST, input="say hello", stream=True):
        if event.type == "response.output_text.delta" and first_delta_after_s is None:
            first_delta_after_s = time.monotonic() - started
    # a lower bound only: the server sleeps at least the injected delay before token 1
    assert first_delta_after_s is not None and first_delta_after_s >= 0.3
    assert sim.sim.state.faults.pending() == []


def test_connection_limit_ws(sim: ThreadedSim) -> None:
    sim.inject(Fault(kind="connection_limit"))
    with connect(sim.ws_url + "/responses") as ws:
        ws_create(ws, model=FAST, input="say hello")
        frame = json.loads(ws.recv(timeout=20))
        with pytest.raises(ConnectionClosedOK) as closed:
            ws.recv(timeout=20)
    assert frame["type"] == "error"
    assert frame["error"]["code"] == "websocket_connection_limit_reached"
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000


def test_connection_limit_is_not_taken_by_http(client: OpenAI, sim: ThreadedSim) -> None:
    sim.inject(Fault(kind="connection_limit"))
    assert client.responses.create(model=FAST, input="say hello").status == "completed"
    assert [f.kind for f in sim.sim.state.faults.pending()] == ["connection_limit"]


def test_served_model(client: OpenAI, sim: ThreadedSim) -> None:
    sim.inject(Fault(kind="served_model", served_model="gpt-4o-mini"))
    events = list(client.responses.create(model=FAST, input="say hello", stream=True))
    assert {e.response.model for e in events if hasattr(e, "response")} == {"gpt-4o-mini"}
    chat = client.chat.completions.create(model=FAST, messages=[{"role": "user", "content": "x"}])
    assert chat.model == FAST  # count=1: used up


def test_ws_handshake_status(sim: ThreadedSim) -> None:
    sim.inject(Fault(kind="ws_handshake_status", status=426))
    with pytest.raises(InvalidStatus) as refused:
        connect(sim.ws_url + "/responses")
    assert refused.value.response.status_code == 426
    with connect(sim.ws_url + "/responses") as ws:  # count=1: next upgrade works
        ws_create(ws, model=FAST, input="say hello")
        assert json.loads(ws_frames_until_terminal(ws)[-1])["type"] == "response.completed"


def test_faults_over_http_with_model_filter_and_count(client: OpenAI, sim: ThreadedSim) -> None:
    root = sim.base_url.removesuffix("/v1")
    reply = httpx.post(root + "/_sim/faults",
                       json={"kind": "http_error", "status": 503, "model": DEEP, "count": 2})
    assert reply.status_code == 200
    assert client.responses.create(model=FAST, input="say hello").status == "completed"
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            client.responses.create(model=DEEP, input="say hello")
    assert client.responses.create(model=DEEP, input="say hello").status == "completed"


def test_bad_fault_over_http_is_400(sim: ThreadedSim) -> None:
    root = sim.base_url.removesuffix("/v1")
    reply = httpx.post(root + "/_sim/faults", json={"kind": "http_error"})
    assert reply.status_code == 400
    assert "status" in reply.json()["error"]["message"]
