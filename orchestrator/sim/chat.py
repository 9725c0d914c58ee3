"""``POST /v1/chat/completions``: SSE chunks ending in ``data: [DONE]``, or one JSON.

Tool calls stream as deltas with an ``index``: the first fragment carries ``id``,
``type`` and ``function.name``, later ones only ``function.arguments`` pieces.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from orchestrator.sim.generation import MALFORMED_FRAME, Dropped, Generation, new_id
from orchestrator.sim.http_common import check_auth, connection_id, openai_error, read_json
from orchestrator.sim.prompt import Prompt, chat_turns
from orchestrator.sim.responses_http import abort
from orchestrator.sim.responses_run import max_tokens
from orchestrator.sim.sse import SSEResponse, json_dumps, sse_message
from orchestrator.sim.state import ApiError, RequestInfo, SimState


async def chat_completions(request: Request) -> Any:
    state: SimState = request.app.state.sim
    try:
        check_auth(request, state.config.api_key)
        body = await read_json(request)
        model = state.check_model(body.get("model"))
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise ApiError(400, "'messages' must be a non-empty list", param="messages")
        stream = bool(body.get("stream"))
        state.log(RequestInfo("chat", "sse" if stream else "http", connection_id(request),
                              None, stream), model, len(messages))
        system, turns = chat_turns([m for m in messages if isinstance(m, dict)])
        limit = max_tokens(body, "max_completion_tokens", "max_tokens")
        prompt = Prompt(model, turns, system, limit)
        gen = state.begin(prompt, websocket=False)
    except ApiError as err:
        return openai_error(err)
    chat = _Chat(gen, prompt.input_tokens(), state.config.usage_choices_null)
    if stream:
        options = body.get("stream_options") or {}
        return SSEResponse(chat.sse(include_usage=bool(options.get("include_usage"))))
    return await chat.collect()


class _Chat:
    def __init__(self, gen: Generation, input_tokens: int, usage_choices_null: bool) -> None:
        self.gen = gen
        self.input_tokens = input_tokens
        self.usage_choices_null = usage_choices_null
        self.id = new_id("chatcmpl")
        self.text = ""
        self.calls: list[dict[str, Any]] = []

    def chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id, "object": "chat.completion.chunk", "created": self.gen.created_at,
            "model": self.gen.model, "system_fingerprint": "fp_tandem_sim",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    def usage(self) -> dict[str, Any]:
        out = self.gen.output_tokens
        return {
            "prompt_tokens": self.input_tokens, "completion_tokens": out,
            "total_tokens": self.input_tokens + out,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }

    @property
    def finish_reason(self) -> str:
        if self.gen.stop_reason == "max_output_tokens":
            return "length"
        return "tool_calls" if self.gen.reply.tool_calls else "stop"

    async def chunks(self) -> AsyncIterator[dict[str, Any] | str]:
        gen = self.gen
        yield self.chunk({"role": "assistant", "content": ""})
        await gen.start()
        async for token in gen.tokens(gen.reply.text):
            if gen.take_malformed():
                yield MALFORMED_FRAME
            self.text += token
            yield self.chunk({"content": token})
        for index, call in enumerate(gen.reply.tool_calls):
            if gen.stopped:
                break
            async for piece in self._tool_call(index, call.name, call.arguments):
                yield piece
        gen.before_terminal()
        yield self.chunk({}, finish=self.finish_reason)

    async def _tool_call(self, index: int, name: str, arguments: str) -> AsyncIterator[Any]:
        function = {"name": name, "arguments": ""}
        call: dict[str, Any] = {"id": new_id("call"), "type": "function", "function": function}
        self.calls.append(call)
        first = {"index": index, "id": call["id"], "type": "function",
                 "function": {"name": name, "arguments": ""}}
        yield self.chunk({"tool_calls": [first]})
        async for token in self.gen.tokens(arguments):
            if self.gen.take_malformed():
                yield MALFORMED_FRAME
            function["arguments"] += token
            yield self.chunk({"tool_calls": [{"index": index, "function": {"arguments": token}}]})

    async def sse(self, *, include_usage: bool) -> AsyncIterator[bytes]:
        async for chunk in self.chunks():
            if isinstance(chunk, str):
                yield sse_message(chunk)
                continue
            if include_usage:
                chunk["usage"] = None
            yield sse_message(json_dumps(chunk))
        if include_usage:
            final = self.chunk({})
            final["choices"] = None if self.usage_choices_null else []
            final["usage"] = self.usage()
            yield sse_message(json_dumps(final))
        yield sse_message("[DONE]")

    async def collect(self) -> Any:
        malformed = False
        try:
            async for chunk in self.chunks():
                malformed = malformed or isinstance(chunk, str)
        except Dropped:
            return abort
        if malformed:
            return Response(MALFORMED_FRAME, media_type="application/json")
        message: dict[str, Any] = {"role": "assistant", "content": self.text or None,
                                   "refusal": None}
        if self.calls:
            message["tool_calls"] = self.calls
        return JSONResponse({
            "id": self.id, "object": "chat.completion", "created": self.gen.created_at,
            "model": self.gen.model, "system_fingerprint": "fp_tandem_sim",
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": self.finish_reason}],
            "usage": self.usage(),
        })
