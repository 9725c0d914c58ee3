"""The Responses API event stream for one answer (shared by HTTP SSE and the WebSocket).

Yields event dicts without ``sequence_number`` (the transport numbers them) or the
string ``MALFORMED_FRAME`` for an injected non-JSON frame. Raises ``Dropped`` when the
transport must close abruptly. After the run, ``Run.output`` holds the output items and
``Run.response`` the final Response object (for ``previous_response_id`` and non-stream).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from orchestrator.sim.generation import MALFORMED_FRAME, Generation, new_id

Event = dict[str, Any] | str

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

    @cached_property
    def echo(self) -> dict[str, Any]:
        """The request fields every snapshot repeats (computed once per response)."""
        request = self.request
        return {name: default if request.get(name) is None else request[name]
                for name, default in _ECHO_FIELDS.items()}

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
    yield {"type": "response.created", "response": run.snapshot("in_progress")}
    if not generate:  # warm-up: state only, no output
        run.response = run.snapshot("completed")
        yield {"type": "response.completed", "response": run.response}
        return
    yield {"type": "response.in_progress", "response": run.snapshot("in_progress")}
    gen = run.gen
    await gen.start()
    if gen.reply.text or not gen.reply.tool_calls:
        async for event in _message_item(run):
            yield event
    for call in gen.reply.tool_calls:
        if gen.stopped:
            break
        async for event in _function_call_item(run, call.name, call.arguments):
            yield event
    gen.before_terminal()
    if gen.stopped:
        run.response = run.snapshot("incomplete", reason=gen.stop_reason)
        yield {"type": "response.incomplete", "response": run.response}
    else:
        run.response = run.snapshot("completed")
        yield {"type": "response.completed", "response": run.response}


async def _message_item(run: Run) -> AsyncIterator[Event]:
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
    async for token in run.gen.tokens(run.gen.reply.text):
        if run.gen.take_malformed():
            yield MALFORMED_FRAME
        pieces.append(token)
        yield {"type": "response.output_text.delta", **where, "delta": token, "logprobs": []}
    text = "".join(pieces)
    yield {"type": "response.output_text.done", **where, "text": text, "logprobs": []}
    part["text"] = text
    yield {"type": "response.content_part.done", **where, "part": part}
    item.update(status="incomplete" if run.gen.stopped else "completed", content=[part])
    run.output.append(item)
    yield {"type": "response.output_item.done", "output_index": index, "item": item}


async def _function_call_item(run: Run, name: str, arguments: str) -> AsyncIterator[Event]:
    index = len(run.output)
    item_id = new_id("fc")
    item: dict[str, Any] = {
        "id": item_id, "type": "function_call", "status": "in_progress",
        "call_id": new_id("call"), "name": name, "arguments": "",
    }
    where = {"item_id": item_id, "output_index": index}
    yield {"type": "response.output_item.added", "output_index": index, "item": dict(item)}
    pieces: list[str] = []
    async for token in run.gen.tokens(arguments):
        if run.gen.take_malformed():
            yield MALFORMED_FRAME
        pieces.append(token)
        yield {"type": "response.function_call_arguments.delta", **where, "delta": token}
    args = "".join(pieces)
    yield {"type": "response.function_call_arguments.done", **where, "name": name,
           "arguments": args}
    item.update(status="incomplete" if run.gen.stopped else "completed", arguments=args)
    run.output.append(item)
    yield {"type": "response.output_item.done", "output_index": index, "item": item}
