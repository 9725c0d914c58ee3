"""Steering when something fails: the model a steer was sent to fails and the tier falls
back, a steer arrives while the client waits to retry, and `tandem steer` reaching a job
that does not answer (stopped, busy) or with a bad timeout."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from agents.base import Turn
from orchestrator import control
from orchestrator.events import EventLog, read_events
from orchestrator.gateway import ModelGateway
from orchestrator.models import TextDelta
from orchestrator.policy import load_policy
from orchestrator.sim import Fault
from orchestrator.sim.server import ThreadedSim
from tests.fixtures_jobs import DEEP, FAST, write_policy
from tests.live.conftest import REDIRECTED, STEER_MESSAGE, Harness


def _steer_when(gateway: ModelGateway, job_id: str, kind: str,
                then: Any = None) -> list[asyncio.Task[dict[str, str]]]:
    """Send a steer through the control socket at the first event of type ``kind``."""
    loop = asyncio.get_running_loop()
    sent: list[asyncio.Task[dict[str, str]]] = []

    def on_event(event: dict[str, Any]) -> None:
        if event["type"] == kind and not sent:
            if then is not None:
                then()
            sent.append(loop.create_task(
                asyncio.to_thread(control.send_steer, job_id, STEER_MESSAGE)))

    gateway.events.subscribe(on_event)
    gateway.listeners.append(on_event)
    return sent


async def test_steers_of_a_failed_model_go_to_the_tiers_next_model(
    tmp_path: Path, steer_sim: ThreadedSim
) -> None:
    """The steered model's re-issued request fails; the tier falls back to its next model,
    which gets the steer too. It went without it: the steer, acknowledged as delivered,
    was lost with the failed model, and the fallback wrote the unsteered answer."""
    path = write_policy(tmp_path / "p.yaml", steer_sim.base_url)
    policy = load_policy(str(path))
    deep = policy.tiers["deep"]
    backup = deep.models[0].model_copy(update={"model": FAST})
    policy.tiers["deep"] = deep.model_copy(update={"models": [deep.models[0], backup]})
    events = EventLog(tmp_path / "events.jsonl", "fallback-job")
    gateway = ModelGateway(policy, events, job_id="fallback-job")
    gateway.begin(None, step=1, steps_done=0)
    refuse = Fault(kind="http_error", status=400, model=DEEP, count=5, message="refused")
    sent = _steer_when(gateway, "fallback-job", "model.progress",
                       then=lambda: steer_sim.inject(refuse))
    async with control.serve("fallback-job", gateway.inbox, events):
        text = await gateway(tier="deep", phase="edit", instructions="be brief",
                             turns=[Turn(role="user", content="please write a lot")])
    assert [(await s)["status"] for s in sent] == ["delivered"]
    await gateway.aclose()
    events.close()
    assert text == REDIRECTED
    assert gateway.last_receipt and gateway.last_receipt.steer == STEER_MESSAGE
    asked = [(r["model"], r["input_items"]) for r in steer_sim.requests]
    assert asked == [(DEEP, 1), (DEEP, 2), (FAST, 2)]
    assert not [e for e in read_events(events.path) if e["type"] == "steer.unused"]


async def test_a_steer_while_the_client_waits_to_retry_aborts_the_next_attempt(
    harness: Harness, steer_sim: ThreadedSim
) -> None:
    """The WebSocket's first attempt gets a 503; the steer arrives during the back-off,
    when the client has no response to abort or steer. The attempt after the back-off
    is aborted as soon as its text shows: it ran to its end before (the whole long
    answer read and dropped) and only then was the request re-issued."""
    steer_sim.inject(Fault(kind="http_error", status=503, model=FAST))
    client = harness.gateway._client(harness.gateway.policy.tiers["fast"].models[0])
    original = client.stream
    deltas: list[int] = []

    async def counting(request: Any) -> Any:
        n = 0
        try:
            async for event in original(request):
                n += isinstance(event, TextDelta)
                yield event
        finally:
            deltas.append(n)

    client.stream = counting  # type: ignore[method-assign]
    sent = _steer_when(harness.gateway, harness.job_id, "model.start")
    text = await harness.gateway(tier="fast", phase="edit", instructions="be brief",
                                 turns=[Turn(role="user", content="please write a lot")])
    assert [(await s)["status"] for s in sent] == ["delivered"]
    assert text == REDIRECTED
    assert deltas[0] < 200  # the long answer has thousands


async def test_a_steer_left_queued_when_the_job_ends_is_reported(tmp_path: Path) -> None:
    events = EventLog(tmp_path / "events.jsonl", "job-q")
    async with control.serve("job-q", control.SteerInbox(), events):
        ack = await asyncio.to_thread(control.send_steer, "job-q", "use tabs")
    events.close()
    assert ack["status"] == control.QUEUED
    [unused] = [e for e in read_events(events.path) if e["type"] == "steer.unused"]
    assert unused["message"] == "use tabs"


def test_steer_to_a_job_that_does_not_answer_says_so(tmp_path: Path) -> None:
    """A job stopped with Ctrl-Z (its socket listens, nobody reads): the steer waits in
    the socket, and the sender says so. It was a TimeoutError traceback."""
    path = control.control_path("job-stopped")
    path.parent.mkdir(parents=True, exist_ok=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(path))
        listener.listen()
        ack = control.send_steer("job-stopped", "use tabs", timeout_s=0.2)
    path.unlink()
    assert ack["status"] == "sent" and "did not answer within 0.2 s" in ack["detail"]


def test_steer_cli_refuses_a_timeout_that_is_not_positive() -> None:
    proc = subprocess.run([sys.executable, "-m", "orchestrator", "steer", "job-x", "hi",
                           "--timeout", "0"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "--timeout" in proc.stderr and "Traceback" not in proc.stderr
