"""The simulator's ASGI application: routes only (each endpoint lives in its own module).

The Responses WebSocket goes straight to its endpoint; Starlette (with its middleware,
which wraps every outgoing message) serves the HTTP routes.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from orchestrator.sim.anthropic import messages
from orchestrator.sim.chat import chat_completions
from orchestrator.sim.config import Fault
from orchestrator.sim.http_common import check_auth, openai_error
from orchestrator.sim.responses_http import create_response
from orchestrator.sim.responses_ws import ResponsesWebSocket
from orchestrator.sim.state import ApiError, SimState


async def list_models(request: Request) -> Any:
    state: SimState = request.app.state.sim
    try:
        check_auth(request, state.config.api_key)
    except ApiError as err:
        return openai_error(err)
    data = [
        {"id": m.name, "object": "model", "created": 0, "owned_by": "tandem-sim",
         "ttft_ms": m.ttft_ms, "tokens_per_s": m.tokens_per_s}
        for m in state.config.models
    ]
    return JSONResponse({"object": "list", "data": data})


async def add_faults(request: Request) -> Any:
    """``POST /_sim/faults``: one fault object or a list of them."""
    state: SimState = request.app.state.sim
    try:
        body = await read_json_any(request)
        raw = body if isinstance(body, list) else [body]
        faults = [Fault.model_validate(f) for f in raw]
    except ApiError as err:
        return openai_error(err)
    except ValidationError as exc:
        return openai_error(ApiError(400, f"bad fault: {exc.errors()[0]['msg']}"))
    for fault in faults:
        state.faults.inject(fault)
    return JSONResponse({"pending": [f.model_dump(exclude_none=True)
                                     for f in state.faults.pending()]})


async def read_json_any(request: Request) -> Any:
    """A JSON body that may also be a list (``read_json`` wants an object)."""
    try:
        return json.loads(await request.body() or b"{}")
    except json.JSONDecodeError as exc:
        raise ApiError(400, f"could not parse the JSON body: {exc.msg}") from exc


async def get_requests(request: Request) -> Any:
    state: SimState = request.app.state.sim
    return JSONResponse({"requests": list(state.requests)})


async def reset(request: Request) -> Any:
    state: SimState = request.app.state.sim
    state.reset()
    return JSONResponse({"reset": True})


class SimApp:
    """``/v1/responses`` WebSockets to ``ResponsesWebSocket``, everything else to ``http``."""

    def __init__(self, state: SimState) -> None:
        self.state = state
        self.http = _starlette(state)
        self.responses_ws = ResponsesWebSocket(state)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == "/v1/responses":
            await self.responses_ws(scope, receive, send)
        else:
            await self.http(scope, receive, send)


def build_app(state: SimState) -> SimApp:
    return SimApp(state)


def _starlette(state: SimState) -> Starlette:
    app = Starlette(routes=[
        Route("/v1/responses", create_response, methods=["POST"]),
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/messages", messages, methods=["POST"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/_sim/faults", add_faults, methods=["POST"]),
        Route("/_sim/requests", get_requests, methods=["GET"]),
        Route("/_sim/reset", reset, methods=["POST"]),
    ])
    app.state.sim = state
    return app
