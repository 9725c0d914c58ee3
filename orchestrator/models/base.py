"""The model-client seam: the ``ModelClient`` protocol, ``complete()``, and what every
client shares (retries with backoff, per-call metrics).

Stream contract: ``stream(request)`` yields ``TextDelta`` / ``ToolCall`` / ``Usage`` events
and ends after exactly one terminal event — ``Completed``, ``Failed`` (the provider ended
the response as failed) or ``Incomplete`` (stopped early: ``max_output_tokens``,
``content_filter``, or ``interrupted`` after ``interrupt()``). Transport and protocol
problems are raised as typed ``ModelError``s instead. Retries happen only before the first
event was yielded; a half-delivered stream is never replayed to the caller.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from typing import Protocol, runtime_checkable

from orchestrator.errors import (
    ModelConnectError,
    RateLimited,
    ResponseFailed,
    ServerError,
    StreamInterrupted,
    TandemError,
)
from orchestrator.models.types import (
    CallMetrics,
    Completed,
    EndpointConfig,
    Failed,
    Incomplete,
    ModelEvent,
    ModelRequest,
)

RETRYABLE = (RateLimited, ServerError, ModelConnectError, StreamInterrupted)


@runtime_checkable
class ModelClient(Protocol):
    """What the graph and the agents use to talk to a model."""

    last_metrics: CallMetrics | None

    def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """Stream one response (see the module docstring for the contract)."""
        ...

    async def interrupt(self, message: str | None = None) -> None:
        """Steer (``message``, where supported) or abort the in-flight stream."""
        ...

    async def aclose(self) -> None:
        """Close connections; the client cannot be used afterwards."""
        ...


async def complete(client: ModelClient, request: ModelRequest) -> Completed:
    """Drain one stream; return its ``Completed`` or raise a typed error."""
    async with aclosing(client.stream(request)) as events:  # type: ignore[type-var]
        async for event in events:
            if isinstance(event, Completed):
                return event
            if isinstance(event, Failed):
                raise ResponseFailed(f"response failed: {event.error}", reason=event.code)
            if isinstance(event, Incomplete):
                raise ResponseFailed(
                    f"response incomplete: {event.reason}", reason=event.reason
                )
    raise TandemError("model stream ended without a terminal event")  # a client bug


class Recorder:
    """Collects one call's measurements; ``metrics()`` turns them into ``CallMetrics``."""

    __slots__ = (
        "transport", "model", "t0", "first_t", "retries", "retry_wait_s",
        "fell_back", "chained", "steered", "n_deltas", "completed", "attempt_t0",
    )

    def __init__(self, transport: str, model: str) -> None:
        self.transport = transport
        self.model = model
        self.t0 = time.perf_counter()
        self.first_t: float | None = None
        self.retries = 0
        self.retry_wait_s = 0.0
        self.fell_back = False
        self.chained = False
        self.steered = False
        self.n_deltas = 0
        self.completed: Completed | None = None
        self.attempt_t0 = self.t0

    def start_attempt(self) -> None:
        self.attempt_t0 = time.perf_counter()

    def elapsed_s(self) -> float:
        """Seconds since the current attempt started."""
        return time.perf_counter() - self.attempt_t0

    def mark_first(self) -> None:
        if self.first_t is None:
            self.first_t = time.perf_counter()

    def metrics(self, done: Completed | None) -> CallMetrics:
        end = time.perf_counter()
        usage = done.usage if done is not None else None
        out_tokens = usage.output_tokens if usage and usage.output_tokens else self.n_deltas
        ttft_ms = (self.first_t - self.t0) * 1000 if self.first_t is not None else None
        gen_s = end - self.first_t if self.first_t is not None else 0.0
        return CallMetrics(
            transport=self.transport,
            requested_model=self.model,
            served_model=done.served_model if done else None,
            ttft_ms=ttft_ms,
            duration_ms=(end - self.t0) * 1000,
            tokens_per_s=out_tokens / gen_s if gen_s > 0 and out_tokens else None,
            input_tokens=usage.input_tokens if usage else 0,
            output_tokens=out_tokens,
            cached_tokens=usage.cached_tokens if usage else 0,
            retries=self.retries,
            retry_wait_ms=self.retry_wait_s * 1000,
            fell_back_to_http=self.fell_back,
            chained=self.chained,
            steered=self.steered,
        )


def retry_delay_s(cfg: EndpointConfig, attempt: int, exc: Exception) -> float:
    """Wait before retry ``attempt`` (1-based): Retry-After if given, else backoff + jitter."""
    if isinstance(exc, RateLimited) and exc.retry_after_s is not None:
        return exc.retry_after_s
    backoff = min(cfg.backoff_max_s, cfg.backoff_base_s * 2 ** (attempt - 1))
    return backoff * random.uniform(0.5, 1.0)


def next_retry_wait_s(cfg: EndpointConfig, rec: Recorder, exc: Exception) -> float:
    """The wait before the next retry (counted in ``rec``), or ``exc`` raised when the
    server asks for more than ``max_retry_after_s`` or the call's waits would pass
    ``max_retry_wait_s`` (a RateLimited then says how long the server asked to wait)."""
    delay_s = retry_delay_s(cfg, rec.retries + 1, exc)
    asked = exc.retry_after_s if isinstance(exc, RateLimited) else None
    if asked is not None and asked > cfg.max_retry_after_s:
        raise _not_waiting(exc, f"over max_retry_after_s ({cfg.max_retry_after_s:g} s)")
    if rec.retry_wait_s + delay_s > cfg.max_retry_wait_s:
        if asked is not None:
            raise _not_waiting(exc, f"which would pass max_retry_wait_s "
                                    f"({cfg.max_retry_wait_s:g} s) for this call")
        raise exc
    rec.retries += 1
    rec.retry_wait_s += delay_s
    return delay_s


def _not_waiting(exc: Exception, why: str) -> RateLimited:
    assert isinstance(exc, RateLimited) and exc.retry_after_s is not None
    message = str(exc)
    if exc.endpoint and message.endswith(f" [{exc.endpoint}]"):
        message = message[: -len(exc.endpoint) - 3]
    new = RateLimited(
        f"{message}; the server asked to wait {exc.retry_after_s:g} s, {why}: not waiting",
        endpoint=exc.endpoint, code=exc.code, retry_after_s=exc.retry_after_s,
    )
    new.__cause__ = exc
    return new


async def with_retries(
    cfg: EndpointConfig,
    rec: Recorder,
    attempt: Callable[[], AsyncGenerator[ModelEvent, None]],
) -> AsyncGenerator[ModelEvent, None]:
    """Run ``attempt()`` until it yields its first event, retrying retryable errors; then
    pass the rest of that stream through untouched (never retried)."""
    while True:
        async with aclosing(attempt()) as events:
            try:
                first = await anext(events)
            except StopAsyncIteration:
                return
            except RETRYABLE as exc:
                if rec.retries >= cfg.max_retries:
                    raise
                await asyncio.sleep(next_retry_wait_s(cfg, rec, exc))
                continue
            yield first
            async for event in events:
                yield event
            return
