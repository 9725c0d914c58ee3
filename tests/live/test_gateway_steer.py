"""Steering a model call in the gateway, on the simulator: in place with
``response.steer`` over the WebSocket, by abort and re-issue over HTTP SSE, and a steer
sent between calls going with the next call. The steer travels through the job's real
control socket, as `tandem steer` sends it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from agents.base import Turn
from orchestrator import control
from orchestrator.errors import ModelError
from orchestrator.sim import Fault
from orchestrator.sim.server import ThreadedSim
from tests.live.conftest import LONG_TEXT, REDIRECTED, STEER_MESSAGE, Harness


async def _ask(h: Harness, tier: str) -> str:
    return await h.gateway(tier=tier, phase="edit", instructions="be brief",
                           turns=[Turn(role="user", content="please write a lot")])


async def test_websocket_steer_redirects_in_place(harness: Harness) -> None:
    harness.steer_on_first_progress()
    text = await _ask(harness, "fast")
    assert text == REDIRECTED  # nothing of the interrupted generation
    assert [a["status"] for a in await harness.acks()] == ["delivered"]
    applied = harness.of_type("steer.applied")
    assert [(a["mode"], a["message"]) for a in applied] == [("response.steer", STEER_MESSAGE)]
    assert applied[0]["latency_ms"] >= 0
    receipt = harness.gateway.last_receipt
    assert receipt is not None and receipt.steer == STEER_MESSAGE
    assert receipt.features["steered"] == ["response.steer"]


async def test_http_steer_aborts_and_reissues(harness: Harness, steer_sim: ThreadedSim) -> None:
    harness.steer_on_first_progress()
    text = await _ask(harness, "deep")  # the deep tier speaks HTTP SSE
    assert text == REDIRECTED
    assert [a["status"] for a in await harness.acks()] == ["delivered"]
    assert [a["mode"] for a in harness.of_type("steer.applied")] == ["reissue"]
    receipt = harness.gateway.last_receipt
    assert receipt is not None and receipt.steer == STEER_MESSAGE
    # Billed for both generations: the redirected answer and what streamed before the
    # abort (the provider counts that too; estimated, as the cut stream reported nothing).
    assert receipt.features["generations"] == 2 and receipt.features["estimated_tokens"]
    redirected = len(REDIRECTED.split())
    assert receipt.tokens_out > redirected + 1
    assert harness.gateway.usage["tokens"]["deep"] == receipt.tokens_in + receipt.tokens_out
    asked = [r for r in steer_sim.requests if r["model"] == "gpt-5.3-codex"]
    assert [r["transport"] for r in asked] == ["sse", "sse"]
    assert asked[1]["input_items"] == asked[0]["input_items"] + 1  # + the steering turn


async def test_steer_between_calls_goes_with_the_next_call(harness: Harness) -> None:
    ack = await asyncio.to_thread(control.send_steer, harness.job_id, "use tabs")
    assert ack["status"] == "queued"
    text = await _ask(harness, "deep")
    assert text == REDIRECTED  # the tape answers requests that carry a steering turn
    assert [a["mode"] for a in harness.of_type("steer.applied")] == ["next-call"]
    assert harness.gateway.last_receipt and harness.gateway.last_receipt.steer == "use tabs"


async def test_unsteered_call_is_unchanged_and_progress_is_logged(
    harness: Harness, tmp_path: Path
) -> None:
    text = await _ask(harness, "fast")
    assert text == LONG_TEXT
    assert harness.gateway.last_receipt and harness.gateway.last_receipt.steer is None
    logged = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    tails = [e for e in logged if e["type"] == "model.progress"]
    assert tails and all(e["tail"] and len(e["text"]) <= 600 for e in tails)
    assert tails[0]["text"] in LONG_TEXT


async def test_a_reissued_request_that_fails_raises_instead_of_repeating(
    harness: Harness, steer_sim: ThreadedSim
) -> None:
    """The provider refuses the re-issued request (a 400, as a tape without an answer for
    it gives): the call fails with that error. It was re-issued again and again, a busy
    loop the job never left."""
    def refuse_what_follows(event: dict[str, object]) -> None:
        if event["type"] == "model.progress" and not steer_sim.sim.state.faults.pending():
            steer_sim.inject(Fault(kind="http_error", status=400, model="gpt-5.3-codex",
                                   count=50, message="no answer for this request"))

    harness.gateway.listeners.append(refuse_what_follows)
    harness.steer_on_first_progress()
    with pytest.raises(ModelError, match="no answer for this request"):
        await asyncio.wait_for(_ask(harness, "deep"), timeout=20)
    asked = [r for r in steer_sim.requests if r["model"] == "gpt-5.3-codex"]
    assert len(asked) == 2  # the first request and one re-issue with the steer
