"""The simulator over TLS: the official SDK and a raw WebSocket trusting a throwaway CA,
the subprocess and its control calls, and clear errors for bad certificate settings."""

from __future__ import annotations

import json
import ssl
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import OpenAI
from websockets.sync.client import connect

from orchestrator.cli import main
from orchestrator.errors import SimConfigError
from orchestrator.sim import Fault, ModelProfile, SimConfig, SimServer
from orchestrator.sim.server import ThreadedSim
from orchestrator.sim.tls import make_local_certs

from .conftest import FAST, unpaced_config

Certs = tuple[Path, Path, Path]


@pytest.fixture(scope="module")
def tls_sim(tls_certs: Certs) -> Iterator[ThreadedSim]:
    _, cert, key = tls_certs
    with SimServer(unpaced_config()).run_in_thread(tls_cert=cert, tls_key=key) as sim:
        yield sim


def test_sdk_over_https_and_a_long_stream(tls_certs: Certs, tls_sim: ThreadedSim) -> None:
    assert tls_sim.base_url.startswith("https://127.0.0.1:")
    context = ssl.create_default_context(cafile=str(tls_certs[0]))
    with OpenAI(base_url=tls_sim.base_url, api_key="x", max_retries=0,
                http_client=httpx.Client(verify=context)) as client:
        done = client.responses.create(model=FAST, input="say hello")
        assert done.output_text == "Hello from the simulator!"
    # Far more than one corked write (64 KiB): the TLS transport's flow control too.
    body = {"model": "sim-bench", "input": "x", "max_output_tokens": 5000, "stream": True}
    with httpx.stream("POST", tls_sim.base_url + "/responses", json=body, verify=context) as r:
        raw = r.read()
    assert len(raw) > 256 * 1024
    assert raw.count(b"event: response.output_text.delta\n") == 5000
    assert raw.endswith(b"\n\n") and b"event: response.completed\n" in raw


def test_wss_direct_frames_and_a_drop(tls_certs: Certs, tls_sim: ThreadedSim) -> None:
    assert tls_sim.ws_url.startswith("wss://")
    context = ssl.create_default_context(cafile=str(tls_certs[0]))
    with connect(tls_sim.ws_url + "/responses", ssl=context) as ws:
        ws.send(json.dumps({"type": "response.create", "model": FAST, "input": "say hello"}))
        frames = [json.loads(ws.recv(timeout=20))]
        while frames[-1]["type"] != "response.completed":
            frames.append(json.loads(ws.recv(timeout=20)))
    text = "".join(f["delta"] for f in frames if f["type"] == "response.output_text.delta")
    assert text == "Hello from the simulator!"
    tls_sim.inject(Fault(kind="drop_after_tokens", tokens=2))
    with connect(tls_sim.ws_url + "/responses", ssl=context) as ws:
        ws.send(json.dumps({"type": "response.create", "model": FAST, "input": "say hello"}))
        kinds = []
        with pytest.raises(Exception) as dropped:
            while True:
                kinds.append(json.loads(ws.recv(timeout=20))["type"])
    assert kinds.count("response.output_text.delta") == 2
    assert "response.completed" not in kinds
    assert type(dropped.value).__name__.startswith("ConnectionClosed")


def test_subprocess_over_tls_with_control_calls(tls_certs: Certs) -> None:
    ca, cert, key = tls_certs
    config = SimConfig(models=[ModelProfile(name="sim-bench")])
    with SimServer.subprocess(config, tls_cert=cert, tls_key=key) as sim:
        assert sim.base_url.startswith("https://") and sim.ws_url.startswith("wss://")
        sim.inject(Fault(kind="http_error", status=503))  # a control call, over TLS
        verify = ssl.create_default_context(cafile=str(ca))
        reply = httpx.post(sim.base_url + "/responses", verify=verify,
                           json={"model": "sim-bench", "input": "hi", "max_output_tokens": 2})
        assert reply.status_code == 503
        assert [r["model"] for r in sim.requests] == ["sim-bench"]


def test_bad_certificate_settings_are_clear_errors(
    tls_certs: Certs, capsys: pytest.CaptureFixture[str]
) -> None:
    ca, cert, _ = tls_certs
    with pytest.raises(SystemExit) as exited:
        main(["sim", "--port", "0", "--tls-cert", str(cert)])
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "tandem: error: TLS needs both a certificate and its key: "
        "pass --tls-cert and --tls-key together"]
    with pytest.raises(SimConfigError, match=r"do not load .*key belongs to the certificate"):
        SimServer(SimConfig()).run_in_thread(tls_cert=cert, tls_key=ca)


def test_local_certs_without_trustme_say_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "trustme", None)  # import trustme raises ImportError
    with pytest.raises(SimConfigError, match=r"trustme .*dev extra"):
        make_local_certs(tmp_path)
