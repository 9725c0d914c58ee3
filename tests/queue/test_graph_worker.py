"""A queued job runs Tandem's real graph in a worker: the Redis saver (fenced by the
job's lease) holds the graph state, the job's events go to its Redis stream, and the job
ends with one commit per step."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import redis.asyncio as aredis
from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.demo import DEMO_TASK, DEMO_TEST_CMD
from orchestrator.jobstore import load_job
from orchestrator.queue import JobQueue, Worker
from orchestrator.queue.graph_job import run_queued_job
from orchestrator.sim import SimServer
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
