"""Configuration objects of the simulated provider: speed profiles, faults, the whole server.

Plain pydantic models; nothing here reads the environment (the CLI and callers pass values).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from orchestrator.errors import SimConfigError

FaultKind = Literal[
    "drop_after_tokens",
    "http_error",
    "malformed_frame",
    "slow_first_token",
    "connection_limit",
    "served_model",
    "ws_handshake_status",
]

# Required field per fault kind (None: nothing beyond ``kind``).
_FAULT_NEEDS: dict[str, str | None] = {
    "drop_after_tokens": "tokens",
    "http_error": "status",
    "malformed_frame": None,
    "slow_first_token": "delay_ms",
    "connection_limit": None,
    "served_model": "served_model",
    "ws_handshake_status": "status",
}


class ModelProfile(BaseModel):
    """How fast one simulated model answers."""

    name: str = Field(description="Model id clients request, e.g. 'gpt-5.3-codex-spark'.")
    ttft_ms: float = Field(default=0.0, ge=0, description="Delay before the first token.")
    tokens_per_s: float = Field(
        default=0.0, ge=0, description="Output rate after the first token; 0 = unpaced."
    )
    jitter: float = Field(
        default=0.0, ge=0, le=1, description="Relative random spread of TTFT and token gaps."
    )

    @classmethod
    def parse(cls, spec: str) -> ModelProfile:
        """Parse ``name:ttft_ms:tokens_per_s[:jitter]`` (the CLI's ``--profile``)."""
        parts = spec.split(":")
        if len(parts) not in (3, 4) or not parts[0]:
            raise SimConfigError(
                f"bad --profile {spec!r}: expected name:ttft_ms:tokens_per_s[:jitter]"
            )
        try:
            numbers = [float(p) for p in parts[1:]]
        except ValueError as exc:
            raise SimConfigError(f"bad --profile {spec!r}: {exc}") from exc
        jitter = numbers[2] if len(numbers) == 3 else 0.0
        return cls(name=parts[0], ttft_ms=numbers[0], tokens_per_s=numbers[1], jitter=jitter)


def default_profiles() -> list[ModelProfile]:
    """The fast tier, the deep tier, and an unpaced model for benchmarks."""
    return [
        ModelProfile(name="gpt-5.3-codex-spark", ttft_ms=60, tokens_per_s=1000, jitter=0.1),
        ModelProfile(name="gpt-5.3-codex", ttft_ms=600, tokens_per_s=70, jitter=0.1),
        ModelProfile(name="sim-bench", ttft_ms=0, tokens_per_s=0),
    ]


class Fault(BaseModel):
    """A failure applied to the next matching request(s)."""

    kind: FaultKind
    model: str | None = Field(default=None, description="Only requests for this model.")
    count: int = Field(default=1, ge=1, description="How many requests it applies to.")
    tokens: int | None = Field(default=None, ge=0, description="drop_after_tokens: k.")
    status: int | None = Field(
        default=None, ge=100, le=599, description="http_error / ws_handshake_status."
    )
    retry_after_s: float | None = Field(default=None, ge=0, description="http_error: Retry-After.")
    delay_ms: float | None = Field(default=None, ge=0, description="slow_first_token: extra delay.")
    served_model: str | None = Field(default=None, description="served_model: reported model.")
    message: str | None = Field(default=None, description="Error message override.")

    @model_validator(mode="after")
    def _check_needed(self) -> Fault:
        needed = _FAULT_NEEDS[self.kind]
        if needed is not None and getattr(self, needed) is None:
            raise ValueError(f"fault kind {self.kind!r} needs {needed!r}")
        return self


class TapeMatch(BaseModel):
    """When a tape entry applies. All given conditions must hold."""

    model: str | None = None
    contains: list[str] = Field(default_factory=list)
    regex: str | None = None
    anywhere: bool = Field(
        default=False,
        description="Test contains/regex against the whole input, instructions included.",
    )

    @field_validator("contains", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class TapeToolCall(BaseModel):
    name: str
    arguments: dict[str, Any] | list[Any] | str = Field(default_factory=dict)


class TapeEntry(BaseModel):
    """One scripted answer."""

    match: TapeMatch = Field(default_factory=TapeMatch)
    text: str | None = None
    tool_calls: list[TapeToolCall] = Field(default_factory=list)
    served_model: str | None = None
    times: int | None = Field(default=None, ge=1, description="Use at most this many times.")


class SimConfig(BaseModel):
    """Everything the simulated provider needs."""

    models: list[ModelProfile] = Field(default_factory=default_profiles)
    tape: list[TapeEntry] | Path | None = Field(
        default=None, description="Scripted answers, or a YAML/JSONL file holding them."
    )
    api_key: str | None = Field(default=None, description="Require this key when set.")
    steer_supported: bool = Field(default=False, description="Accept response.steer on the WS.")
    usage_choices_null: bool = Field(
        default=False, description="Chat usage chunk with choices: null instead of []."
    )
    unmatched: Literal["synthetic", "error"] = Field(
        default="synthetic",
        description="With a tape, a request no entry matches gets synthetic text "
        "('synthetic', N = the request's output limit) or a 400 error "
        "'no_tape_match' naming the request ('error': what a job's own simulator does, so "
        "an unscripted request cannot stream filler up to the limit).",
    )
    seed: int = Field(default=0, description="Seed for jitter and synthetic text.")
    default_output_tokens: int = Field(default=64, ge=0, description="Synthetic length default.")
    ws_deflate: bool = Field(
        default=True, description="Offer permessage-deflate on the WebSocket (as OpenAI does)."
    )

    def profile(self, name: str) -> ModelProfile | None:
        return next((m for m in self.models if m.name == name), None)
