"""``POST /v1/responses``: SSE (``event:`` + ``data:`` lines, no ``[DONE]``) or one JSON."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from orchestrator.sim.generation import Dropped
from orchestrator.sim.http_common import check_auth, connection_id, openai_error, read_json
from orchestrator.sim.responses_render import Run, response_events, response_steps
from orchestrator.sim.responses_run import build_run
from orchestrator.sim.sse import SSEResponse, json_bytes, sse_json, sse_message
from orchestrator.sim.state import ApiError, RequestInfo, SimState


async def abort(scope: Scope, receive: Receive, send: Send) -> None:
    """An ASGI app that starts a JSON body and never finishes it: the server then closes
    the TCP connection (a non-stream ``drop_after_tokens``)."""
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"id": ', "more_body": True})


async def create_response(request: Request) -> Any:
    state: SimState = request.app.state.sim
    try:
        check_auth(request, state.config.api_key)
        body = await read_json(request)
        model = state.check_model(body.get("model"))
        stream = bool(body.get("stream"))
        prev = body.get("previous_response_id")
        state.log(
            RequestInfo("responses", "sse" if stream else "http", connection_id(request),
                        prev, stream),
            model, len(body.get("input") or []) if isinstance(body.get("input"), list) else 1,
        )
        prior = _prior_items(state, prev)
        run, items = build_run(state, body, prior, websocket=False)
    except ApiError as err:
        return openai_error(err)
    if stream:
        return SSEResponse(_sse(state, run, items, body), pacer=run.gen.pacer)
    return await _collect(state, run, items, body)


def _prior_items(state: SimState, prev: Any) -> list[dict[str, Any]]:
    if prev is None:
        return []
    items = state.stored_items(str(prev))
    if items is None:
        raise ApiError(
            400, f"Previous response with id '{prev}' not found.",
            code="previous_response_not_found", param="previous_response_id",
        )
    return items


def _remember(state: SimState, run: Run, items: list[dict[str, Any]], body: dict) -> None:
    if body.get("store", True) is not False:
        state.store_response(run.id, items + run.output)


async def _sse(
    state: SimState, run: Run, items: list[dict[str, Any]], body: dict
) -> AsyncIterator[bytes]:
    seq = 0
    for step in response_steps(run):
        if isinstance(step, dict):
            step["sequence_number"] = seq
            seq += 1
            yield sse_json(json_bytes(step), step["type"])
        elif isinstance(step, str):  # an injected malformed frame
            yield sse_message(step)
        else:
            await step  # a pacing wait
    _remember(state, run, items, body)


async def _collect(state: SimState, run: Run, items: list[dict[str, Any]], body: dict) -> Any:
    malformed = False
    try:
        async for event in response_events(run):
            malformed = malformed or isinstance(event, str)
    except Dropped:
        return abort
    if malformed:
        return Response("this is not json {", media_type="application/json")
    _remember(state, run, items, body)
    return JSONResponse(run.response)
