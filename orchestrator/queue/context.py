"""What a job handler receives (``JobContext``) and returns (``JobResult``)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from orchestrator.queue.lease import Lease

if TYPE_CHECKING:
    from orchestrator.queue.jobs import JobQueue
    from orchestrator.store.redis_saver import AsyncRedisSaver


@dataclass
class JobResult:
    """A handler's verdict: ``succeeded`` or ``failed`` (with ``error``), plus output."""

    state: Literal["succeeded", "failed"] = "succeeded"
    output: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass
class JobContext:
    """One run of one job on one worker.

    ``lease`` is the fence to hand to the checkpointer (``checkpointer()`` does it);
    ``cancelled`` is set when a user cancels the job (the task is cancelled after a grace
    period); ``publish`` appends to the job's event stream.
    """

    job_id: str
    spec: dict[str, Any]
    attempt: int
    worker_id: str
    lease: Lease
    queue: JobQueue
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)

    async def publish(self, event: dict[str, Any]) -> None:
        await self.queue.publish(self.job_id, event)

    def listener(self) -> Callable[[dict[str, Any]], None]:
        """A sync callback (e.g. for ``EventLog.subscribe``) that forwards events to the
        job's stream without blocking the caller; callable from any thread."""
        loop = asyncio.get_running_loop()
        pending: set[asyncio.Task[None]] = set()

        def forward(event: dict[str, Any]) -> None:
            def start() -> None:
                task = loop.create_task(self.publish(event))
                pending.add(task)
                task.add_done_callback(pending.discard)

            loop.call_soon_threadsafe(start)

        return forward

    def checkpointer(self, ttl_s: int | None = None) -> AsyncRedisSaver:
        """The Redis saver for this job, fenced by its lease."""
        from orchestrator.store.redis_saver import AsyncRedisSaver

        return AsyncRedisSaver(self.queue.client, prefix=self.queue.prefix, ttl_s=ttl_s,
                               fence=self.lease)


Handler = Callable[[JobContext], Awaitable[JobResult]]
