"""OpenAI Responses over HTTP SSE (``POST {base_url}/responses`` with ``stream: true``)."""

from __future__ import annotations

from typing import Any

from orchestrator.models.http_base import HTTPStreamClient, Parser
from orchestrator.models.responses_wire import ResponsesParser, input_item, request_fields
from orchestrator.models.types import ModelRequest


def responses_body(request: ModelRequest) -> dict[str, Any]:
    body = request_fields(request)
    body["input"] = [input_item(m) for m in request.messages]
    body["stream"] = True
    return body


class ResponsesHTTPClient(HTTPStreamClient):
    """Every request sends the full input; connections are pooled and kept alive."""

    path = "/responses"

    def body(self, request: ModelRequest) -> dict[str, Any]:
        return responses_body(request)

    def parser(self) -> Parser:
        return ResponsesParser(self.url, self.cfg.api_key_env, self.cfg.api_key)
