"""Chat Completions over HTTP SSE (``POST {base_url}/chat/completions``): OpenAI and the
compatible servers (Cerebras, Groq, vLLM, Ollama, llama.cpp, OpenRouter).

Tool-call fragments are merged by ``index``; usage comes from the extra chunk requested
with ``stream_options.include_usage`` (its ``choices`` may be ``[]``, ``null`` or absent);
``data: [DONE]`` ends the stream.
"""

from __future__ import annotations

from typing import Any

from orchestrator.errors import ModelProtocolError
from orchestrator.models.http_base import HTTPStreamClient, Parser
from orchestrator.models.mapping import at, error_frame
from orchestrator.models.types import (
    Completed,
    Incomplete,
    ModelEvent,
    ModelRequest,
    TextDelta,
    ToolCall,
    Usage,
)

# finish_reason values that mean the answer was cut short
_CUT_SHORT = {"length": "max_output_tokens", "content_filter": "content_filter"}


def chat_body(request: ModelRequest) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    if request.instructions:
        messages.append({"role": "system", "content": request.instructions})
    messages.extend({"role": m.role, "content": m.content} for m in request.messages)
    body: dict[str, Any] = {
        "model": request.model,
        "messages": messages,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if request.max_output_tokens is not None:
        body["max_tokens"] = request.max_output_tokens
    if request.reasoning_effort is not None:
        body["reasoning_effort"] = request.reasoning_effort
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.tools:
        body["tools"] = [
            {"type": "function", "function": {
                "name": t.name, "description": t.description, "parameters": t.parameters}}
            for t in request.tools
        ]
    return body


class ChatParser:
    def __init__(self, url: str, key_env: str | None, key: str | None = None) -> None:
        self.url = url
        self.key_env = key_env
        self.key = key  # the endpoint's API key: redacted from the server's messages
        self.done = False
        self.completed: Completed | None = None
        self.n_deltas = 0
        self.response_id: str | None = None
        self.served_model: str | None = None
        self.parts: list[str] = []
        self.calls: dict[int, list[str]] = {}  # index -> [id, name, arguments...]
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.chunks = 0  # chunks with choices or usage (a real answer has at least one)

    def feed(self, obj: dict[str, Any], out: list[ModelEvent]) -> None:
        choices = obj.get("choices")
        if choices:
            self.chunks += 1
            choice = choices[0]
            delta = choice.get("delta")
            if delta:
                content = delta.get("content")
                if content:
                    self.parts.append(content)
                    self.n_deltas += 1
                    out.append(TextDelta(text=content))
                if delta.get("tool_calls"):
                    self._merge_calls(delta["tool_calls"])
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        elif "error" in obj:
            raise error_frame(obj, self.url, self.key_env, self.key)
        if self.served_model is None:
            self.served_model = obj.get("model")
            self.response_id = obj.get("id")
        if obj.get("usage"):
            self.chunks += 1
            self.usage = _usage(obj["usage"])

    def _merge_calls(self, fragments: list[dict[str, Any]]) -> None:
        for frag in fragments:
            call = self.calls.setdefault(int(frag.get("index") or 0), ["", ""])
            if frag.get("id"):
                call[0] = frag["id"]
            fn = frag.get("function") or {}
            if fn.get("name"):
                call[1] = fn["name"]
            if fn.get("arguments"):
                call.append(fn["arguments"])

    def finish(self, out: list[ModelEvent]) -> None:
        calls = [
            ToolCall(call_id=c[0], name=c[1], arguments="".join(c[2:]))
            for _, c in sorted(self.calls.items())
        ]
        out.extend(calls)
        usage = self.usage or Usage()
        out.append(usage)
        cut = _CUT_SHORT.get(self.finish_reason or "")
        if cut:
            out.append(Incomplete(reason=cut))
        else:
            self.completed = Completed(
                response_id=self.response_id, served_model=self.served_model,
                text="".join(self.parts), tool_calls=calls, usage=usage,
            )
            out.append(self.completed)
        self.done = True


def _usage(raw: dict[str, Any]) -> Usage:
    details = raw.get("prompt_tokens_details") or {}
    return Usage(
        input_tokens=int(raw.get("prompt_tokens") or 0),
        output_tokens=int(raw.get("completion_tokens") or 0),
        cached_tokens=int(details.get("cached_tokens") or 0),
    )


class ChatCompletionsClient(HTTPStreamClient):
    path = "/chat/completions"

    def body(self, request: ModelRequest) -> dict[str, Any]:
        return chat_body(request)

    def parser(self) -> Parser:
        return ChatParser(self.url, self.cfg.api_key_env, self.cfg.api_key)

    def on_done_marker(self, parser: Parser, out: list[ModelEvent]) -> None:
        assert isinstance(parser, ChatParser)
        if not parser.chunks:
            raise at(ModelProtocolError(
                f"{self.url} ended the stream ([DONE]) before any choice: no answer"), self.url)
        parser.finish(out)

    def on_eof(self, parser: Parser, out: list[ModelEvent]) -> None:
        # Some servers end the body without [DONE]; a finish_reason means it was complete.
        assert isinstance(parser, ChatParser)
        if parser.finish_reason is None:
            super().on_eof(parser, out)
        parser.finish(out)
