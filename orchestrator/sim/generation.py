"""One model answer being streamed: pacing, token accounting and in-stream faults.

The protocol renderers (Responses, Chat, Anthropic) walk a ``Generation``'s tokens and
turn them into their own events; faults that strike mid-stream live here so all three
behave alike: ``drop_after_tokens`` raises ``Dropped`` once k tokens went out (or just
before the terminal event), ``malformed_frame`` asks for one non-JSON frame before the
first token, and a steer request stops the token flow after the current token. A scripted
answer longer than the request's output-token limit is cut there (``max_output_tokens``).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from orchestrator.sim.brain import Reply
from orchestrator.sim.config import Fault
from orchestrator.sim.pacing import Pacer
from orchestrator.sim.tokens import tokenize

MALFORMED_FRAME = "this is not json {"

_ids = itertools.count(1)


def new_id(prefix: str) -> str:
    """Unique ids like ``resp_sim000012`` (per process)."""
    return f"{prefix}_sim{next(_ids):06d}"


class Dropped(Exception):  # a signal to the transport, not an error
    """The transport must close abruptly now (no terminal event)."""


@dataclass
class Generation:
    reply: Reply
    model: str  # the model reported to the client
    pacer: Pacer
    faults: dict[str, Fault] = field(default_factory=dict)
    stop_requested: Callable[[], bool] = lambda: False
    max_output_tokens: int | None = None
    output_tokens: int = 0
    stop_reason: str | None = None  # "steered" or "max_output_tokens" when cut short
    created_at: int = field(default_factory=lambda: int(time.time()))
    _malformed_pending: bool = False

    def __post_init__(self) -> None:
        self._malformed_pending = "malformed_frame" in self.faults
        drop = self.faults.get("drop_after_tokens")
        self._drop_after = drop.tokens if drop is not None else None

    async def start(self) -> None:
        """Wait for the first token (TTFT)."""
        await self.pacer.first_token()

    def start_wait(self) -> Awaitable[None] | None:
        """The TTFT wait to await before the first token, or None."""
        return self.pacer.first_wait()

    def take_malformed(self) -> bool:
        """True once, before the first token, when a malformed frame is due."""
        due, self._malformed_pending = self._malformed_pending, False
        return due

    @property
    def stopped(self) -> bool:
        return self.stop_reason is not None

    async def tokens(self, text: str) -> AsyncIterator[str]:
        """The tokens of ``text``, paced; stops early on a steer or at the token limit."""
        for step in self.steps(text):
            if isinstance(step, str):
                yield step
            else:
                await step

    def steps(self, text: str) -> Iterator[str | Awaitable[None]]:
        """``tokens`` without the awaits: each token (str), preceded by the pacing wait
        to await when one is due. The stop checks run after that wait, as in ``tokens``."""
        pacer = self.pacer
        for token in tokenize(text):
            if self.stopped or self._should_stop():
                return
            self._check_drop()
            if self.output_tokens:
                wait = pacer.next_wait()
                if wait is not None:
                    yield wait
            self.output_tokens += 1
            yield token

    def _should_stop(self) -> bool:
        limit = self.max_output_tokens
        if limit is not None and self.output_tokens >= limit:
            self.stop_reason = "max_output_tokens"
        elif self.output_tokens and self.stop_requested():
            self.stop_reason = "steered"
        return self.stopped

    def _check_drop(self) -> None:
        if self._drop_after is not None and self.output_tokens >= self._drop_after:
            raise Dropped()

    def before_terminal(self) -> None:
        """Called just before the terminal event: a pending drop happens now."""
        if self._drop_after is not None:
            raise Dropped()
