"""``AsyncRedisSaver``: the asyncio Redis checkpoint saver (layout in ``redis_saver.py``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, TypeVar

import redis.asyncio as aredis
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
from orchestrator.store.connection import async_client, describe, redis_errors, safe_url
from orchestrator.store.plans import FENCED_WRITE, Batch, Plan, WriteCall
from orchestrator.store.saver_base import Fence, SaverBase, fence_args

T = TypeVar("T")


class AsyncRedisSaver(SaverBase):
    """Asyncio saver. ``client``: a ``redis.asyncio.Redis`` (binary responses) or a URL
    (then a client on the shared bounded pool of the running loop is used).

    Sync methods work from other threads than the loop's (as in LangGraph's own async
    savers), e.g. ``graph.get_state`` called from a thread pool.
    """

    def __init__(
        self,
        client: aredis.Redis | str,
        *,
        prefix: str = DEFAULT_PREFIX,
        ttl_s: int | None = None,
        fence: Fence | None = None,
        serde: SerializerProtocol | None = None,
    ) -> None:
        super().__init__(prefix, ttl_s, fence, serde)
        self._url = client if isinstance(client, str) else None
        self._client = None if isinstance(client, str) else client
        self.where = safe_url(client) if isinstance(client, str) else describe(client)
        self._sha: str | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        try:
            self.loop = asyncio.get_running_loop()
        except RuntimeError:
            pass

    @property
    def client(self) -> aredis.Redis:
        self.loop = asyncio.get_running_loop()
        if self._client is None:
            assert self._url is not None
            self._client = async_client(self._url)
        return self._client

    async def __aenter__(self) -> AsyncRedisSaver:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Nothing to release: connections belong to the shared pool."""

    # --- driver -----------------------------------------------------------------------

    async def _batch(self, batch: Batch) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for cmd in batch:
            pipe.execute_command(*cmd)
        return await pipe.execute()

    async def _write(self, call: WriteCall) -> None:
        if not call.commands:
            return
        keys, argv = fence_args(self.fence, call)
        client = self.client
        if self._sha is None:
            self._sha = await client.script_load(FENCED_WRITE)
        try:
            await client.evalsha(self._sha, len(keys), *keys, *argv)
        except rexc.NoScriptError:  # the server was restarted or flushed its scripts
            self._sha = await client.script_load(FENCED_WRITE)
            await client.evalsha(self._sha, len(keys), *keys, *argv)

    async def _drive(self, plan: Plan) -> AsyncIterator[Any]:
        """Yield the plan's items; its return value comes last, wrapped in ``_Done``."""
        value: Any = None
        with redis_errors(self.where):
            while True:
                try:
                    step = plan.send(value)
                except StopIteration as stop:
                    yield _Done(stop.value)
                    return
                if isinstance(step, Batch):
                    value = await self._batch(step)
                elif isinstance(step, WriteCall):
                    await self._write(step)
                    value = None
                else:
                    value = None
                    yield step

    async def _run(self, plan: Plan) -> Any:
        result = None
        async for item in self._drive(plan):
            if isinstance(item, _Done):
                result = item.value
        return result

    def _sync(self, coro: Any) -> Any:
        if self.loop is None:
            return asyncio.run(coro)
        try:
            if asyncio.get_running_loop() is self.loop:
                coro.close()
                raise asyncio.InvalidStateError(
                    "synchronous calls to AsyncRedisSaver must come from another thread "
                    "than its event loop's; use the async methods (aget_tuple, ...)"
                )
        except RuntimeError:
            pass
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    # --- async interface --------------------------------------------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await self._run(self.plans.get_tuple(config))

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        plan = self.plans.listing(config, filter=filter, before=before, limit=limit)
        async for item in self._drive(plan):
            if not isinstance(item, _Done):
                yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await self._run(self.plans.put(config, checkpoint, metadata, new_versions))

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await self._run(self.plans.put_writes(config, writes, task_id, task_path))

    async def adelete_thread(self, thread_id: str) -> None:
        await self._run(self.plans.delete_thread(thread_id))

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await self._run(self.plans.delete_for_runs(run_ids))

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await self._run(self.plans.copy_thread(source_thread_id, target_thread_id))

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await self._run(self.plans.prune(thread_ids, strategy))

    # --- sync interface (from other threads) -----------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self._sync(self.aget_tuple(config))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        async def collect() -> list[CheckpointTuple]:
            return [t async for t in self.alist(config, filter=filter, before=before, limit=limit)]

        yield from self._sync(collect())

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return self._sync(self.aput(config, checkpoint, metadata, new_versions))

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        self._sync(self.aput_writes(config, writes, task_id, task_path))

    def delete_thread(self, thread_id: str) -> None:
        self._sync(self.adelete_thread(thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        self._sync(self.adelete_for_runs(run_ids))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self._sync(self.acopy_thread(source_thread_id, target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        self._sync(self.aprune(thread_ids, strategy=strategy))


class _Done:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value
