"""Budgets as an unattended user relies on them: what a job spent is what its record and
its budget say, also when a node pauses after a model call (a served-model mismatch, a
plan that never validates, a budget breach between two calls of one node), and a wall
budget that counts the time the job ran, not the time it waited paused."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator import budget
from orchestrator.jobstore import JobRecord, load_job, new_job_id
from orchestrator.runner import run_job
from orchestrator.sim import SimConfig, SimServer
from orchestrator.sim.server import ThreadedSim
from tests.fixtures_jobs import DEEP, FAST, quick_profiles, write_policy
from tests.graph.test_e2e import ONE_STEP_PLAN as PLAN
from tests.graph.test_e2e import SLUGIFY_EDIT as EDIT


def _run(job: JobRecord, resume_value: Any = None) -> JobRecord:
    return asyncio.run(run_job(job, resume_value=resume_value))


def _spent(job: JobRecord) -> tuple[float, int]:
    calls = [r for r in job.receipts if r.kind == "model_call"]
    return round(sum(r.cost_usd for r in calls), 9), len(calls)


def _recorded(job: JobRecord) -> tuple[float, int]:
    return round(job.budget.get("cost_usd", 0.0), 9), job.budget.get("model_calls", 0)


def test_a_call_made_before_a_pause_stays_counted(tmp_path: Path, demo_repo: Path) -> None:
    """The edit's model call is paid for even though its node paused (the served model is
    not the one asked for): the record says so, and so does the budget after a resume."""
    tape = [{"match": {"model": FAST, "contains": "STEP 1:"}, "text": EDIT,
             "served_model": "gpt-4o-mini"},
            {"match": {"model": DEEP, "contains": "REPOSITORY FILES:"}, "text": PLAN}]
    with SimServer(SimConfig(models=quick_profiles(), tape=tape)).run_in_thread() as sim:
        policy = write_policy(tmp_path / "p.yaml", sim.base_url)
        job = JobRecord(job_id=new_job_id(), repo=str(demo_repo), task="Add slugify",
                        policy=str(policy), test_cmd="true")
        job.save()
        job = _run(job)
        assert job.status == "paused" and "gpt-4o-mini" in (job.pause_reason or "")
        assert _spent(job)[1] == 2  # the plan and the edit
        assert _recorded(job) == _spent(job)
        job = _run(job, resume_value={"note": None})  # the same answer again: paused again
        assert job.status == "paused"
        assert _spent(job)[1] >= 3
        assert _recorded(job) == _spent(job)


class _Later:
    """The clock two hours on: the job waited that long while paused."""

    @staticmethod
    def time() -> float:
        return time.time() + 7200


def test_time_spent_paused_is_not_wall_time(tmp_path: Path, demo_repo: Path,
                                            demo_sim: ThreadedSim,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    policy = write_policy(tmp_path / "p.yaml", demo_sim.base_url,
                          budgets={"max_cost_usd": 0.0005, "max_wall_s": 600})
    job = JobRecord(job_id=new_job_id(), repo=str(demo_repo), task="Add slugify",
                    policy=str(policy), test_cmd="true")
    job.save()
    job = _run(job)
    assert job.status == "paused" and "cost_usd" in (job.pause_reason or "")
    ran_s = job.budget.get("running_s", 0.0)
    assert 0 <= ran_s < 60
    monkeypatch.setattr(budget, "time", _Later)  # resumed two hours later
    job.overrides = ["budgets.max_cost_usd=10"]
    job = _run(job, resume_value={"note": None})
    assert job.status == "done", job.pause_reason
    assert ran_s <= job.budget.get("running_s", -1) < 600  # the running time, not the waiting


def test_what_rolled_back_steps_cost_stays_counted(demo_repo: Path, demo_sim: ThreadedSim,
                                                   tmp_path: Path) -> None:
    """A rollback takes steps off the branch, not off the bill: the resumed job's budget
    starts from everything spent so far, not from the earlier state's usage."""
    from orchestrator.demo import DEMO_TASK, DEMO_TEST_CMD
    from orchestrator.runner import rollback_job

    policy = write_policy(tmp_path / "p.yaml", demo_sim.base_url)
    job = JobRecord(job_id=new_job_id(), repo=str(demo_repo), task=DEMO_TASK,
                    policy=str(policy), test_cmd=DEMO_TEST_CMD)
    job.save()
    job = _run(job)
    assert job.status == "done", job.error
    cost, calls = _spent(job)
    assert job.budget["model_calls"] == calls and job.budget["cost_usd"] == pytest.approx(cost)
    asyncio.run(rollback_job(job, 1))
    job = _run(load_job(job.job_id))
    assert job.status == "done", job.error
    cost_all, calls_all = _spent(job)  # the receipts of both runs
    assert calls_all > calls
    assert job.budget["model_calls"] == calls_all
    assert job.budget["cost_usd"] == pytest.approx(cost_all)
