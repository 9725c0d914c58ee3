"""``Worker``: takes jobs from the Redis stream and runs a handler on each.

- XREADGROUP takes new entries; XAUTOCLAIM takes entries idle for ``3 x heartbeat_s``
  (their worker died); the heartbeat renews each job's lease and keeps its entry ours.
- A job runs only under a lease with a fresh fencing token; the terminal state, XACK
  and lease release are one Lua call that first checks the lease.
- A job started ``max_deliveries`` times without finishing goes to the dead-letter
  stream. Cancel: a flag key plus pub/sub; checked at start and on every heartbeat.
- Redis down: every loop retries with capped, jittered backoff; nothing is acked until
  a job is finished, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import socket
import traceback
from dataclasses import dataclass
from typing import Any

from orchestrator import keys
from orchestrator.errors import LeaseLost, RedisUnavailable, TandemError
from orchestrator.queue import lease as leases
from orchestrator.queue.context import Handler, JobContext, JobResult
from orchestrator.queue.jobs import DEAD_MAXLEN, TERMINAL, JobQueue, now_ms
from orchestrator.store.connection import redis_errors

log = logging.getLogger(__name__)

FINISH = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local st = redis.call('HGET', KEYS[2], 'state')
if st ~= 'succeeded' and st ~= 'failed' and st ~= 'cancelled' and st ~= 'dead' then
  redis.call('HSET', KEYS[2], 'state', ARGV[2], 'finished_ms', ARGV[3], 'result', ARGV[4],
             'error', ARGV[5])
  redis.call('HINCRBY', KEYS[2], 'completions', 1)
end
redis.call('XACK', KEYS[3], ARGV[6], ARGV[7])
redis.call('DEL', KEYS[1])
return 1
"""

START = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], 'state', 'running', 'worker', ARGV[2], 'started_ms', ARGV[3])
return redis.call('HINCRBY', KEYS[2], 'attempts', 1)
"""


def _default_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{random.randrange(16**4):04x}"


@dataclass
class _Active:
    entry_id: str
    ctx: JobContext
    task: asyncio.Task[None]
    lease_lost: bool = False


class Worker:
    """Runs ``handler`` on up to ``concurrency`` jobs at a time."""

    def __init__(
        self,
        queue: JobQueue,
        handler: Handler,
        *,
        concurrency: int = 1,
        heartbeat_s: float = 5.0,
        max_deliveries: int = 5,
        cancel_grace_s: float = 5.0,
        worker_id: str | None = None,
    ) -> None:
        self.queue = queue
        self.handler = handler
        self.concurrency = concurrency
        self.heartbeat_s = heartbeat_s
        self.max_deliveries = max_deliveries
        self.cancel_grace_s = cancel_grace_s
        self.worker_id = worker_id or _default_id()
        self.active: dict[str, _Active] = {}
        self._stop = asyncio.Event()

    @property
    def lease_ttl_ms(self) -> int:
        return int(self.heartbeat_s * 3000)

    def stop(self) -> None:
        """Take no new jobs; ``run`` returns once the running ones are interrupted."""
        self._stop.set()

    async def run(self) -> None:
        """Until ``stop()``: take jobs, run them, keep their leases alive."""
        helpers = [asyncio.create_task(self._forever(self._heartbeat_once, self.heartbeat_s)),
                   asyncio.create_task(self._forever(self._listen_cancels, 0))]
        try:
            await self._forever(self._take_once, 0)
        finally:
            for task in helpers + [a.task for a in self.active.values()]:
                task.cancel()
            await asyncio.gather(*helpers, *[a.task for a in self.active.values()],
                                 return_exceptions=True)

    async def _forever(self, step: Any, pause_s: float) -> None:
        """Run ``step`` until stopped; back off (capped, jittered) while Redis is down."""
        backoff_s = 0.1
        while not self._stop.is_set():
            try:
                with redis_errors(self.queue.where):
                    await step()
                backoff_s = 0.1
            except RedisUnavailable as exc:
                log.warning("worker %s: %s; retrying in %.1fs", self.worker_id, exc, backoff_s)
                await self._sleep(backoff_s * random.uniform(0.75, 1.0))
                backoff_s = min(backoff_s * 2, 5.0)
                continue
            if pause_s:
                await self._sleep(pause_s)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    # --- taking jobs ------------------------------------------------------------------

    async def _take_once(self) -> None:
        free = self.concurrency - len(self.active)
        if free <= 0:
            tasks = [a.task for a in self.active.values()]
            await asyncio.wait(tasks, timeout=self.heartbeat_s, return_when="FIRST_COMPLETED")
            return
        await self.queue.ensure_group()
        entries = await self._autoclaim(free) or await self._read_new(free)
        for entry_id, job_id in entries:
            if job_id not in self.active:
                await self._start(entry_id, job_id)

    async def _read_new(self, count: int) -> list[tuple[str, str]]:
        client, p = self.queue.client, self.queue.prefix
        block_ms = int(min(self.heartbeat_s, 1.0) * 1000)
        with redis_errors(self.queue.where):
            found = await client.xreadgroup(keys.WORKER_GROUP, self.worker_id,
                                            {keys.job_stream(p): ">"}, count=count, block=block_ms)
        return [(e.decode(), f[b"job_id"].decode()) for _, entries in found for e, f in entries]

    async def _autoclaim(self, count: int) -> list[tuple[str, str]]:
        client, p = self.queue.client, self.queue.prefix
        with redis_errors(self.queue.where):
            _, claimed, *_ = await client.xautoclaim(
                keys.job_stream(p), keys.WORKER_GROUP, self.worker_id,
                min_idle_time=self.lease_ttl_ms + 100, start_id="0-0", count=count)
        return [(e.decode(), f[b"job_id"].decode()) for e, f in claimed if f]

    async def _start(self, entry_id: str, job_id: str) -> None:
        q = self.queue
        record = await q.client.hgetall(keys.job(q.prefix, job_id))
        if not record or record.get(b"state", b"").decode() in TERMINAL:
            with redis_errors(q.where):
                await q.client.xack(keys.job_stream(q.prefix), keys.WORKER_GROUP, entry_id)
            return
        if int(record.get(b"attempts", b"0")) >= self.max_deliveries:
            await self._dead_letter(entry_id, job_id, int(record[b"attempts"]))
            return
        lease = await leases.acquire(q.client, q.prefix, job_id, self.worker_id,
                                     self.lease_ttl_ms)
        if lease is None:
            return  # another live worker holds it; the entry is claimed again later
        attempt = await q.client.eval(
            START, 2, lease.key, keys.job(q.prefix, job_id), lease.value, self.worker_id,
            now_ms())
        if not attempt:
            return
        ctx = JobContext(job_id, json.loads(record[b"spec"]), int(attempt), self.worker_id,
                         lease, q)
        task = asyncio.create_task(self._run_job(entry_id, ctx))
        self.active[job_id] = _Active(entry_id, ctx, task)
        task.add_done_callback(lambda _: self.active.pop(job_id, None))

    async def _dead_letter(self, entry_id: str, job_id: str, attempts: int) -> None:
        q, p = self.queue, self.queue.prefix
        with redis_errors(q.where):
            pipe = q.client.pipeline(transaction=True)
            pipe.xadd(keys.dead_letters(p), {"job_id": job_id, "entry_id": entry_id,
                                             "attempts": attempts, "ts_ms": now_ms()},
                      maxlen=DEAD_MAXLEN, approximate=True)
            pipe.hset(keys.job(p, job_id), mapping={"state": "dead", "finished_ms": now_ms(),
                                                    "error": f"gave up after {attempts} starts"})
            pipe.xack(keys.job_stream(p), keys.WORKER_GROUP, entry_id)
            await pipe.execute()
        await q.publish(job_id, {"type": "job.finished", "state": "dead", "attempts": attempts})

    # --- running one job --------------------------------------------------------------

    async def _run_job(self, entry_id: str, ctx: JobContext) -> None:
        await ctx.publish({"type": "job.started", "attempt": ctx.attempt,
                           "worker": self.worker_id, "ts_ms": now_ms()})
        if await self.queue.is_cancelled(ctx.job_id):
            ctx.cancelled.set()
        try:
            result = await self._call_handler(ctx)
        except LeaseLost as exc:
            log.warning("worker %s: %s; stopping without writing", self.worker_id, exc)
            return
        except RedisUnavailable as exc:
            log.warning("worker %s: job %s interrupted: %s", self.worker_id, ctx.job_id, exc)
            return
        await self._finish(entry_id, ctx, result)

    async def _call_handler(self, ctx: JobContext) -> JobResult | str:
        if ctx.cancelled.is_set():
            return "cancelled"
        try:
            return await self.handler(ctx)
        except asyncio.CancelledError:
            active = self.active.get(ctx.job_id)
            if active and active.lease_lost:
                raise LeaseLost(f"job {ctx.job_id}: lease lost") from None
            if ctx.cancelled.is_set() and not self._stop.is_set():
                return "cancelled"
            raise
        except (LeaseLost, RedisUnavailable):
            raise
        except TandemError as exc:
            return JobResult(state="failed", error=str(exc))
        except Exception as exc:  # a bug in a handler: record it, keep the worker alive
            log.error("worker %s: job %s crashed:\n%s", self.worker_id, ctx.job_id,
                      traceback.format_exc())
            return JobResult(state="failed", error=f"{type(exc).__name__}: {exc}")

    async def _finish(self, entry_id: str, ctx: JobContext, result: JobResult | str) -> None:
        q = self.queue
        if isinstance(result, str):
            state, output, error = result, {}, ""
        else:
            state, output, error = result.state, result.output, result.error or ""
        done = await q.client.eval(
            FINISH, 3, ctx.lease.key, keys.job(q.prefix, ctx.job_id), keys.job_stream(q.prefix),
            ctx.lease.value, state, now_ms(), json.dumps(output, default=str), error,
            keys.WORKER_GROUP, entry_id)
        if done:
            await ctx.publish({"type": "job.finished", "state": state, "error": error or None,
                               "attempt": ctx.attempt, "worker": self.worker_id})

    # --- heartbeat and cancels --------------------------------------------------------

    async def _heartbeat_once(self) -> None:
        jobs = list(self.active.items())
        if not jobs:
            return
        q = self.queue
        with redis_errors(q.where):
            flags = await q.client.mget([keys.cancel_flag(q.prefix, j) for j, _ in jobs])
        for (job_id, active), flag in zip(jobs, flags, strict=True):
            if not await active.ctx.lease.renew(active.entry_id):
                active.lease_lost = True
                active.task.cancel()
            elif flag:
                self._cancel(job_id)

    def _cancel(self, job_id: str) -> None:
        active = self.active.get(job_id)
        if active is None or active.ctx.cancelled.is_set():
            return
        active.ctx.cancelled.set()
        asyncio.get_running_loop().call_later(self.cancel_grace_s, active.task.cancel)

    async def _listen_cancels(self) -> None:
        q = self.queue
        pubsub = q.client.pubsub()
        try:
            with redis_errors(q.where):
                await pubsub.subscribe(keys.cancel_channel(q.prefix))
                while not self._stop.is_set():
                    msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if msg and msg.get("type") == "message":
                        self._cancel(msg["data"].decode())
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
