"""LangGraph checkpoint savers on core Redis types (sync ``RedisSaver`` and asyncio
``AsyncRedisSaver``): no RedisJSON or RediSearch, so they run on Redis 7, Valkey and
managed Redis.

Layout (key names in ``orchestrator/keys.py``): per thread and namespace a ZSET of
checkpoint ids, one HASH per checkpoint holding the checkpoint, its metadata, its parent
and its pending writes, and one HASH of channel values per (channel, version). Channel
versions are strings with a random suffix, so a fork never writes into another branch's
values. Every write is one Lua call that first checks the job's fence (lease), so a
worker that lost its lease cannot write (``LeaseLost``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import redis
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    SerializerProtocol,
)
from redis import exceptions as rexc

from orchestrator.keys import DEFAULT_PREFIX
from orchestrator.store.connection import (
    describe,
    redis_errors,
    safe_url,
    sync_client,
)
from orchestrator.store.plans import FENCED_WRITE, Batch, Plan, WriteCall
from orchestrator.store.saver_base import Fence, SaverBase, fence_args, next_version


class RedisSaver(SaverBase):
    """Synchronous saver. ``client``: a ``redis.Redis`` (binary responses) or a URL."""

    def __init__(
        self,
        client: redis.Redis | str,
        *,
        prefix: str = DEFAULT_PREFIX,
        ttl_s: int | None = None,
        fence: Fence | None = None,
        serde: SerializerProtocol | None = None,
    ) -> None:
        super().__init__(prefix, ttl_s, fence, serde)
        if isinstance(client, str):
            self.where = safe_url(client)
            self.client = sync_client(client)
        else:
            self.where = describe(client)
            self.client = client
        self._sha: str | None = None

    # --- driver -----------------------------------------------------------------------

    def _batch(self, batch: Batch) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for cmd in batch:
            pipe.execute_command(*cmd)
        return pipe.execute()

    def _write(self, call: WriteCall) -> None:
        if not call.commands:
            return
        keys, argv = fence_args(self.fence, call)
        if self._sha is None:
            self._sha = self.client.script_load(FENCED_WRITE)
        try:
            self.client.evalsha(self._sha, len(keys), *keys, *argv)
        except rexc.NoScriptError:  # the server was restarted or flushed its scripts
            self._sha = self.client.script_load(FENCED_WRITE)
            self.client.evalsha(self._sha, len(keys), *keys, *argv)

    def _drive(self, plan: Plan) -> Iterator[Any]:
        value: Any = None
        with redis_errors(self.where):
            while True:
                try:
                    step = plan.send(value)
                except StopIteration as stop:
                    return stop.value
                if isinstance(step, Batch):
                    value = self._batch(step)
                elif isinstance(step, WriteCall):
                    self._write(step)
                    value = None
                else:
                    value = None
                    yield step

    def _run(self, plan: Plan) -> Any:
        gen = self._drive(plan)
        try:
            while True:
                next(gen)
        except StopIteration as stop:
            return stop.value

    # --- BaseCheckpointSaver ----------------------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self._run(self.plans.get_tuple(config))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        plan = self.plans.listing(config, filter=filter, before=before, limit=limit)
        yield from self._drive(plan)

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return self._run(self.plans.put(config, checkpoint, metadata, new_versions))

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        self._run(self.plans.put_writes(config, writes, task_id, task_path))

    def delete_thread(self, thread_id: str) -> None:
        self._run(self.plans.delete_thread(thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        self._run(self.plans.delete_for_runs(run_ids))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self._run(self.plans.copy_thread(source_thread_id, target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        self._run(self.plans.prune(thread_ids, strategy))

    # The async interface of the sync saver runs the sync one in a worker thread.

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        items = await asyncio.to_thread(
            lambda: list(self.list(config, filter=filter, before=before, limit=limit))
        )
        for item in items:
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await asyncio.to_thread(self.delete_thread, thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await asyncio.to_thread(self.delete_for_runs, run_ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await asyncio.to_thread(self.copy_thread, source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await asyncio.to_thread(self.prune, thread_ids, strategy=strategy)


from orchestrator.store.async_saver import AsyncRedisSaver  # noqa: E402

__all__ = ["AsyncRedisSaver", "Fence", "RedisSaver", "next_version"]
