"""``POST /v1/messages``: Anthropic Messages SSE (named events, ``ping`` keep-alive) or JSON."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from orchestrator.sim.generation import MALFORMED_FRAME, Dropped, Generation, new_id
from orchestrator.sim.http_common import anthropic_error, check_auth, connection_id, read_json
from orchestrator.sim.prompt import Prompt, anthropic_turns
from orchestrator.sim.responses_http import abort
from orchestrator.sim.responses_run import max_tokens
from orchestrator.sim.sse import SSEResponse, json_dumps, sse_message
from orchestrator.sim.state import ApiError, RequestInfo, SimState

Event = dict[str, Any] | str


async def messages(request: Request) -> Any:
    state: SimState = request.app.state.sim
    try:
        check_auth(request, state.config.api_key)
        body = await read_json(request)
        model = state.check_model(body.get("model"))
        msgs = body.get("messages")
        if not isinstance(msgs, list) or not msgs:
            raise ApiError(400, "messages: field required", param="messages")
        stream = bool(body.get("stream"))
        state.log(RequestInfo("messages", "sse" if stream else "http", connection_id(request),
                              None, stream), model, len(msgs))
        system, turns = anthropic_turns(body.get("system"), [m for m in msgs
                                                             if isinstance(m, dict)])
        prompt = Prompt(model, turns, system, max_tokens(body, "max_tokens"))
        gen = state.begin(prompt, websocket=False)
    except ApiError as err:
        return anthropic_error(err)
    message = _Message(gen, prompt.input_tokens())
    if stream:
        return SSEResponse(message.sse())
    return await message.collect()


class _Message:
    def __init__(self, gen: Generation, input_tokens: int) -> None:
        self.gen = gen
        self.input_tokens = input_tokens
        self.id = new_id("msg")
        self.content: list[dict[str, Any]] = []

    @property
    def stop_reason(self) -> str:
        if self.gen.stop_reason == "max_output_tokens":
            return "max_tokens"
        return "tool_use" if self.gen.reply.tool_calls else "end_turn"

    def message(self, *, final: bool) -> dict[str, Any]:
        return {
            "id": self.id, "type": "message", "role": "assistant", "model": self.gen.model,
            "content": self.content if final else [],
            "stop_reason": self.stop_reason if final else None, "stop_sequence": None,
            "usage": {
                "input_tokens": self.input_tokens, "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": self.gen.output_tokens if final else 1,
            },
        }

    async def events(self) -> AsyncIterator[Event]:
        gen = self.gen
        yield {"type": "message_start", "message": self.message(final=False)}
        yield {"type": "ping"}
        await gen.start()
        if gen.reply.text or not gen.reply.tool_calls:
            async for event in self._block({"type": "text", "text": ""}, gen.reply.text):
                yield event
        for call in gen.reply.tool_calls:
            if gen.stopped:
                break
            start = {"type": "tool_use", "id": new_id("toolu"), "name": call.name, "input": {}}
            async for event in self._block(start, call.arguments):
                yield event
        gen.before_terminal()
        yield {"type": "message_delta",
               "delta": {"stop_reason": self.stop_reason, "stop_sequence": None},
               "usage": {"output_tokens": gen.output_tokens}}
        yield {"type": "message_stop"}

    async def _block(self, start: dict[str, Any], text: str) -> AsyncIterator[Event]:
        index = len(self.content)
        yield {"type": "content_block_start", "index": index, "content_block": dict(start)}
        is_text = start["type"] == "text"
        pieces: list[str] = []
        async for token in self.gen.tokens(text):
            if self.gen.take_malformed():
                yield MALFORMED_FRAME
            pieces.append(token)
            delta = ({"type": "text_delta", "text": token} if is_text
                     else {"type": "input_json_delta", "partial_json": token})
            yield {"type": "content_block_delta", "index": index, "delta": delta}
        block = dict(start)
        if is_text:
            block["text"] = "".join(pieces)
        else:
            block["input"] = _json_object("".join(pieces))
        self.content.append(block)
        yield {"type": "content_block_stop", "index": index}

    async def sse(self) -> AsyncIterator[bytes]:
        async for event in self.events():
            if isinstance(event, str):
                yield sse_message(event)
            else:
                yield sse_message(json_dumps(event), event=event["type"])

    async def collect(self) -> Any:
        malformed = False
        try:
            async for event in self.events():
                malformed = malformed or isinstance(event, str)
        except Dropped:
            return abort
        if malformed:
            return Response(MALFORMED_FRAME, media_type="application/json")
        return JSONResponse(self.message(final=True))


def _json_object(text: str) -> Any:
    try:
        return json.loads(text or "{}")
    except json.JSONDecodeError:
        return {}
