"""The OpenAI Responses wire format, shared by the WebSocket and the HTTP SSE clients:
request bodies out, server events in (as dicts) → Tandem's typed events.
"""

from __future__ import annotations

from typing import Any

from orchestrator.models.mapping import error_frame, server_text
from orchestrator.models.types import (
    Completed,
    Failed,
    Incomplete,
    Message,
    ModelEvent,
    ModelRequest,
    TextDelta,
    ToolCall,
    Usage,
)


def input_item(message: Message) -> dict[str, Any]:
    return {"type": "message", "role": message.role, "content": message.content}


def request_fields(request: ModelRequest) -> dict[str, Any]:
    """Every field of a ``response.create`` except ``input`` (compared for chaining)."""
    fields: dict[str, Any] = {"model": request.model}
    if request.instructions is not None:
        fields["instructions"] = request.instructions
    if request.max_output_tokens is not None:
        fields["max_output_tokens"] = request.max_output_tokens
    if request.temperature is not None:
        fields["temperature"] = request.temperature
    if request.reasoning_effort is not None:
        fields["reasoning"] = {"effort": request.reasoning_effort}
    if request.tools:
        fields["tools"] = [
            {"type": "function", "name": t.name, "description": t.description,
             "parameters": t.parameters}
            for t in request.tools
        ]
    if request.metadata:
        fields["metadata"] = dict(request.metadata)
    return fields


def usage_of(response: dict[str, Any]) -> Usage | None:
    raw = response.get("usage")
    if not isinstance(raw, dict):
        return None
    details = raw.get("input_tokens_details") or {}
    return Usage(
        input_tokens=int(raw.get("input_tokens") or 0),
        output_tokens=int(raw.get("output_tokens") or 0),
        cached_tokens=int(details.get("cached_tokens") or 0),
    )


class ResponsesParser:
    """Turns Responses server events into Tandem events for one request.

    ``expect_successor`` is set by a client that sent ``response.steer``: the original
    response then ends ``incomplete`` with reason ``steered`` and a successor follows on
    the same stream, so that ``incomplete`` is not terminal. A steer that lands just as the
    original completes still gets a successor; the original's ``completed`` is held back
    until the successor starts (dropped) or ``response.steer.failed`` says none will come.
    """

    def __init__(self, url: str, key_env: str | None = None, key: str | None = None) -> None:
        self.url = url
        self.key_env = key_env
        self.key = key  # the endpoint's API key: redacted from the server's messages
        self.response_id: str | None = None
        self.served_model: str | None = None
        self.parts: list[str] = []
        self.tool_calls: list[ToolCall] = []
        self.done = False
        self.completed: Completed | None = None
        self.n_deltas = 0
        self.expect_successor = False
        self.successors = 0
        self.item_ids: set[str] = set()  # the output items announced so far
        self._held: list[ModelEvent] = []

    def feed(self, obj: dict[str, Any], out: list[ModelEvent]) -> None:
        """Append the Tandem events for one server event to ``out``."""
        kind = obj.get("type")
        if kind == "response.output_text.delta":
            delta = obj["delta"]
            self.parts.append(delta)
            self.n_deltas += 1
            out.append(TextDelta(text=delta))
            return
        handler = _HANDLERS.get(kind)  # type: ignore[arg-type]
        if handler is not None:
            handler(self, obj, out)

    def _created(self, obj: dict[str, Any], out: list[ModelEvent]) -> None:
        response = obj.get("response") or {}
        if self.expect_successor and self.response_id and response.get("id") != self.response_id:
            self.successors += 1
            self.expect_successor = False
            self._held.clear()
            self.parts.clear()
            self.tool_calls.clear()
            self.completed = None
        self.response_id = response.get("id") or self.response_id
        self.served_model = response.get("model") or self.served_model

    def _item_added(self, obj: dict[str, Any], out: list[ModelEvent]) -> None:
        item_id = (obj.get("item") or {}).get("id")
        if isinstance(item_id, str):
            self.item_ids.add(item_id)

    def _item_done(self, obj: dict[str, Any], out: list[ModelEvent]) -> None:
        item = obj.get("item") or {}
        if isinstance(item.get("id"), str):
            self.item_ids.add(item["id"])
        if item.get("type") != "function_call":
            return
        call = ToolCall(
            call_id=str(item.get("call_id") or item.get("id") or ""),
            name=str(item.get("name") or ""),
            arguments=str(item.get("arguments") or ""),
        )
        self.tool_calls.append(call)
        out.append(call)

    def _completed(self, obj: dict[str, Any], out: list[ModelEvent]) -> None:
        response = obj.get("response") or {}
        self.served_model = response.get("model") or self.served_model
        usage = usage_of(response) or Usage()
        self.completed = Completed(
            response_id=response.get("id") or self.response_id,
            served_model=self.served_model,
            text="".join(self.parts),
            tool_calls=list(self.tool_calls),
            usage=usage,
        )
        if self.expect_successor:
            self._held = [usage, self.completed]
            return
        out.append(usage)
        out.append(self.completed)
        self.done = True

    def _steer_failed(self, obj: dict[str, Any], out: list[ModelEvent]) -> None:
        self.expect_successor = False
        if self._held:
            out.extend(self._held)
            self._held = []
            self.done = True

    def _failed(self, obj: dict[str, Any], out: list[ModelEvent]) -> None:
        response = obj.get("response") or {}
        self._usage_if_any(response, out)
        err = response.get("error") or {}
        code = err.get("code")
        out.append(Failed(
            error=server_text(str(err.get("message") or "response failed"), self.key),
            code=server_text(str(code), self.key, 80) if code else None))
        self.done = True

    def _incomplete(self, obj: dict[str, Any], out: list[ModelEvent]) -> None:
        response = obj.get("response") or {}
        reason = str((response.get("incomplete_details") or {}).get("reason") or "unknown")
        if reason == "steered" and self.expect_successor:
            return
        self._usage_if_any(response, out)
        out.append(Incomplete(reason=reason))
        self.done = True

    def _usage_if_any(self, response: dict[str, Any], out: list[ModelEvent]) -> None:
        usage = usage_of(response)
        if usage is not None:
            out.append(usage)

    def _error(self, obj: dict[str, Any], out: list[ModelEvent]) -> None:
        raise error_frame(obj, self.url, self.key_env, self.key)


_HANDLERS = {
    "response.created": ResponsesParser._created,
    "response.in_progress": ResponsesParser._created,
    "response.output_item.added": ResponsesParser._item_added,
    "response.output_item.done": ResponsesParser._item_done,
    "response.completed": ResponsesParser._completed,
    "response.failed": ResponsesParser._failed,
    "response.incomplete": ResponsesParser._incomplete,
    "response.steer.failed": ResponsesParser._steer_failed,
    "error": ResponsesParser._error,
    "response.error": ResponsesParser._error,
}
