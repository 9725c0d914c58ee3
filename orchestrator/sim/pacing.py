"""Token pacing: time to first token, then a steady rate with seeded jitter.

The pacer keeps a schedule (token i is due at ``start + i / tokens_per_s``) and sleeps only
when it is ahead of that schedule by at least ``_MIN_SLEEP_S``, so fast profiles do not
pay one event-loop sleep per token and a slow consumer never makes later tokens burst late.
``before_wait`` (set by a transport that batches its writes) runs before every wait, so
what was produced so far goes out before the generator pauses. ``first_wait``/``next_wait``
return the wait to await, or None when none is due (most tokens of a fast or unpaced
profile): the renderers then produce the next event without an await.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable

from orchestrator.sim.config import ModelProfile

_MIN_SLEEP_S = 0.004
# An unpaced stream still yields to the event loop this often, so one long answer cannot
# starve the server's other connections.
_UNPACED_YIELD_EVERY = 32


class Pacer:
    def __init__(
        self,
        profile: ModelProfile,
        seed: int,
        extra_ttft_ms: float = 0.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.profile = profile
        self._seed = seed
        self._rng: random.Random | None = None  # only jittered profiles draw from it
        self._extra_ttft_s = extra_ttft_ms / 1000.0
        self._due_s = 0.0
        self._n_unpaced = 0
        self._clock = clock
        self._sleep = sleep
        self.before_wait: Callable[[], Awaitable[None]] | None = None

    async def _wait(self, delay_s: float) -> None:
        if self.before_wait is not None:
            await self.before_wait()
        await self._sleep(delay_s)

    async def _wait_first(self, delay_s: float) -> None:
        await self._wait(delay_s)
        self._due_s = self._clock()

    def _jittered(self, value: float) -> float:
        spread = self.profile.jitter
        if not spread:
            return value
        if self._rng is None:
            self._rng = random.Random(self._seed)
        return value * (1.0 + spread * self._rng.uniform(-1.0, 1.0))

    def first_wait(self) -> Awaitable[None] | None:
        """The time to first token (plus any injected slow start) to await, or None."""
        delay_s = self._jittered(self.profile.ttft_ms / 1000.0) + self._extra_ttft_s
        if delay_s > 0:
            return self._wait_first(delay_s)
        self._due_s = self._clock()
        return None

    def next_wait(self) -> Awaitable[None] | None:
        """The wait until the next token is due, or None when it is due already
        (unpaced profiles only yield to the loop now and then)."""
        rate = self.profile.tokens_per_s
        if rate <= 0:
            self._n_unpaced += 1
            if self._n_unpaced % _UNPACED_YIELD_EVERY == 0:
                return self._wait(0)
            return None
        self._due_s += self._jittered(1.0 / rate)
        ahead_s = self._due_s - self._clock()
        return self._wait(ahead_s) if ahead_s >= _MIN_SLEEP_S else None

    async def first_token(self) -> None:
        """Wait out the time to first token (plus any injected slow start)."""
        wait = self.first_wait()
        if wait is not None:
            await wait

    async def next_token(self) -> None:
        """Wait until the next token is due."""
        wait = self.next_wait()
        if wait is not None:
            await wait
