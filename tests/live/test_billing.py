"""What a model call costs when it does not end with a usable answer: the provider bills
a stream cut off mid-way or stopped at the output limit all the same, so the job's budget
counts it and a receipt says it failed (before, only completed calls were counted, and a
job whose calls kept failing mid-stream could overspend ``max_cost_usd`` unseen)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.base import Turn
from orchestrator.errors import ModelError
from orchestrator.events import EventLog, read_events
from orchestrator.gateway import ModelGateway
from orchestrator.policy import load_policy
from orchestrator.sim import Fault
from orchestrator.sim.server import ThreadedSim
from tests.fixtures_jobs import DEEP, write_policy

ASK = [Turn(role="user", content="please write a lot")]


def _gateway(tmp_path: Path, sim: ThreadedSim) -> tuple[ModelGateway, EventLog]:
    policy = load_policy(str(write_policy(tmp_path / "p.yaml", sim.base_url)))
    events = EventLog(tmp_path / "events.jsonl", "billing-job")
    gateway = ModelGateway(policy, events, job_id="billing-job")
    gateway.begin(None, step=1, steps_done=0)
    return gateway, events


def _receipts(events: EventLog) -> list[dict[str, object]]:
    return [e["receipt"] for e in read_events(events.path) if e["type"] == "receipt"]


async def test_a_stream_cut_mid_way_is_charged_with_an_estimate(
    tmp_path: Path, steer_sim: ThreadedSim
) -> None:
    gateway, events = _gateway(tmp_path, steer_sim)
    steer_sim.inject(Fault(kind="drop_after_tokens", tokens=40, model=DEEP))
    with pytest.raises(ModelError):
        await gateway(tier="deep", phase="edit", instructions="x" * 400, turns=ASK)
    await gateway.aclose()
    events.close()
    tokens = gateway.usage["tokens"]["deep"]
    # 40 output tokens streamed, ~100 input tokens estimated from the request's characters
    assert 140 <= tokens <= 160, tokens
    assert gateway.usage["model_calls"] == 1
    assert gateway.usage["cost_usd"] == pytest.approx(
        (tokens - 40) * 5.0 / 1e6 + 40 * 40.0 / 1e6)
    [receipt] = _receipts(events)
    assert receipt["action"] == "failed" and receipt["tokens_out"] == 40
    assert receipt["cost_usd"] == pytest.approx(gateway.usage["cost_usd"])
    assert receipt["features"] == {"generations": 1, "estimated_tokens": True}
    assert str(receipt["reasons"][0]).startswith("failed: ")  # type: ignore[index]


async def test_an_answer_stopped_at_the_output_limit_is_charged_what_the_provider_said(
    tmp_path: Path, steer_sim: ThreadedSim
) -> None:
    gateway, events = _gateway(tmp_path, steer_sim)
    with pytest.raises(ModelError, match="stopped early: max_output_tokens"):
        await gateway(tier="deep", phase="edit", instructions="be brief", turns=ASK,
                      max_output_tokens=12)
    await gateway.aclose()
    events.close()
    [receipt] = _receipts(events)
    assert receipt["tokens_out"] == 12 and receipt["tokens_in"] > 0  # type: ignore[operator]
    assert receipt["features"] == {"generations": 1, "estimated_tokens": False}
    assert gateway.usage["tokens"]["deep"] == receipt["tokens_in"] + 12  # type: ignore[operator]


async def test_a_call_that_fails_before_any_output_costs_nothing(
    tmp_path: Path, steer_sim: ThreadedSim
) -> None:
    gateway, events = _gateway(tmp_path, steer_sim)
    steer_sim.inject(Fault(kind="http_error", status=400, model=DEEP, message="refused"))
    with pytest.raises(ModelError, match="refused"):
        await gateway(tier="deep", phase="edit", instructions="be brief", turns=ASK)
    await gateway(tier="deep", phase="edit", instructions="be brief", turns=ASK)
    await gateway.aclose()
    events.close()
    [receipt] = _receipts(events)  # the completed call only
    assert receipt["action"] is None and receipt["tokens_out"] > 0  # type: ignore[operator]
    assert gateway.usage["model_calls"] == 1
    assert gateway.usage["cost_usd"] == pytest.approx(receipt["cost_usd"])
