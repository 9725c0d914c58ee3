"""Fixtures for end-to-end jobs: the demo repository and a simulator on loopback with
fast speed profiles (the scripted answers are the demo's tape, or a test's own)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.cli.jobs import create_demo_repo
from orchestrator.events import EventLog
from orchestrator.jobctx import JobRuntime
from orchestrator.jobstore import JobRecord, new_job_id
from orchestrator.policy import load_policy
from orchestrator.sim import ModelProfile, SimConfig, SimServer
from orchestrator.sim.server import ThreadedSim
from orchestrator.workspace import Workspace

FAST = "gpt-5.3-codex-spark"
DEEP = "gpt-5.3-codex"


def bare_runtime(repo: Path, tmp_path: Path, job_id: str) -> JobRuntime:
    """A job's runtime on ``repo`` with its own worktree and event log, and no model
    gateway: for the runtime's own work (reads, commits), no model call."""
    ws = Workspace.open_or_create(repo, job_id, job_id, home=tmp_path / "home")
    job = JobRecord(job_id=job_id, repo=str(repo), task="t", policy="default")
    return JobRuntime(job=job, policy=load_policy("default"), ws=ws,
                      events=EventLog(tmp_path / "events.jsonl", job.job_id),
                      gateway=None)  # type: ignore[arg-type]  # no model call here


def quick_profiles() -> list[ModelProfile]:
    return [ModelProfile(name=FAST, ttft_ms=0, tokens_per_s=20000, jitter=0),
            ModelProfile(name=DEEP, ttft_ms=2, tokens_per_s=5000, jitter=0)]


def done_demo_job(tmp_path: Path, repo: Path, sim: ThreadedSim) -> JobRecord:
    """The demo's task run to the end on ``repo`` (three steps, each checkpointed)."""
    from orchestrator.demo import DEMO_TASK, DEMO_TEST_CMD
    from orchestrator.runner import run_job

    policy = write_policy(tmp_path / "p.yaml", sim.base_url)
    job = JobRecord(job_id=new_job_id(), repo=str(repo), task=DEMO_TASK, policy=str(policy),
                    test_cmd=DEMO_TEST_CMD)
    job.save()
    job = asyncio.run(run_job(job))
    assert job.status == "done" and len(job.steps) == 3, job.error
    return job


def budget_paused_job(tmp_path: Path, repo: Path, sim: ThreadedSim) -> JobRecord:
    """A job on ``repo`` paused by its cost budget before its first step was done (its
    worktree made): resume it with ``budgets.max_cost_usd`` raised."""
    from orchestrator.runner import run_job

    policy = write_policy(tmp_path / "p.yaml", sim.base_url, budgets={"max_cost_usd": 0.0005})
    job = JobRecord(job_id=new_job_id(), repo=str(repo), task="Add slugify",
                    policy=str(policy), test_cmd="true")
    job.save()
    job = asyncio.run(run_job(job))
    assert job.status == "paused" and job.worktree, job.error
    return job


@pytest.fixture
def demo_repo(tmp_path: Path) -> Path:
    return create_demo_repo(tmp_path / "shop")


def write_policy(
    path: Path, base_url: str, *, fast_extra: dict[str, Any] | None = None, **extra: Any
) -> Path:
    """A policy that extends ``default`` with both tiers on the given simulator."""
    doc: dict[str, Any] = {
        "extends": "default", "name": "test",
        "tiers": {
            "fast": {"models": [{"provider": "openai-ws", "base_url": base_url, "model": FAST,
                                 "price_input_usd_per_mtok": 1.0,
                                 "price_output_usd_per_mtok": 10.0}]},
            "deep": {"models": [{"provider": "openai-responses", "base_url": base_url,
                                 "model": DEEP, "price_input_usd_per_mtok": 5.0,
                                 "price_output_usd_per_mtok": 40.0}]},
        },
    }
    doc["tiers"]["fast"]["models"][0].update(fast_extra or {})
    doc.update(extra)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture
def demo_sim() -> Iterator[ThreadedSim]:
    from orchestrator.demo import TAPE_PATH

    cfg = SimConfig(models=quick_profiles(), tape=TAPE_PATH)
    with SimServer(cfg).run_in_thread() as sim:
        yield sim
