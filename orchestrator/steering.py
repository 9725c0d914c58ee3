"""Steering one model call: what the gateway does when a steer arrives mid-generation.

- The endpoint supports ``response.steer`` (Responses over WebSocket with
  ``steer_supported``): the client sends it and the same stream continues with a
  successor response; text of the interrupted response is dropped.
- Otherwise (HTTP, a steer before the stream's first text, or a steer the server refused
  or could not take yet): the stream is aborted, its partial output dropped, and the
  request re-issued with the steering message appended as a final user turn. Before the
  first text the client may be between attempts (a retry's back-off, a reconnect), with
  no response to steer or abort: text that still arrives after an abort was asked for
  has the stream aborted again.
- A call whose model fails hands its steers back to the inbox: the tier's next model (or
  the job's next call) gets them.

Nothing partial ever leaves the gateway: the caller gets the redirected generation's
``Completed`` (whose text the client builds from that generation alone).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from enum import Enum
from typing import Any

from orchestrator.control import DELIVERED, Steer, steering_turn
from orchestrator.events import EventLog
from orchestrator.models import Message, ModelClient, ModelRequest

NATIVE = "response.steer"
REISSUE = "reissue"
NEXT_CALL = "next-call"


class Chunk(Enum):
    KEEP = "keep"  # part of the generation being kept
    DROP = "drop"  # part of an interrupted generation
    RESTART = "restart"  # first text of the redirected generation: forget what came before


def successors(client: ModelClient) -> int:
    """Successor responses the client's in-flight stream has started after a
    ``response.steer`` (0 for clients that cannot steer: only the Responses WebSocket client
    has the ``successors`` property)."""
    return int(getattr(client, "successors", 0))


class Redirect:
    """Steering state of one model call (all of its streams, re-issues included)."""

    def __init__(
        self, client: ModelClient, events: EventLog, *, native: bool, step: int | None,
        queued: list[Steer] | None = None,
    ) -> None:
        self.client = client
        self.events = events
        self.native = native
        self.step = step
        self.applied: list[Steer] = []  # part of the request or of the stream by now
        self.waiting: list[Steer] = list(queued or [])  # sent; no redirected text yet
        self.waiting_mode = NEXT_CALL
        self.reissue: list[Steer] = []  # abort requested: re-issue with these
        self._base_successors = 0
        self._modes: list[str] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._stream = 0  # streams started by this call before the current one
        self._live = False  # the current stream has shown text
        self._reaborted = -1  # the stream aborted again (see ``on_text``)

    # --- steers arriving (called on the job's loop by the control channel) -------------

    def on_steer(self, steer: Steer) -> str:
        # In place only once the stream shows text: before that the client may have no
        # response to steer (between attempts), and the steer would be lost on it.
        if self.native and self._live and not self.reissue and not self.waiting:
            self.waiting, self.waiting_mode = [steer], NATIVE
            self._base_successors = successors(self.client)
            self._spawn(self.client.interrupt(steering_turn(steer.message)))
        else:  # abort; a pending native steer joins the re-issue
            self.reissue.extend([*self.waiting, steer] if self.waiting_mode == NATIVE
                                else [steer])
            if self.waiting_mode == NATIVE:
                self.waiting = []
            self._abort()
        return DELIVERED

    def _abort(self) -> None:
        """Abort the current stream (not one started after it: a re-issue's)."""
        stream = self._stream

        async def abort() -> None:
            if self._stream == stream and self.reissue:
                await self.client.interrupt(None)

        self._spawn(abort())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- the stream's events ---------------------------------------------------------

    def on_text(self) -> Chunk:
        """Classify a text delta that just arrived."""
        self._live = True
        if self.reissue:
            if not self._tasks and self._reaborted != self._stream:
                # The abort asked for is done, yet text still comes: it found the client
                # between attempts, and this stream began after it. Abort this one (once;
                # deltas already read may still arrive before the stream ends).
                self._reaborted = self._stream
                self._abort()
            return Chunk.DROP
        if not self.waiting:
            return Chunk.KEEP
        if self.waiting_mode == NATIVE and successors(self.client) <= self._base_successors:
            return Chunk.DROP
        self._mark_applied()
        return Chunk.RESTART

    def should_reissue(self, *, ended_ok: bool) -> bool:
        """At the end of a stream: must the request be re-issued with the steers?
        ``ended_ok`` is False for an interrupted or broken stream."""
        if self.waiting and self.waiting_mode == NATIVE:
            if ended_ok and successors(self.client) > self._base_successors:
                self._mark_applied()  # a successor without text (tool calls only)
            else:
                self.reissue[:0] = self.waiting  # refused, or aborted before it took
                self.waiting = []
        # A stream that failed while no steer asked for an abort failed for its own reason
        # (the steers waiting are already in that request): the error stands. Re-issuing
        # it here repeated a request a provider keeps refusing, without end.
        return bool(self.reissue)

    def next_request(self, base: ModelRequest) -> ModelRequest:
        """The request to re-issue: ``base`` plus every steer so far, as user turns."""
        if self.waiting_mode != NATIVE:
            self.applied.extend(self.waiting)  # already in the request being replaced
        self.waiting, self.waiting_mode, self.reissue = self.reissue, REISSUE, []
        self._stream += 1
        self._live = False
        return with_steers(base, [*self.applied, *self.waiting])

    def _mark_applied(self) -> None:
        now = time.perf_counter()
        for steer in self.waiting:
            self.events.emit("steer.applied", id=steer.id, step=self.step,
                             mode=self.waiting_mode,
                             message=steer.message,
                             latency_ms=round((now - steer.received_s) * 1000, 2))
        self.applied.extend(self.waiting)
        self._modes.extend(m for m in [self.waiting_mode] if m not in self._modes)
        self.waiting = []

    # --- for the receipt ---------------------------------------------------------------

    @property
    def steers(self) -> list[Steer]:
        """Every steer this call took, in order (applied, sent, to be re-issued)."""
        return [*self.applied, *self.waiting, *self.reissue]

    @property
    def messages(self) -> list[str]:
        return [s.message for s in self.steers]

    @property
    def modes(self) -> list[str]:
        """How the steers reached the model: response.steer, reissue, next-call."""
        return list(self._modes)

    async def aclose(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def with_steers(request: ModelRequest, steers: list[Steer]) -> ModelRequest:
    if not steers:
        return request
    turns = [Message(role="user", content=steering_turn(s.message)) for s in steers]
    return request.model_copy(update={"messages": [*request.messages, *turns]})
