"""Auth, unknown models, the model list, the request log, the subprocess and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import openai
import pytest
from openai import OpenAI
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from orchestrator.sim import Fault, ModelProfile, SimConfig, SimServer
from orchestrator.sim.server import ThreadedSim

from .conftest import FAST, unpaced_config


@pytest.fixture
def keyed_sim() -> ThreadedSim:
    with SimServer(unpaced_config(api_key="sk-right")).run_in_thread() as sim:
        yield sim


def test_wrong_or_missing_key_is_401(keyed_sim: ThreadedSim) -> None:
    bad = OpenAI(base_url=keyed_sim.base_url, api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        bad.responses.create(model=FAST, input="hi")
    assert caught.value.status_code == 401
    assert caught.value.body["code"] == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model=FAST, messages=[{"role": "user", "content": "hi"}])
    assert httpx.get(keyed_sim.base_url + "/models").status_code == 401
    good = OpenAI(base_url=keyed_sim.base_url, api_key="sk-right", max_retries=0)
    assert good.responses.create(model=FAST, input="hi").status == "completed"


def test_ws_handshake_with_wrong_key_is_refused_401(keyed_sim: ThreadedSim) -> None:
    url = keyed_sim.ws_url + "/responses"
    with pytest.raises(InvalidStatus) as refused:
        connect(url, additional_headers={"Authorization": "Bearer sk-wrong"})
    assert refused.value.response.status_code == 401
    assert json.loads(refused.value.response.body)["error"]["code"] == "invalid_api_key"
    with connect(url, additional_headers={"Authorization": "Bearer sk-right"}) as ws:
        ws.send(json.dumps({"type": "response.create", "model": FAST, "input": "hi"}))
        frames = [json.loads(ws.recv(timeout=20))]
        while frames[-1]["type"] != "response.completed":
            frames.append(json.loads(ws.recv(timeout=20)))
    assert frames[0]["type"] == "response.created"


def test_unknown_model_is_404(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model="gpt-nope", input="hi")
    assert caught.value.body["code"] == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="gpt-nope", messages=[{"role": "user", "content": "x"}])


def test_unknown_model_on_ws_is_error_frame_404(client: OpenAI) -> None:
    with client.responses.connect() as conn:
        conn.response.create(model="gpt-nope", input="hi")
        event = conn.recv()
        conn.response.create(model=FAST, input="hi")
        after = [conn.recv()]
        while after[-1].type != "response.completed":
            after.append(conn.recv())
    assert after[0].type == "response.created"  # the socket stays usable
    assert event.type == "error" and event.status == 404
    assert event.error.code == "model_not_found"


def test_models_list(client: OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert ids == [FAST, "gpt-5.3-codex", "sim-bench"]


def test_default_profiles_are_the_two_tiers_and_bench() -> None:
    names = {m.name: m for m in SimConfig().models}
    assert names["gpt-5.3-codex-spark"].tokens_per_s == 1000
    assert names["gpt-5.3-codex"].tokens_per_s == 70
    assert names["sim-bench"].tokens_per_s == 0


def test_request_log_and_reset(client: OpenAI, sim: ThreadedSim) -> None:
    client.responses.create(model=FAST, input=[
        {"role": "user", "content": "one"}, {"role": "user", "content": "say hello"}])
    client.chat.completions.create(model=FAST, messages=[{"role": "user", "content": "x"}])
    log = sim.requests
    assert [(r["endpoint"], r["transport"], r["input_items"]) for r in log] == [
        ("responses", "http", 2), ("chat", "http", 1)]
    assert log[0]["connection_id"] == log[1]["connection_id"]  # pooled connection reused
    root = sim.base_url.removesuffix("/v1")
    assert httpx.get(root + "/_sim/requests").json()["requests"] == log
    httpx.post(root + "/_sim/reset")
    assert sim.requests == []


def test_bad_json_body_is_400(sim: ThreadedSim) -> None:
    reply = httpx.post(sim.base_url + "/responses", content=b"{nope",
                       headers={"content-type": "application/json"})
    assert reply.status_code == 400
    assert reply.json()["error"]["type"] == "invalid_request_error"


def test_subprocess_server_with_faults_over_http() -> None:
    config = SimConfig(models=[ModelProfile(name="sim-bench")])
    with SimServer.subprocess(config) as sim:
        client = OpenAI(base_url=sim.base_url, api_key="x", max_retries=0)
        sim.inject(Fault(kind="http_error", status=503))
        with pytest.raises(openai.InternalServerError):
            client.responses.create(model="sim-bench", input="hi")
        done = client.responses.create(model="sim-bench", input="hi", max_output_tokens=5)
        assert done.usage.output_tokens == 5
        assert [r["model"] for r in sim.requests] == ["sim-bench", "sim-bench"]
        client.close()


def test_cli_help_explains_how_to_connect() -> None:
    out = subprocess.run([sys.executable, "-m", "orchestrator.sim", "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "base_url" in out and "--profile" in out and "/_sim/faults" in out


def test_cli_bad_profile_is_one_line_error() -> None:
    done = subprocess.run([sys.executable, "-m", "orchestrator.sim", "--profile", "oops"],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "tandem: error: bad --profile 'oops': expected name:ttft_ms:tokens_per_s[:jitter]"]
