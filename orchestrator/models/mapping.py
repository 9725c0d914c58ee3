"""Provider error statuses and error payloads → Tandem's typed ``ModelError``s.

Pure functions (no I/O): each client calls them at its one translation boundary.

Text from a server (error messages in bodies, events and frames) is untrusted: it goes
through ``server_text`` before it reaches an exception, an event or a log.
"""

from __future__ import annotations

import email.utils
import re
import time
from typing import Any

from orchestrator.errors import (
    AuthenticationError,
    ConnectionLimitReached,
    ModelError,
    ModelHTTPError,
    ModelNotFound,
    ModelProtocolError,
    PreviousResponseNotFound,
    RateLimited,
    ResponseFailed,
    ServerError,
)
from orchestrator.secrets import redact

# The most of a server's text that reaches a message (longer text is cut, with "...").
MAX_SERVER_TEXT = 300
# Credentials a server may echo back from the request's headers.
_AUTH_VALUE = re.compile(
    r"(?i)(bearer|basic)\s+(?=[A-Za-z]*[0-9._~+/\-])[A-Za-z0-9._~+/\-]{6,}=*")
# Terminal control characters (C0, DEL, C1): an escape sequence could rewrite the screen.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


def server_text(text: str, key: str | None = None, limit: int = MAX_SERVER_TEXT) -> str:
    """``text`` from a server, safe for a message: one line without control characters,
    the endpoint's API ``key``, credentials and known secret formats redacted, at most
    ``limit`` characters."""
    text = _CONTROL.sub(" ", text[: limit * 4]).strip()
    text = redact(text, [key] if key else [])
    text = _AUTH_VALUE.sub(r"\1 [REDACTED:credential]", text)
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def parse_retry_after_s(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _key_hint(key_env: str | None) -> str:
    return f"check the API key in ${key_env}" if key_env else "check the API key"


def at(exc: ModelError, url: str) -> ModelError:
    """``exc`` with its ``endpoint`` attribute set (the message already names ``url``)."""
    exc.endpoint = url
    return exc


def status_error(
    status: int,
    url: str,
    *,
    detail: str = "",
    key_env: str | None = None,
    retry_after_s: float | None = None,
    code: str | None = None,
) -> ModelError:
    """The typed error for an HTTP(-equivalent) ``status`` answered by ``url``."""
    return at(_status_error(status, url, detail, key_env, retry_after_s, code), url)


def _status_error(
    status: int,
    url: str,
    detail: str,
    key_env: str | None,
    retry_after_s: float | None,
    code: str | None,
) -> ModelError:
    detail = f" ({detail[:MAX_SERVER_TEXT]})" if detail else ""
    head = f"HTTP {status} from {url}{detail}"
    if status in (401, 403):
        return AuthenticationError(f"{head}: {_key_hint(key_env)}", status=status, code=code)
    if status == 404:
        return ModelNotFound(
            f"{head}: check the model name and the base URL", status=status, code=code
        )
    if status in (405, 501):
        return ModelProtocolError(
            f"{head}: the server does not serve this API; check the base URL and provider"
        )
    if status == 429:
        return RateLimited(
            f"{head}: rate limited; retry later or lower the request rate",
            code=code,
            retry_after_s=retry_after_s,
        )
    if status >= 500:
        return ServerError(f"{head}: provider error; retry later", status=status, code=code)
    return ModelHTTPError(f"{head}: check the request", status=status, code=code)


def error_detail(body: Any) -> tuple[str, str | None]:
    """(message, code) from an error body: OpenAI ``{"error": {...}}``, Anthropic, or text."""
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            message = str(err.get("message") or err.get("type") or "")
            code = err.get("code") or err.get("type")
            return message, str(code) if code else None
        if isinstance(err, str):
            return err, None
    if isinstance(body, str):
        return body.strip().splitlines()[0] if body.strip() else "", None
    return "", None


def error_frame(
    frame: dict[str, Any], url: str, key_env: str | None = None, key: str | None = None
) -> ModelError:
    """The typed error for an in-stream ``error`` event (WebSocket frame or SSE data);
    ``key``: the endpoint's API key, redacted from the server's message."""
    message, code = error_detail(frame)
    message = server_text(message, key)
    code = server_text(code, key, 80) if code else None
    err = frame.get("error")
    headers = err.get("headers") if isinstance(err, dict) else None
    if code == "previous_response_not_found":
        return at(PreviousResponseNotFound(f"previous response not found at {url}: {message}"), url)
    if code == "websocket_connection_limit_reached":
        return at(ConnectionLimitReached(f"connection limit reached at {url}: {message}"), url)
    status = frame.get("status")
    if isinstance(status, int) and status >= 400:
        retry = None
        if isinstance(headers, dict):
            retry = parse_retry_after_s(headers.get("retry-after") or headers.get("Retry-After"))
        return status_error(
            status, url, detail=message, key_env=key_env, retry_after_s=retry, code=code
        )
    if code in ("rate_limit_error", "rate_limit_exceeded"):
        return status_error(429, url, detail=message, code=code)
    if code in ("overloaded_error", "api_error", "server_error"):
        return status_error(529 if code == "overloaded_error" else 500, url, detail=message)
    if code in ("authentication_error", "invalid_api_key"):
        return status_error(401, url, detail=message, key_env=key_env, code=code)
    return at(ResponseFailed(f"error event from {url}: {message or code}", reason=code), url)
