"""The Responses API event stream for one answer (shared by HTTP SSE and the WebSocket).

Yields event dicts without ``sequence_number`` (the transport numbers them) or the
string ``MALFORMED_FRAME`` for an injected non-JSON frame. Raises ``Dropped`` when the
transport must close abruptly. After the run, ``Run.output`` holds the output items and
``Run.response`` the final Response object (for ``previous_response_id`` and non-stream).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass, field
from typing import Any

from orchestrator.sim.generation import MALFORMED_FRAME, Generation, new_id

Event = dict[str, Any] | str
Step = Event | Awaitable[None]

# Request fields echoed on the Response object.
_ECHO_FIELDS: dict[str, Any] = {
    "instructions": None,
    "max_output_tokens": None,
    "metadata": {},
    "parallel_tool_calls": True,
    "previous_response_id": None,
    "temperature": 1.0,
    "tool_choice": "auto",
    "tools": [],
    "top_p": 1.0,
    "store": True,
    "text": {"format": {"type": "text"}},
}


@dataclass
class Run:
    """One response being produced."""

    gen: Generation
    request: dict[str, Any]
    input_tokens: int
    cached_tokens: int = 0
    id: str = field(default_factory=lambda: new_id("resp"))
    output: list[dict[str, Any]] = field(default_factory=list)
    response: dict[str, Any] = field(default_factory=dict)
    # The request fields every snapshot repeats (computed once per response).
    echo: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        echo = _ECHO_FIELDS.copy()  # the defaults, in the order the API lists them
        for name, value in self.request.items():
            if value is not None and name in echo:
                echo[name] = value
        self.echo = echo

    def snapshot(self, status: str, *, reason: str | None = None) -> dict[str, Any]:
        final = status in ("completed", "incomplete", "failed")
        body: dict[str, Any] = {
            "id": self.id,
            "object": "response",
            "created_at": self.gen.created_at,
            "status": status,
            "model": self.gen.model,
            "output": list(self.output) if final else [],
            "error": None,
            "incomplete_details": {"reason": reason} if reason else None,
            "usage": self.usage() if final else None,
        }
        body.update(self.echo)
        return body

    def usage(self) -> dict[str, Any]:
        out = self.gen.output_tokens
        return {
            "input_tokens": self.input_tokens,
            "input_tokens_details": {"cached_tokens": self.cached_tokens},
            "output_tokens": out,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": self.input_tokens + out,
        }


async def response_events(run: Run, *, generate: bool = True) -> AsyncIterator[Event]:
    for step in response_steps(run, generate=generate):
        if isinstance(step, (dict, str)):
            yield step
        else:
            await step


def response_steps(run: Run, *, generate: bool = True) -> Iterator[Step]:
    started = run.snapshot("in_progress")  # the same body in both opening events
    yield {"type": "response.created", "response": started}
    if not generate:  # warm-up: state only, no output
        run.response = run.snapshot("completed")
        yield {"type": "response.completed", "response": run.response}
        return
    yield {"type": "response.in_progress", "response": started}
    gen = run.gen
    wait = gen.start_wait()
    if wait is not None:
        yield wait
    if gen.reply.text or not gen.reply.tool_calls:
        yield from _message_item(run)
    for call in gen.reply.tool_calls:
        if gen.stopped:
            break
        yield from _function_call_item(run, call.name, call.arguments)
    gen.before_terminal()
    if gen.stopped:
        run.response = run.snapshot("incomplete", reason=gen.stop_reason)
        yield {"type": "response.incomplete", "response": run.response}
    else:
        run.response = run.snapshot("completed")
        yield {"type": "response.completed", "response": run.response}


def _message_item(run: Run) -> Iterator[Step]:
    index = len(run.output)
    item_id = new_id("msg")
    item: dict[str, Any] = {
        "id": item_id, "type": "message", "role": "assistant", "status": "in_progress",
        "content": [],
    }
    where = {"item_id": item_id, "output_index": index, "content_index": 0}
    yield {"type": "response.output_item.added", "output_index": index, "item": dict(item)}
    part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    yield {"type": "response.content_part.added", **where, "part": dict(part)}
    pieces: list[str] = []
    gen = run.gen
    for step in gen.steps(gen.reply.text):
        if type(step) is not str:
            yield step  # a pacing wait
            continue
        if gen.take_malformed():
            yield MALFORMED_FRAME
        pieces.append(step)
        yield {"type": "response.output_text.delta", **where, "delta": step, "logprobs": []}
    text = "".join(pieces)
    yield {"type": "response.output_text.done", **where, "text": text, "logprobs": []}
    part["text"] = text
    yield {"type": "response.content_part.done", **where, "part": part}
    item.update(status="incomplete" if gen.stopped else "completed", content=[part])
    run.output.append(item)
    yield {"type": "response.output_item.done", "output_index": index, "item": item}


def _function_call_item(run: Run, name: str, arguments: str) -> Iterator[Step]:
    index = len(run.output)
    item_id = new_id("fc")
    item: dict[str, Any] = {
        "id": item_id, "type": "function_call", "status": "in_progress",
        "call_id": new_id("call"), "name": name, "arguments": "",
    }
    where = {"item_id": item_id, "output_index": index}
    yield {"type": "response.output_item.added", "output_index": index, "item": dict(item)}
    pieces: list[str] = []
    gen = run.gen
    for step in gen.steps(arguments):
        if type(step) is not str:
            yield step  # a pacing wait
            continue
        if gen.take_malformed():
            yield MALFORMED_FRAME
        pieces.append(step)
        yield {"type": "response.function_call_arguments.delta", **where, "delta": step}
    args = "".join(pieces)
    yield {"type": "response.function_call_arguments.done", **where, "name": name,
           "arguments": args}
    item.update(status="incomplete" if gen.stopped else "completed", arguments=args)
    run.output.append(item)
    yield {"type": "response.output_item.done", "output_index": index, "item": item}
