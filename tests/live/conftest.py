"""Fixtures for steering: a simulator with a slow-enough fast model, a tape whose
answer to a steer is recognisable, and a gateway wired to the job's control socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator import control
from orchestrator.events import EventLog
from orchestrator.gateway import ModelGateway
from orchestrator.policy import load_policy
from orchestrator.sim import ModelProfile, SimConfig, SimServer
from orchestrator.sim.server import ThreadedSim
from tests.fixtures_jobs import DEEP, FAST, write_policy

LONG_TEXT = " ".join(f"word{i}" for i in range(3000))
REDIRECTED = "Redirected answer: short and to the point."
STEER_MESSAGE = "stop, keep it short"


def steer_tape() -> list[dict[str, Any]]:
    return [{"match": {"contains": "STEERING:"}, "text": REDIRECTED},
            {"match": {"contains": "write a lot"}, "text": LONG_TEXT}]


@pytest.fixture
def steer_sim() -> Iterator[ThreadedSim]:
    profiles = [ModelProfile(name=FAST, ttft_ms=0, tokens_per_s=2000),
                ModelProfile(name=DEEP, ttft_ms=0, tokens_per_s=2000)]
    config = SimConfig(models=profiles, tape=steer_tape(), steer_supported=True)
    with SimServer(config).run_in_thread() as sim:
        yield sim


class Harness:
    """A gateway for one job with its control socket open, recording its events."""

    def __init__(self, gateway: ModelGateway, events: list[dict[str, Any]], job_id: str):
        self.gateway = gateway
        self.events = events
        self.job_id = job_id
        self._sends: list[asyncio.Task[dict[str, str]]] = []

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]

    def steer_on_first_progress(self, message: str = STEER_MESSAGE) -> None:
        """Send ``message`` through the control socket once text is streaming."""
        loop = asyncio.get_running_loop()

        def on_progress(event: dict[str, Any]) -> None:
            if event["type"] == "model.progress" and not self._sends:
                self._sends.append(loop.create_task(
                    asyncio.to_thread(control.send_steer, self.job_id, message)))

        self.gateway.listeners.append(on_progress)

    async def acks(self) -> list[dict[str, str]]:
        """The job's answers to the steers sent (waits for them)."""
        return list(await asyncio.gather(*self._sends))


@pytest.fixture
async def harness(tmp_path: Path, steer_sim: ThreadedSim) -> AsyncIterator[Harness]:
    policy = load_policy(str(write_policy(tmp_path / "p.yaml", steer_sim.base_url,
                                          fast_extra={"steer_supported": True})))
    job_id = "live-test"
    events = EventLog(tmp_path / "events.jsonl", job_id)
    seen: list[dict[str, Any]] = []
    events.subscribe(seen.append)
    gateway = ModelGateway(policy, events, job_id=job_id)
    gateway.begin(None, step=1, steps_done=0, rule_id="test")
    async with control.serve(job_id, gateway.inbox, events):
        yield Harness(gateway, seen, job_id)
    await gateway.aclose()
    events.close()
