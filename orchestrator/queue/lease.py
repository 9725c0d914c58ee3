"""The per-job lease with a fencing token.

``lease:<job>`` holds ``<worker>:<token>`` with a ``PX`` expiry; the token comes from
``INCR fence:<job>``, so every grant is newer than all before it. The heartbeat renews
the lease and, in the same Lua call, resets the idle time of the worker's stream entry
(only while the worker still owns it). The checkpoint saver checks the lease atomically
with each write, so a worker that lost its lease can never advance the job.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from orchestrator import keys
from orchestrator.errors import LeaseLost
from orchestrator.store.connection import describe, redis_errors

ACQUIRE = """
local cur = redis.call('GET', KEYS[1])
if cur and string.sub(cur, 1, #ARGV[1] + 1) ~= ARGV[1] .. ':' then return false end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. token, 'PX', ARGV[2])
return token
"""

RENEW = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local p = redis.call('XPENDING', KEYS[2], ARGV[3], ARGV[4], ARGV[4], 1)
if p[1] and p[1][2] == ARGV[5] then
  redis.call('XCLAIM', KEYS[2], ARGV[3], ARGV[5], 0, ARGV[4], 'JUSTID')
end
return 1
"""

RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass
class Lease:
    """This worker's hold on one job; implements the saver's ``Fence``."""

    client: Any  # redis.asyncio.Redis (binary responses)
    prefix: str
    job_id: str
    worker_id: str
    token: int
    ttl_ms: int
    loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)

    @property
    def key(self) -> str:
        return keys.lease(self.prefix, self.job_id)

    @property
    def value(self) -> str:
        return f"{self.worker_id}:{self.token}"

    async def acheck(self) -> None:
        with redis_errors(describe(self.client)):
            current = await self.client.get(self.key)
        if current is None or current.decode() != self.value:
            holder = current.decode() if current else "nobody (expired)"
            raise LeaseLost(
                f"job {self.job_id}: lease {self.value} is no longer current "
                f"(held by {holder})"
            )

    def check(self) -> None:
        """Sync check, from a thread other than the lease's event loop."""
        assert self.loop is not None, "check() needs the loop the lease was acquired on"
        asyncio.run_coroutine_threadsafe(self.acheck(), self.loop).result()

    async def renew(self, stream_entry: str) -> bool:
        """Extend the lease and keep the stream entry ours; False when it is lost."""
        with redis_errors(describe(self.client)):
            ok = await self.client.eval(
                RENEW, 2, self.key, keys.job_stream(self.prefix),
                self.value, self.ttl_ms, keys.WORKER_GROUP, stream_entry, self.worker_id,
            )
        return bool(ok)

    async def release(self) -> None:
        with redis_errors(describe(self.client)):
            await self.client.eval(RELEASE, 1, self.key, self.value)


async def acquire(
    client: Any, prefix: str, job_id: str, worker_id: str, ttl_ms: int
) -> Lease | None:
    """A new lease with a new fencing token, or None while another worker holds one."""
    with redis_errors(describe(client)):
        token = await client.eval(
            ACQUIRE, 2, keys.lease(prefix, job_id), keys.fence(prefix, job_id),
            worker_id, ttl_ms,
        )
    if token is None:
        return None
    return Lease(client, prefix, job_id, worker_id, int(token), ttl_ms, asyncio.get_running_loop())
