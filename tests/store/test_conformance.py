"""The official checkpointer conformance suite against a real redis-server."""

from __future__ import annotations

import uuid

import redis
import redis.asyncio as aredis
from langgraph.checkpoint.conformance import checkpointer_test, validate

from orchestrator.store.redis_saver import AsyncRedisSaver, RedisSaver


async def test_async_saver_conformance_is_full(redis_url: str) -> None:
    client = aredis.Redis.from_url(redis_url)

    @checkpointer_test(name="AsyncRedisSaver")
    async def factory():  # type: ignore[no-untyped-def]
        yield AsyncRedisSaver(client, prefix=f"conf{uuid.uuid4().hex[:8]}")

    report = await validate(factory)
    await client.aclose()
    report.print_report()
    failures = {k: r.failures for k, r in report.results.items() if r.failures}
    assert report.conformance_level() == "FULL", failures
    assert all(r.detected for r in report.results.values())


async def test_sync_saver_conformance_is_full(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)

    @checkpointer_test(name="RedisSaver")
    async def factory():  # type: ignore[no-untyped-def]
        yield RedisSaver(client, prefix=f"conf{uuid.uuid4().hex[:8]}", ttl_s=3600)

    report = await validate(factory)
    client.close()
    failures = {k: r.failures for k, r in report.results.items() if r.failures}
    assert report.conformance_level() == "FULL", failures
    assert all(r.detected for r in report.results.values())
