"""The job queue and worker against a real redis-server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aredis

from orchestrator.errors import JobNotFound, LeaseLost, TandemError
from orchestrator.queue import JobContext, JobQueue, JobResult, Worker
from orchestrator.queue import lease as leases
from orchestrator.store.redis_saver import AsyncRedisSaver


@contextlib.asynccontextmanager
async def running(worker: Worker) -> AsyncIterator[Worker]:
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.stop()
        await asyncio.wait_for(task, 10)


async def wait_state(queue: JobQueue, job_id: str, states: tuple[str, ...]) -> dict:
    for _ in range(300):
        status = await queue.status(job_id)
        if status["state"] in states:
            return status
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} stuck in {status['state']}")


async def echo(ctx: JobContext) -> JobResult:
    await ctx.publish({"type": "step", "n": 1})
    return JobResult(output={"echo": ctx.spec["task"], "attempt": ctx.attempt})


async def test_submitted_job_runs_once_and_its_events_can_be_followed(
    async_redis: aredis.Redis, prefix: str
) -> None:
    queue = JobQueue(async_redis, prefix)
    async with running(Worker(queue, echo, concurrency=2, heartbeat_s=0.3)):
        job_id = await queue.submit({"task": "hello"})
        status = await wait_state(queue, job_id, ("succeeded",))
    assert status["result"] == {"echo": "hello", "attempt": 1}
    assert status["completions"] == 1
    events = [e["type"] async for e in queue.follow(job_id)]
    assert events == ["job.queued", "job.started", "step", "job.finished"]
    assert [j["id"] for j in await queue.list_jobs()] == [job_id]


async def test_handler_errors_fail_the_job_with_their_message(
    async_redis: aredis.Redis, prefix: str
) -> None:
    async def broken(ctx: JobContext) -> JobResult:
        raise TandemError("the repository has no commits")

    queue = JobQueue(async_redis, prefix)
    async with running(Worker(queue, broken, heartbeat_s=0.3)):
        job_id = await queue.submit({"task": "x"})
        status = await wait_state(queue, job_id, ("failed",))
    assert status["error"] == "the repository has no commits"


async def test_cancel_stops_a_running_job(async_redis: aredis.Redis, prefix: str) -> None:
    started = asyncio.Event()

    async def slow(ctx: JobContext) -> JobResult:
        started.set()
        await asyncio.sleep(30)
        return JobResult()

    queue = JobQueue(async_redis, prefix)
    async with running(Worker(queue, slow, heartbeat_s=0.3, cancel_grace_s=0.1)):
        job_id = await queue.submit({"task": "x"})
        await asyncio.wait_for(started.wait(), 10)
        assert await queue.cancel(job_id) == "running"
        status = await wait_state(queue, job_id, ("cancelled",))
    assert status["completions"] == 1


async def test_unknown_job_is_a_clear_error(async_redis: aredis.Redis, prefix: str) -> None:
    with pytest.raises(JobNotFound, match="no job 'nope'"):
        await JobQueue(async_redis, prefix).status("nope")


async def test_dead_worker_job_is_taken_over_then_dead_lettered_at_the_cap(
    async_redis: aredis.Redis, prefix: str
) -> None:
    """A worker that stops mid-job leaves its entry pending; another worker claims it
    once idle; with max_deliveries=2 the third start goes to the dead-letter stream."""
    seen: list[str] = []

    async def hang(ctx: JobContext) -> JobResult:
        seen.append(ctx.worker_id)
        await asyncio.sleep(30)
        return JobResult()

    queue = JobQueue(async_redis, prefix)
    job_id = await queue.submit({"task": "x"})
    for name in ("a", "b"):
        worker = Worker(queue, hang, heartbeat_s=0.2, max_deliveries=2, worker_id=name)
        async with running(worker):
            while len(seen) < (1 if name == "a" else 2):
                await asyncio.sleep(0.05)
    assert seen == ["a", "b"]
    async with running(Worker(queue, hang, heartbeat_s=0.2, max_deliveries=2, worker_id="c")):
        status = await wait_state(queue, job_id, ("dead",))
    assert status["attempts"] == 2
    assert [d["job_id"] for d in await queue.dead_letters()] == [job_id]


async def test_saver_refuses_writes_from_a_stale_lease(
    async_redis: aredis.Redis, prefix: str
) -> None:
    from langgraph.checkpoint.base import empty_checkpoint

    old = await leases.acquire(async_redis, prefix, "job1", "w-old", ttl_ms=100)
    assert old is not None
    await asyncio.sleep(0.2)  # the old worker stalls past its lease
    new = await leases.acquire(async_redis, prefix, "job1", "w-new", ttl_ms=10_000)
    assert new is not None and new.token == old.token + 1
    config = {"configurable": {"thread_id": "job1", "checkpoint_ns": ""}}
    stale = AsyncRedisSaver(async_redis, prefix=prefix, fence=old)
    with pytest.raises(LeaseLost, match="not current"):
        await stale.aput(config, empty_checkpoint(), {"step": 1}, {})
    with pytest.raises(LeaseLost):
        await old.acheck()
    current = AsyncRedisSaver(async_redis, prefix=prefix, fence=new)
    stored = await current.aput(config, empty_checkpoint(), {"step": 1}, {})
    with pytest.raises(LeaseLost):
        await stale.aput_writes(stored, [("x", 1)], "task")
    assert (await current.aget_tuple(config)).pending_writes == []  # type: ignore[union-attr]
