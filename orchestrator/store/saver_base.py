"""What the sync and asyncio Redis savers share: the fence protocol, string channel
versions, and the packing of a fenced write."""

from __future__ import annotations

import random
from typing import Any, Protocol

from langgraph.checkpoint.base import BaseCheckpointSaver, SerializerProtocol

from orchestrator.store.plans import Plans, WriteCall

NO_FENCE_KEY = "tandem:no-fence"


class Fence(Protocol):
    """A worker's hold on a job: ``key`` must still hold ``value`` for a write to pass."""

    @property
    def key(self) -> str:
        """The Redis key that holds the current lease."""

    @property
    def value(self) -> str:
        """What that key must hold for this worker's writes to pass."""

    def check(self) -> None:
        """Raise ``LeaseLost`` if the hold is gone."""

    async def acheck(self) -> None:
        """Raise ``LeaseLost`` if the hold is gone."""


def next_version(current: str | int | float | None) -> str:
    """Monotonic string versions with a random tail (unique per branch)."""
    if current is None:
        number = 0
    elif isinstance(current, int | float):
        number = int(current)
    else:
        number = int(str(current).split(".")[0])
    return f"{number + 1:032}.{random.random():016}"


def fence_args(fence: Fence | None, call: WriteCall) -> tuple[list[str], list[Any]]:
    argv: list[Any] = [fence.value if fence else ""]
    for cmd in call.commands:
        argv += [len(cmd), *cmd]
    return [fence.key if fence else NO_FENCE_KEY], argv


class SaverBase(BaseCheckpointSaver[str]):
    """Settings shared by both savers: key prefix, TTL, fence, serializer."""

    def __init__(
        self,
        prefix: str,
        ttl_s: int | None,
        fence: Fence | None,
        serde: SerializerProtocol | None,
    ) -> None:
        super().__init__(serde=serde)
        self.prefix = prefix
        self.ttl_s = ttl_s
        self.fence = fence

    @property
    def plans(self) -> Plans:
        # Built per call: LangGraph may swap ``serde`` after construction.
        return Plans(self.prefix, self.serde, self.ttl_s * 1000 if self.ttl_s else None)

    def get_next_version(self, current: str | None, channel: None) -> str:
        return next_version(current)
