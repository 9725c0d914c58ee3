"""``JobQueue``: submit, cancel, inspect jobs and their event streams in Redis.

A job is a HASH (its record) plus one entry in the job stream, read by the ``workers``
consumer group (``worker.py``). Events of running jobs go to a per-job stream capped
with ``MAXLEN ~``, so ``tandem show --follow`` works from any machine.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aredis
from redis import exceptions as rexc

from orchestrator import keys
from orchestrator.errors import JobNotFound
from orchestrator.store.connection import async_client, describe, redis_errors, safe_url

TERMINAL = ("succeeded", "failed", "cancelled", "dead")
STREAM_MAXLEN = 100_000
EVENTS_MAXLEN = 10_000
DEAD_MAXLEN = 10_000


def now_ms() -> int:
    return int(time.time() * 1000)


def new_job_id() -> str:
    return f"{time.strftime('%Y%m%d')}-{secrets.token_hex(4)}"


def _decode(fields: dict[bytes, bytes]) -> dict[str, Any]:
    out: dict[str, Any] = {k.decode(): v.decode() for k, v in fields.items()}
    for name in ("spec", "result"):
        if out.get(name):
            out[name] = json.loads(out[name])
    for name in ("attempts", "completions", "created_ms", "started_ms", "finished_ms"):
        if name in out:
            out[name] = int(out[name])
    return out


class JobQueue:
    """The job queue of one deployment (``prefix``) on one Redis."""

    def __init__(self, client: aredis.Redis | str, prefix: str = keys.DEFAULT_PREFIX) -> None:
        self._url = client if isinstance(client, str) else None
        self._client = None if isinstance(client, str) else client
        self.where = safe_url(client) if isinstance(client, str) else describe(client)
        self.prefix = prefix

    @property
    def client(self) -> Any:  # redis.asyncio.Redis (binary responses)
        if self._client is None:
            assert self._url is not None
            self._client = async_client(self._url)
        return self._client

    async def ensure_group(self) -> None:
        """Create the consumer group (from the stream's start) if it is missing."""
        with redis_errors(self.where):
            try:
                await self.client.xgroup_create(
                    keys.job_stream(self.prefix), keys.WORKER_GROUP, id="0", mkstream=True
                )
            except rexc.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def submit(self, spec: dict[str, Any]) -> str:
        """Queue a job; returns its id."""
        job_id = str(spec.get("job_id") or new_job_id())
        created = now_ms()
        p = self.prefix
        await self.ensure_group()
        with redis_errors(self.where):
            pipe = self.client.pipeline(transaction=True)
            pipe.hset(keys.job(p, job_id), mapping={
                "id": job_id, "spec": json.dumps(spec), "state": "queued",
                "created_ms": created, "attempts": 0,
            })
            pipe.zadd(keys.jobs_index(p), {job_id: created})
            pipe.xadd(keys.job_stream(p), {"job_id": job_id, "submitted_ms": created},
                      maxlen=STREAM_MAXLEN, approximate=True)
            await pipe.execute()
        await self.publish(job_id, {"type": "job.queued"})
        return job_id

    async def status(self, job_id: str) -> dict[str, Any]:
        with redis_errors(self.where):
            fields = await self.client.hgetall(keys.job(self.prefix, job_id))
        if not fields:
            raise JobNotFound(f"no job {job_id!r} in Redis at {self.where} (prefix {self.prefix})")
        return _decode(fields)

    async def list_jobs(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest ``limit`` jobs, newest first."""
        with redis_errors(self.where):
            ids = await self.client.zrevrange(keys.jobs_index(self.prefix), 0, limit - 1)
            pipe = self.client.pipeline(transaction=False)
            for job_id in ids:
                pipe.hgetall(keys.job(self.prefix, job_id.decode()))
            rows = await pipe.execute()
        return [_decode(r) for r in rows if r]

    async def cancel(self, job_id: str) -> str:
        """Ask for a job to stop; returns its state as seen now. A queued job is
        cancelled when a worker takes it; a running one within a heartbeat."""
        state = (await self.status(job_id))["state"]
        if state in TERMINAL:
            return str(state)
        p = self.prefix
        with redis_errors(self.where):
            pipe = self.client.pipeline(transaction=True)
            pipe.set(keys.cancel_flag(p, job_id), "1", ex=keys.JOB_AUX_TTL_S)
            pipe.publish(keys.cancel_channel(p), job_id)
            await pipe.execute()
        await self.publish(job_id, {"type": "job.cancel_requested"})
        return str(state)

    async def is_cancelled(self, job_id: str) -> bool:
        with redis_errors(self.where):
            return bool(await self.client.exists(keys.cancel_flag(self.prefix, job_id)))

    async def publish(self, job_id: str, event: dict[str, Any]) -> None:
        """Append an event to the job's stream (``ts`` and ``job_id`` added)."""
        body = {"ts": time.time(), "job_id": job_id, **event}
        stream = keys.job_events(self.prefix, job_id)
        with redis_errors(self.where):
            pipe = self.client.pipeline(transaction=False)
            pipe.xadd(stream, {"event": json.dumps(body, default=str)},
                      maxlen=EVENTS_MAXLEN, approximate=True)
            pipe.expire(stream, keys.JOB_AUX_TTL_S)
            await pipe.execute()

    async def follow(
        self, job_id: str, *, from_id: str = "0", block_ms: int = 1000, until_finished: bool = True
    ) -> AsyncIterator[dict[str, Any]]:
        """The job's events from ``from_id`` on, waiting for new ones; stops after
        ``job.finished`` (or runs forever with ``until_finished=False``)."""
        stream = keys.job_events(self.prefix, job_id)
        last = from_id
        while True:
            with redis_errors(self.where):
                found = await self.client.xread({stream: last}, block=block_ms, count=100)
            if not found and until_finished and (await self.status(job_id))["state"] in TERMINAL:
                return  # finished, and its last events are gone (the stream expired)
            for _, entries in found:
                for entry_id, fields in entries:
                    last = entry_id.decode()
                    event = json.loads(fields[b"event"])
                    yield event
                    if until_finished and event.get("type") == "job.finished":
                        return

    async def dead_letters(self, limit: int = 100) -> list[dict[str, Any]]:
        with redis_errors(self.where):
            rows = await self.client.xrevrange(keys.dead_letters(self.prefix), count=limit)
        return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in rows]
