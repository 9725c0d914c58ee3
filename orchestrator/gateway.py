"""The model gateway: the one place the graph talks to models.

For each call it checks the budget, picks the tier's model (falling back only to models
of the same tier, never silently to another tier), streams the answer (feeding live
progress listeners), verifies the served model, prices the call and writes its receipt.
Agents see it as ``agents.base.ModelCaller``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import Any, cast

from agents.base import Turn
from orchestrator import budget
from orchestrator.config import secret
from orchestrator.control import SteerInbox
from orchestrator.errors import (
    ConfigError,
    ModelError,
    ResponseFailed,
    ServedModelMismatch,
)
from orchestrator.events import EventLog
from orchestrator.models import (
    Completed,
    EndpointConfig,
    Failed,
    Incomplete,
    Message,
    ModelClient,
    ModelRequest,
    TextDelta,
    Usage,
    make_client,
)
from orchestrator.policy import ModelEntry, Policy
from orchestrator.receipts import Receipt
from orchestrator.steering import Chunk, Redirect, with_steers

ProgressListener = Callable[[dict[str, Any]], None]
_PROGRESS_EVERY_S = 0.25
# Progress also goes to the event log (so `tandem show --follow` sees the stream), but
# rarely and only the tail of the text, to keep the log small.
_PROGRESS_LOG_EVERY_S = 1.0
_PROGRESS_LOG_TAIL_CHARS = 600


def endpoint_config(entry: ModelEntry, sim_url: str | None) -> EndpointConfig:
    """The client settings for one policy model entry (sim:// resolved to ``sim_url``)."""
    base_url = entry.base_url
    if base_url.startswith("sim://"):
        if sim_url is None:
            raise ConfigError(f"model {entry.model!r} points at the simulator (sim://) "
                              "but no simulator is running")
        base_url = sim_url
    api_key = secret(entry.api_key_env) if entry.api_key_env else None
    if entry.api_key_env and api_key is None and not entry.base_url.startswith("sim://"):
        raise ConfigError(f"model {entry.model!r} needs an API key in ${entry.api_key_env}, "
                          "which is not set")
    return EndpointConfig(
        provider=entry.provider, base_url=base_url, api_key=api_key or "sim",
        api_key_env=entry.api_key_env, connect_timeout_s=entry.connect_timeout_s,
        first_token_timeout_s=entry.first_token_timeout_s, idle_timeout_s=entry.idle_timeout_s,
        total_timeout_s=entry.total_timeout_s, max_retry_after_s=entry.max_retry_after_s,
        max_retry_wait_s=entry.max_retry_wait_s,
        steer_supported=entry.steer_supported, ca_file=entry.ca_file,
    )


def _native_steer(entry: ModelEntry) -> bool:
    return entry.provider == "openai-ws" and entry.steer_supported


class _Spent:
    """The usage of one model call's generations: the answer kept, and any the provider
    bills without it being used (redirected by a steer, failed or cut short mid-stream)."""

    __slots__ = ("cached_tokens", "estimated", "generations", "input_tokens", "output_tokens")

    def __init__(self) -> None:
        self.input_tokens = self.output_tokens = self.cached_tokens = self.generations = 0
        self.estimated = False

    def add(self, usage: Usage, *, estimated: bool = False) -> None:
        self.input_tokens += usage.input_tokens
        self.output_tokens += usage.output_tokens
        self.cached_tokens += usage.cached_tokens
        self.generations += 1
        self.estimated = self.estimated or estimated

    def add_unfinished(self, reported: Usage | None, streamed: int, request: ModelRequest) -> None:
        """A generation that ended without a usable answer: what the provider reported,
        else (a stream cut short) an estimate from what streamed (input at about four
        characters a token), is still spent."""
        if reported is not None:
            self.add(reported)
        elif streamed:
            chars = len(request.instructions or "") + sum(len(m.content)
                                                          for m in request.messages)
            self.add(Usage(input_tokens=chars // 4, output_tokens=streamed), estimated=True)


def _ended_early(model: str, event: Failed | Incomplete) -> ResponseFailed:
    if isinstance(event, Failed):
        return ResponseFailed(f"{model}: {event.error}", reason=event.code)
    return ResponseFailed(f"{model} stopped early: {event.reason}", reason=event.reason)


class ModelGateway:
    """Budgeted, receipted model calls for one job."""

    def __init__(
        self, policy: Policy, events: EventLog, *, job_id: str, sim_url: str | None = None
    ) -> None:
        self.policy = policy
        self.events = events
        self.job_id = job_id
        self.sim_url = sim_url
        self.usage: dict[str, Any] = budget.new_usage()
        self.step: int | None = None
        self.rule_id: str | None = None
        self.steps_done = 0
        self.listeners: list[ProgressListener] = []
        self._clients: dict[tuple[str, str, str, str | None], ModelClient] = {}
        self.last_receipt: Receipt | None = None
        self.in_flight: ModelClient | None = None
        self.inbox = SteerInbox()
        self._progress_logged_s = 0.0

    def begin(
        self, usage: dict[str, Any] | None, *, step: int | None, steps_done: int,
        rule_id: str | None = None,
    ) -> None:
        """Adopt the graph state's usage (and the step's routing rule) before a node runs."""
        self.rule_id = rule_id
        self.usage = dict(usage) if usage else budget.new_usage()
        self.usage["tokens"] = dict(self.usage.get("tokens", {}))
        self.step = step
        self.steps_done = steps_done

    def _client(self, entry: ModelEntry) -> ModelClient:
        key = (entry.provider, entry.base_url, entry.model, entry.ca_file)
        if key not in self._clients:
            self._clients[key] = make_client(endpoint_config(entry, self.sim_url))
        return self._clients[key]

    def warm_up(self) -> None:
        """Build every tier's first client now (imports, connection pools), so the first
        model call of a step does not pay for it."""
        for tier in self.policy.tiers.values():
            self._client(tier.models[0])

    async def __call__(
        self, *, tier: str, phase: str, instructions: str, turns: list[Turn],
        max_output_tokens: int | None = None,
    ) -> str:
        budget.check(self.policy.budgets, self.usage, tier=tier, steps_done=self.steps_done)
        entries = self._entries(tier)
        messages = [Message(role="assistant" if t.role == "assistant" else "user",
                            content=t.content) for t in turns]
        errors: list[str] = []
        for i, entry in enumerate(entries):
            request = ModelRequest(
                model=entry.model, messages=messages, instructions=instructions,
                max_output_tokens=max_output_tokens or entry.max_output_tokens,
                reasoning_effort=entry.reasoning_effort,
                metadata={"job": self.job_id, "phase": phase, "step": str(self.step or 0)},
            )
            try:
                return await self._call_one(entry, tier, phase, request, fallback_from=errors)
            except ServedModelMismatch:
                raise
            except ModelError as exc:
                errors.append(f"{entry.model}: {exc}")
                if i + 1 == len(entries):
                    raise
                self.events.emit("model.fallback", tier=tier, failed=entry.model,
                                 next=entries[i + 1].model, error=str(exc))
        raise ConfigError(f"tier {tier!r} has no models")  # unreachable: tiers have >= 1

    def _entries(self, tier: str) -> list[ModelEntry]:
        if tier not in self.policy.tiers:
            raise ConfigError(f"policy {self.policy.name!r} has no tier {tier!r}")
        return self.policy.tiers[tier].candidates()

    async def _call_one(
        self, entry: ModelEntry, tier: str, phase: str, request: ModelRequest,
        fallback_from: list[str],
    ) -> str:
        client = self._client(entry)
        self.events.emit("model.start", step=self.step, phase=phase, tier=tier, model=entry.model)
        start = time.perf_counter()
        redirect = Redirect(client, self.events, native=_native_steer(entry), step=self.step,
                            queued=self.inbox.take_pending())
        self.inbox.attach(redirect.on_steer)
        spent = _Spent()
        try:
            completed = await self._steered(client, tier, phase, request, redirect, spent)
            self.inbox.settle()  # the generation kept took its steers
        except ModelError as exc:
            # No generation took these steers: they go with the tier's next model (a
            # fallback) or the job's next call, not away with the failed one.
            self.inbox.requeue(redirect.steers)
            self._charge_failed(entry, tier, phase, spent, start, exc)
            raise
        except BaseException:  # cancelled (the job stops): what streamed is still billed
            self._charge(entry, tier, spent)
            raise
        finally:
            self.inbox.detach()
            await redirect.aclose()
        m = client.last_metrics
        served = completed.served_model or (m.served_model if m else None)
        cost = self._charge(entry, tier, spent)
        receipt = Receipt(
            job_id=self.job_id, step=self.step, phase=phase,  # type: ignore[arg-type]
            kind="model_call", tier=tier, rule_id=self.rule_id,
            requested_model=entry.model, served_model=served,
            transport=m.transport if m else None, tokens_in=spent.input_tokens,
            tokens_out=spent.output_tokens, tokens_cached=spent.cached_tokens, cost_usd=cost,
            ttft_ms=m.ttft_ms if m else None, tokens_per_s=m.tokens_per_s if m else None,
            duration_ms=(time.perf_counter() - start) * 1000,
            reasons=[f"fallback after: {e}" for e in fallback_from]
            + (["fell back to HTTP SSE"] if m and m.fell_back_to_http else []),
            features={"retries": m.retries if m else 0, "chained": m.chained if m else False,
                      **({"steered": redirect.modes} if redirect.messages else {}),
                      **({"generations": spent.generations} if spent.generations > 1 else {}),
                      **({"estimated_tokens": True} if spent.estimated else {})},
            steer=" | ".join(redirect.messages) or None,
        )
        self.last_receipt = receipt
        self.events.receipt(receipt)
        if served and served != entry.model and not entry.allow_served_model_mismatch:
            raise ServedModelMismatch(entry.model, served, endpoint=entry.base_url)
        return completed.text

    def _charge(self, entry: ModelEntry, tier: str, spent: _Spent) -> float:
        """Add what the call's generations used to the job's usage; returns their cost."""
        if not spent.generations:
            return 0.0
        cost = entry.cost_usd(spent.input_tokens, spent.output_tokens, spent.cached_tokens)
        budget.add_call(self.usage, tier, spent.input_tokens + spent.output_tokens, cost)
        return cost

    def _charge_failed(
        self, entry: ModelEntry, tier: str, phase: str, spent: _Spent, start: float,
        exc: ModelError,
    ) -> None:
        """A call that failed after the model produced output is billed by the provider:
        it counts against the budget and gets a receipt saying it failed."""
        cost = self._charge(entry, tier, spent)
        if not spent.generations:
            return
        self.events.receipt(Receipt(
            job_id=self.job_id, step=self.step, phase=phase,  # type: ignore[arg-type]
            kind="model_call", tier=tier, rule_id=self.rule_id, action="failed",
            requested_model=entry.model, tokens_in=spent.input_tokens,
            tokens_out=spent.output_tokens, tokens_cached=spent.cached_tokens, cost_usd=cost,
            duration_ms=(time.perf_counter() - start) * 1000, reasons=[f"failed: {exc}"],
            features={"generations": spent.generations, "estimated_tokens": spent.estimated},
        ))

    async def _steered(
        self, client: ModelClient, tier: str, phase: str, base: ModelRequest,
        redirect: Redirect, spent: _Spent,
    ) -> Completed:
        """Stream ``base``; a steer mid-stream redirects it (see ``steering.py``). Every
        generation's usage goes to ``spent``, the discarded ones' too."""
        request = with_steers(base, redirect.waiting)
        while True:
            try:
                completed = await self._drain(client, tier, phase, request, redirect, spent)
                if not redirect.should_reissue(ended_ok=True):
                    return completed
            except ModelError:
                if not redirect.should_reissue(ended_ok=False):
                    raise
            request = redirect.next_request(base)

    async def _drain(
        self, client: ModelClient, tier: str, phase: str, request: ModelRequest,
        redirect: Redirect, spent: _Spent,
    ) -> Completed:
        chunks: list[str] = []
        start = last_emit = time.perf_counter()
        tokens = streamed = 0
        reported: Usage | None = None
        self.in_flight = client
        try:
            stream = cast(AsyncGenerator[Any, None], client.stream(request))
            async with aclosing(stream):
                async for event in stream:
                    if isinstance(event, TextDelta):
                        streamed += 1
                        verdict = redirect.on_text()
                        if verdict is Chunk.DROP:
                            continue
                        if verdict is Chunk.RESTART:
                            chunks.clear()
                            tokens, start = 0, time.perf_counter()
                        chunks.append(event.text)
                        tokens += 1
                        now = time.perf_counter()
                        if now - last_emit >= _PROGRESS_EVERY_S:
                            last_emit = now
                            self._progress(tier, phase, request.model, tokens, chunks,
                                           now - start)
                    elif isinstance(event, Usage):
                        reported = event
                    elif isinstance(event, Completed):
                        if chunks:
                            self._progress(tier, phase, request.model, tokens, chunks,
                                           time.perf_counter() - start, final=True)
                        spent.add(event.usage)
                        return event
                    elif isinstance(event, (Failed, Incomplete)):
                        raise _ended_early(request.model, event)
            raise ResponseFailed(f"{request.model}: stream ended without a terminal event")
        except BaseException:
            spent.add_unfinished(reported, streamed, request)
            raise
        finally:
            self.in_flight = None

    def _progress(
        self, tier: str, phase: str, model: str, tokens: int, chunks: list[str],
        elapsed_s: float, *, final: bool = False,
    ) -> None:
        """Live progress for listeners; now and then (never the final flush) also logged
        with the tail of the text (``tail: true``), so a follower of the event log sees the
        stream too. In-process views take the full events and skip the tail ones."""
        fields = {"step": self.step, "tier": tier, "phase": phase, "model": model,
                  "tokens": tokens, "elapsed_s": round(elapsed_s, 3)}
        now = time.perf_counter()
        if not final and now - self._progress_logged_s >= _PROGRESS_LOG_EVERY_S:
            self._progress_logged_s = now
            tail = "".join(chunks)[-_PROGRESS_LOG_TAIL_CHARS:]
            self.events.emit("model.progress", **fields, text=tail, tail=True)
        if not self.listeners:
            return
        event = {"type": "model.progress", **fields, "text": "".join(chunks), "final": final}
        for listener in self.listeners:
            listener(event)

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
