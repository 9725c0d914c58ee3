"""Model clients: one small async protocol, four wire protocols.

    client = make_client(EndpointConfig(provider="openai-ws", base_url=..., api_key=...))
    async for event in client.stream(ModelRequest(model=..., messages=[...])):
        ...                       # TextDelta / ToolCall / Usage, then one terminal event
    done = await complete(client, request)   # or drain and raise typed errors
    client.last_metrics                      # CallMetrics of the last call
    await client.aclose()

See ``base.py`` for the stream contract and ``ws.py`` for the WebSocket fast path.
"""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.models.anthropic import AnthropicClient
from orchestrator.models.base import ModelClient, complete
from orchestrator.models.chat import ChatCompletionsClient
from orchestrator.models.responses_http import ResponsesHTTPClient
from orchestrator.models.types import (
    CallMetrics,
    Completed,
    EndpointConfig,
    Failed,
    Incomplete,
    Message,
    ModelEvent,
    ModelRequest,
    TextDelta,
    ToolCall,
    ToolSpec,
    Usage,
)
from orchestrator.models.ws import ResponsesWSClient

_CLIENTS: dict[str, Callable[[EndpointConfig], ModelClient]] = {
    "openai-ws": ResponsesWSClient,
    "openai-responses": ResponsesHTTPClient,
    "chat-completions": ChatCompletionsClient,
    "anthropic": AnthropicClient,
}


def make_client(cfg: EndpointConfig) -> ModelClient:
    """The client for ``cfg.provider``; build it once and reuse it (it pools connections)."""
    return _CLIENTS[cfg.provider](cfg)


__all__ = [
    "AnthropicClient",
    "CallMetrics",
    "ChatCompletionsClient",
    "Completed",
    "EndpointConfig",
    "Failed",
    "Incomplete",
    "Message",
    "ModelClient",
    "ModelEvent",
    "ModelRequest",
    "ResponsesHTTPClient",
    "ResponsesWSClient",
    "TextDelta",
    "ToolCall",
    "ToolSpec",
    "Usage",
    "complete",
    "make_client",
]
