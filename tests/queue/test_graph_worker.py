"""A queued job runs Tandem's real graph in a worker: the Redis saver (fenced by the
job's lease) holds the graph state, the job's events go to its Redis stream, and the job
ends with one commit per step. A worker that lost its lease leaves the worktree alone."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aredis
from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.demo import DEMO_TASK, DEMO_TEST_CMD
from orchestrator.errors import LeaseLost
from orchestrator.jobstore import JobRecord, load_job, new_job_id
from orchestrator.queue import JobQueue, Worker
from orchestrator.queue import lease as leases
from orchestrator.queue.graph_job import run_queued_job
from orchestrator.runner import run_job
from orchestrator.sim import SimServer
from tests.cli_helpers import run_cli
from tests.fixtures_jobs import write_policy
from tests.queue.test_queue import running, wait_state


async def test_worker_runs_the_graph_to_a_pull_request(
    async_redis: aredis.Redis, redis_url: str, prefix: str, tmp_path: Path, demo_repo: Path,
    demo_sim: SimServer,
) -> None:
    policy = write_policy(tmp_path / "p.yaml", demo_sim.base_url)
    queue = JobQueue(async_redis, prefix)
    async with running(Worker(queue, run_queued_job, concurrency=1, heartbeat_s=0.5)):
        job_id = await queue.submit({"repo": str(demo_repo), "task": DEMO_TASK,
                                     "policy": str(policy), "test_cmd": DEMO_TEST_CMD})
        status = await wait_state(queue, job_id, ("succeeded", "failed", "dead"))
    assert status["state"] == "succeeded", status
    job = load_job(job_id)
    assert job.status == "done"
    steps = subprocess.run(
        ["git", "log", "--format=%(trailers:key=Tandem-Step,valueonly)",
         f"{job.base_sha}..{job.branch}"], cwd=demo_repo, capture_output=True, text=True,
        check=True).stdout.split()
    assert steps == ["3", "2", "1"]
    events = [e["type"] async for e in queue.follow(job_id)]
    assert "receipt" in events and events[-1] == "job.finished"
    # the CLI, as another machine would use it: list the queue, follow the job's events
    redis_args = ["--redis-url", redis_url, "--prefix", prefix, "--json"]
    listed = await asyncio.to_thread(CliRunner().invoke, cli, ["jobs", *redis_args])
    assert job_id in [j["id"] for j in json.loads(listed.output)]
    follow = await asyncio.to_thread(CliRunner().invoke, cli,
                                     ["show", job_id, "--follow", *redis_args])
    assert follow.exit_code == 0, follow.output
    kinds = [json.loads(line)["type"] for line in follow.output.splitlines() if line.strip()]
    assert kinds[0] == "job.queued" and "receipt" in kinds and kinds[-1] == "job.finished"


async def test_a_worker_that_lost_its_lease_mid_stream_writes_nothing(
    async_redis: aredis.Redis, redis_url: str, prefix: str, tmp_path: Path, demo_repo: Path,
    demo_sim: SimServer,
) -> None:
    """A worker stalled past its lease while its model call streamed; another worker took
    the job. When the stream ends, the stale worker must not apply the edit, restore, run
    commands or commit in the worktree, nor record the job as failed."""
    policy = write_policy(tmp_path / "p.yaml", demo_sim.base_url)
    job = JobRecord(job_id=new_job_id(), repo=str(demo_repo), task=DEMO_TASK,
                    policy=str(policy), test_cmd=DEMO_TEST_CMD)
    job.save()
    lease = await leases.acquire(async_redis, prefix, job.job_id, "worker-a", 60_000)
    assert lease is not None
    taken_by_b = f"worker-b:{lease.token + 1}"
    sync_redis = redis.Redis.from_url(redis_url)
    seen: list[str] = []

    def listener(event: dict[str, Any]) -> None:
        seen.append(event["type"])
        if event["type"] == "model.start" and event.get("phase") == "edit":
            sync_redis.set(lease.key, taken_by_b)  # worker B's takeover, mid-stream

    with pytest.raises(LeaseLost, match="no longer current"):
        await run_job(job, listeners=(listener,), fence=lease)
    sync_redis.close()
    assert "model.start" in seen and "edit.applied" not in seen and "job.failed" not in seen
    worktree = Path(job.worktree or "")
    status = subprocess.run(["git", "status", "--porcelain"], cwd=worktree, check=True,
                            capture_output=True, text=True).stdout
    assert status == ""  # the edit that streamed was not applied
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=worktree, check=True,
                          capture_output=True, text=True).stdout.strip()
    assert head == job.base_sha  # and nothing was committed
    assert load_job(job.job_id).status != "failed"


async def test_a_job_submitted_with_a_tape_runs_on_the_workers_simulator(
    async_redis: aredis.Redis, redis_url: str, prefix: str, tmp_path: Path, demo_repo: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`tandem submit --tape` on a policy at sim:// (the shipped default): the worker
    starts the simulated provider with that script, so a deployment can be tried end to
    end without keys."""
    import yaml

    from tests.fixtures_jobs import DEEP, FAST
    from tests.graph.test_e2e import ONE_STEP_PLAN, PR_TEXT, SLUGIFY_EDIT

    tape = tmp_path / "tape.yaml"
    tape.write_text(yaml.safe_dump({"entries": [
        {"match": {"model": FAST, "contains": "STEP 1:"}, "text": SLUGIFY_EDIT},
        {"match": {"model": DEEP, "contains": "REPOSITORY FILES:"}, "text": ONE_STEP_PLAN},
        {"match": {"model": FAST, "contains": "PR FOR TASK"}, "text": PR_TEXT}]}))
    bad = tmp_path / "not-a-tape.yaml"
    bad.write_text("name: a policy, not a tape\n")
    args = ["submit", str(demo_repo), "Add slugify", "--policy", "default",
            "--test", DEMO_TEST_CMD, "--redis-url", redis_url, "--prefix", prefix, "--json"]
    code, out, err = await asyncio.to_thread(run_cli, capsys, *args, "--tape", str(bad))
    assert code == 2 and "no tape entries" in err and err.count("\n") == 1
    assert json.loads(out) == {"error": err.strip().removeprefix("tandem: error: "),
                               "exit_code": 2}  # --json: stdout is JSON even on error
    code, out, err = await asyncio.to_thread(run_cli, capsys, *args, "--tape", str(tape))
    assert code == 0, err
    job_id = json.loads(out)["job_id"]
    queue = JobQueue(async_redis, prefix)
    async with running(Worker(queue, run_queued_job, concurrency=1, heartbeat_s=0.5)):
        status = await wait_state(queue, job_id, ("succeeded", "failed", "dead"))
    assert status["state"] == "succeeded", status
    job = load_job(job_id)
    assert job.status == "done" and job.tape == str(tape)
    assert [r.tier for r in job.receipts if r.phase == "edit"] == ["fast"]
