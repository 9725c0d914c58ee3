"""What every HTTP endpoint shares: auth, JSON bodies, error bodies in each dialect."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse

from orchestrator.sim.state import ApiError

_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def presented_key(conn: HTTPConnection) -> str | None:
    """The key from ``Authorization: Bearer`` or ``x-api-key``."""
    auth = conn.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return conn.headers.get("x-api-key")


def check_auth(conn: HTTPConnection, api_key: str | None) -> None:
    if api_key is None:
        return
    key = presented_key(conn)
    if not key:
        raise ApiError(401, "You didn't provide an API key.", code="invalid_api_key")
    if key != api_key:
        raise ApiError(401, "Incorrect API key provided.", code="invalid_api_key")


async def read_json(request: Request) -> dict[str, Any]:
    body = await request.body()
    try:
        data = json.loads(body or b"{}")
    except json.JSONDecodeError as exc:
        raise ApiError(400, f"could not parse the JSON body: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "the JSON body must be an object")
    return data


def openai_error_body(err: ApiError) -> dict[str, Any]:
    return {
        "error": {
            "message": err.message,
            "type": err.error_type,
            "param": err.param,
            "code": err.code,
        }
    }


def openai_error(err: ApiError) -> JSONResponse:
    return JSONResponse(openai_error_body(err), status_code=err.status, headers=err.headers())


def anthropic_error_body(err: ApiError) -> dict[str, Any]:
    kind = _ANTHROPIC_TYPES.get(err.status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": err.message}}


def anthropic_error(err: ApiError) -> JSONResponse:
    return JSONResponse(anthropic_error_body(err), status_code=err.status, headers=err.headers())


def connection_id(conn: HTTPConnection) -> str:
    """The client's address: equal ids mean one reused TCP connection."""
    client = conn.client
    return f"{client.host}:{client.port}" if client else "unknown"
