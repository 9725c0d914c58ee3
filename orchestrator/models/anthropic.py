"""Anthropic Messages over HTTP SSE (``POST {base_url}/messages``).

Flow: ``message_start`` → per content block ``content_block_start`` / ``_delta`` /
``_stop`` → ``message_delta`` (stop reason, cumulative usage) → ``message_stop``; ``ping``
may come at any time and ``error`` ends the stream.
"""

from __future__ import annotations

from typing import Any

from orchestrator.models.http_base import HTTPStreamClient, Parser
from orchestrator.models.mapping import error_frame
from orchestrator.models.types import (
    Completed,
    Incomplete,
    ModelEvent,
    ModelRequest,
    TextDelta,
    ToolCall,
    Usage,
)

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
_CUT_SHORT = {"max_tokens": "max_output_tokens", "refusal": "content_filter"}


def anthropic_body(request: ModelRequest) -> dict[str, Any]:
    system = [m.content for m in request.messages if m.role == "system"]
    if request.instructions:
        system.insert(0, request.instructions)
    body: dict[str, Any] = {
        "model": request.model,
        "max_tokens": request.max_output_tokens or DEFAULT_MAX_TOKENS,
        "messages": [
            {"role": m.role, "content": m.content} for m in request.messages if m.role != "system"
        ],
        "stream": True,
    }
    if system:
        body["system"] = "\n\n".join(system)
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.tools:
        body["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": t.parameters}
            for t in request.tools
        ]
    return body


class AnthropicParser:
    def __init__(self, url: str, key_env: str | None, key: str | None = None) -> None:
        self.url = url
        self.key_env = key_env
        self.key = key  # the endpoint's API key: redacted from the server's messages
        self.done = False
        self.completed: Completed | None = None
        self.n_deltas = 0
        self.message_id: str | None = None
        self.served_model: str | None = None
        self.parts: list[str] = []
        self.blocks: dict[int, list[str]] = {}  # index -> [id, name, json fragments...]
        self.tool_calls: list[ToolCall] = []
        self.stop_reason: str | None = None
        self.usage = Usage()

    def feed(self, obj: dict[str, Any], out: list[ModelEvent]) -> None:
        kind = obj.get("type")
        if kind == "content_block_delta":
            delta = obj.get("delta") or {}
            if delta.get("type") == "text_delta":
                text = delta["text"]
                self.parts.append(text)
                self.n_deltas += 1
                out.append(TextDelta(text=text))
            elif delta.get("type") == "input_json_delta":
                self.blocks.setdefault(int(obj.get("index") or 0), ["", ""]).append(
                    delta.get("partial_json") or "")
            return
        handler = _HANDLERS.get(kind)  # type: ignore[arg-type]
        if handler is not None:
            handler(self, obj, out)

    def _start(self, obj: dict[str, Any], out: list[ModelEvent]) -> None:
        message = obj.get("message") or {}
        self.message_id = message.get("id")
        self.served_model = message.get("model")
        self._usage(message.get("usage") or {})

    def _block_start(self, obj: dict[str, Any], out: list[ModelEvent]) -> None:
        block = obj.get("content_block") or {}
        if block.get("type") == "tool_use":
            self.blocks[int(obj.get("index") or 0)] = [
                str(block.get("id") or ""), str(block.get("name") or "")]

    def _block_stop(self, obj: dict[str, Any], out: list[ModelEvent]) -> None:
        block = self.blocks.pop(int(obj.get("index") or 0), None)
        if block is None:
            return
        call = ToolCall(call_id=block[0], name=block[1], arguments="".join(block[2:]) or "{}")
        self.tool_calls.append(call)
        out.append(call)

    def _message_delta(self, obj: dict[str, Any], out: list[ModelEvent]) -> None:
        self.stop_reason = (obj.get("delta") or {}).get("stop_reason") or self.stop_reason
        self._usage(obj.get("usage") or {})

    def _usage(self, raw: dict[str, Any]) -> None:
        u = self.usage
        u.input_tokens = int(raw.get("input_tokens") or u.input_tokens)
        u.output_tokens = int(raw.get("output_tokens") or u.output_tokens)
        u.cached_tokens = int(raw.get("cache_read_input_tokens") or u.cached_tokens)

    def _stop(self, obj: dict[str, Any], out: list[ModelEvent]) -> None:
        out.append(self.usage)
        cut = _CUT_SHORT.get(self.stop_reason or "")
        if cut:
            out.append(Incomplete(reason=cut))
        else:
            self.completed = Completed(
                response_id=self.message_id, served_model=self.served_model,
                text="".join(self.parts), tool_calls=list(self.tool_calls), usage=self.usage,
            )
            out.append(self.completed)
        self.done = True

    def _error(self, obj: dict[str, Any], out: list[ModelEvent]) -> None:
        raise error_frame(obj, self.url, self.key_env, self.key)


_HANDLERS = {
    "message_start": AnthropicParser._start,
    "content_block_start": AnthropicParser._block_start,
    "content_block_stop": AnthropicParser._block_stop,
    "message_delta": AnthropicParser._message_delta,
    "message_stop": AnthropicParser._stop,
    "error": AnthropicParser._error,
}


class AnthropicClient(HTTPStreamClient):
    path = "/messages"

    def auth_headers(self) -> dict[str, str]:
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if self.cfg.api_key:
            headers["x-api-key"] = self.cfg.api_key
        return headers

    def body(self, request: ModelRequest) -> dict[str, Any]:
        return anthropic_body(request)

    def parser(self) -> Parser:
        return AnthropicParser(self.url, self.cfg.api_key_env, self.cfg.api_key)
