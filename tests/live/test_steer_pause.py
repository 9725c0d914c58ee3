"""A steer that a job acknowledged as queued, when the job pauses before another model
call takes it (a budget pause here, the same path as an approval pause, a failing tier
or Ctrl-C): it is reported as kept, with its id, and the resumed run's first model call
gets it. Sent while the pause notification runs (with another control client connected
and idle), which neither blocks."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from orchestrator import control
from orchestrator.demo import DEMO_TEST_CMD
from orchestrator.events import read_events
from orchestrator.jobstore import JobRecord, new_job_id
from orchestrator.runner import run_job
from orchestrator.sim import ModelProfile, SimConfig, SimServer
from orchestrator.sim.server import ThreadedSim
from tests.fixtures_jobs import DEEP, FAST, write_policy
from tests.live.test_chat import PLAN, PR_TEXT, _edit

STEER = "plan one step only"


def _tape() -> list[dict[str, Any]]:
    # Only a plan call that carries the steer gets a plan: without it the planner gets
    # filler text and the job does not get done.
    return [{"match": {"contains": f"STEERING: {STEER}"}, "text": PLAN},
            {"match": {"contains": "PR FOR TASK"}, "text": PR_TEXT},
            {"match": {"model": DEEP, "contains": "STEP 1:"}, "text": _edit("+")},
            {"match": {"model": FAST, "contains": "STEP 1:"}, "text": _edit("-")}]


@pytest.fixture
def pause_sim() -> Iterator[ThreadedSim]:
    profiles = [ModelProfile(name=FAST, ttft_ms=0, tokens_per_s=20000, jitter=0),
                ModelProfile(name=DEEP, ttft_ms=0, tokens_per_s=20000, jitter=0)]
    with SimServer(SimConfig(models=profiles, tape=_tape())).run_in_thread() as sim:
        yield sim


class _SteeringHook(BaseHTTPRequestHandler):
    """A pause webhook that steers the job (through its control socket) before it
    answers: the job's loop must serve the steer while it waits for the webhook."""

    job_id = ""
    acks: list[dict[str, str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        type(self).acks.append(control.send_steer(type(self).job_id, STEER, timeout_s=5))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_a_steer_queued_at_a_pause_is_kept_and_delivered_after_resume(
    tmp_path: Path, demo_repo: Path, pause_sim: ThreadedSim
) -> None:
    """The job answered `queued`, paused, and dropped the steer: the resumed run planned
    without it (steer.unused said the job made no model call after it, and that was all)."""
    job = JobRecord(job_id=new_job_id(), repo=str(demo_repo), task="Add a slugify helper",
                    test_cmd=DEMO_TEST_CMD, pr="none", policy=None)
    hook = type("Hook", (_SteeringHook,), {"job_id": job.job_id, "acks": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    policy = write_policy(tmp_path / "p.yaml", pause_sim.base_url,
                          budgets={"max_cost_usd": 0},
                          approvals={"notify_webhook":
                                     f"http://127.0.0.1:{server.server_port}/hook",
                                     "notify_timeout_s": 10})
    job.policy = str(policy)
    job.save()
    idle: list[socket.socket] = []

    def connect_idle(event: dict[str, Any]) -> None:
        if event["type"] == "job.start":  # a client that connects and says nothing
            sock = socket.socket(socket.AF_UNIX)
            sock.connect(str(control.control_path(job.job_id)))
            idle.append(sock)

    try:
        paused = asyncio.run(run_job(job, listeners=(connect_idle,)))
    finally:
        server.shutdown()
        server.server_close()
    for sock in idle:
        sock.close()
    assert paused.status == "paused" and "budget" in (paused.pause_reason or "")
    [ack] = hook.acks
    assert ack["status"] == control.QUEUED and ack["id"]
    first = read_events(paused.events_path)
    [sent] = [e for e in first if e["type"] == "notify.sent"]
    [unused] = [e for e in first if e["type"] == "steer.unused"]
    assert unused["id"] == ack["id"] and unused["message"] == STEER and unused["kept"]
    assert "tandem resume" in unused["reason"]

    paused.overrides = ["budgets.max_cost_usd=10"]
    done = asyncio.run(run_job(paused, resume_value={"note": None}))
    assert done.status == "done", done.error
    [plan] = [r for r in done.receipts if r.phase == "plan" and r.kind == "model_call"]
    assert plan.steer == STEER
    later = read_events(done.events_path)[len(first):]
    kinds = [(e["type"], e.get("id")) for e in later if e["type"].startswith("steer.")]
    assert kinds == [("steer.restored", ack["id"]), ("steer.applied", ack["id"])]
    assert not control.kept_steers_path(job.job_id).exists()  # delivered: not kept again
    # taken once: no later call of the job gets it again
    assert [r.phase for r in done.receipts if r.steer] == ["plan"]
