"""The data of the model-client protocol: requests, stream events, metrics, endpoints.

Events are plain pydantic models built once per event without validation on the hot
path (``model_construct``); requests and endpoint configs are validated normally.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field


class Message(BaseModel):
    """One conversation message."""

    role: Literal["system", "user", "assistant"]
    content: str


class ToolSpec(BaseModel):
    """A function the model may call; ``parameters`` is a JSON schema."""

    name: str
    description: str
    parameters: dict


class ModelRequest(BaseModel):
    """One request to a model. The same request works with every client."""

    model: str
    messages: list[Message]
    instructions: str | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    reasoning_effort: str | None = Field(
        default=None, description="minimal..xhigh; sent to Responses and Chat Completions "
        "endpoints, not to Anthropic (which budgets thinking in tokens instead)",
    )
    tools: list[ToolSpec] = Field(default_factory=list)
    metadata: dict[str, str] = Field(default_factory=dict)


# --- stream events -------------------------------------------------------------------


class TextDelta(BaseModel):
    kind: Literal["text"] = "text"
    text: str


class ToolCall(BaseModel):
    kind: Literal["tool_call"] = "tool_call"
    call_id: str
    name: str
    arguments: str = Field(description="JSON text, as the model wrote it (untrusted)")


class Usage(BaseModel):
    kind: Literal["usage"] = "usage"
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0


class Completed(BaseModel):
    """Terminal: the response finished normally."""

    kind: Literal["completed"] = "completed"
    response_id: str | None = None
    served_model: str | None = None
    text: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)


class Failed(BaseModel):
    """Terminal: the provider ended the response as failed."""

    kind: Literal["failed"] = "failed"
    error: str
    code: str | None = None


class Incomplete(BaseModel):
    """Terminal: the response stopped early (``max_output_tokens``, ``interrupted``, ...)."""

    kind: Literal["incomplete"] = "incomplete"
    reason: str


ModelEvent = Annotated[
    TextDelta | ToolCall | Usage | Completed | Failed | Incomplete,
    Field(discriminator="kind"),
]
TERMINAL_KINDS = frozenset({"completed", "failed", "incomplete"})


# --- metrics and endpoints ----------------------------------------------------------


class CallMetrics(BaseModel):
    """Measurements of one ``stream()`` call (units in the names)."""

    transport: str = Field(description="'websocket' or 'http-sse'")
    requested_model: str
    served_model: str | None = None
    ttft_ms: float | None = None
    duration_ms: float = 0.0
    tokens_per_s: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    retries: int = 0
    retry_wait_ms: float = Field(default=0.0, description="time spent waiting to retry")
    fell_back_to_http: bool = False
    chained: bool = Field(default=False, description="sent previous_response_id")
    steered: bool = False


Provider = Literal["openai-ws", "openai-responses", "chat-completions", "anthropic"]


class EndpointConfig(BaseModel):
    """Where and how to reach one model endpoint."""

    provider: Provider
    base_url: str = Field(description="e.g. https://api.openai.com/v1 (no trailing path)")
    api_key: str | None = None
    api_key_env: str | None = Field(
        default=None, description="name of the variable the key came from (named in errors)"
    )
    connect_timeout_s: float = 10
    first_token_timeout_s: float = 60
    idle_timeout_s: float = 60
    total_timeout_s: float = Field(
        default=900, gt=0, description="the most one call may take, retries included, "
        "however steadily the server keeps sending (output or keepalives)",
    )
    max_retries: int = 3
    max_retry_after_s: float = Field(
        default=60, ge=0, description="a longer Retry-After is not waited for: the call "
        "fails at once (RateLimited, saying how long the server asked to wait)",
    )
    max_retry_wait_s: float = Field(
        default=120, ge=0, description="the most one call waits between its retries, in all",
    )
    ws_fallback_after_failures: int = Field(
        default=3, description="consecutive WebSocket connect failures before HTTP SSE"
    )
    steer_supported: bool = False
    extra_headers: dict[str, str] = Field(default_factory=dict)
    backoff_base_s: float = Field(default=0.5, description="first retry delay (doubles)")
    backoff_max_s: float = 8.0
    ws_ping_interval_s: float | None = 20.0
    ca_file: str | None = Field(
        default=None, description="PEM file of the certificate authorities to trust for this "
        "endpoint instead of the default trust store (e.g. a private CA); None = the default "
        "(httpx: certifi's bundle, websockets: the system's; both honour SSL_CERT_FILE)",
    )
