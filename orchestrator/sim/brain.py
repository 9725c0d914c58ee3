"""What the simulated model says: a tape entry if one matches, else synthetic text."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from orchestrator.sim.prompt import Prompt
from orchestrator.sim.tape import Tape
from orchestrator.sim.tokens import synthetic_text


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: str  # a JSON document, as the wire protocols carry it


@dataclass
class Reply:
    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    served_model: str | None = None
    source: str = "synthetic"  # "tape", "synthetic" or "unmatched"


def think(prompt: Prompt, tape: Tape | None, *, default_tokens: int, seed: int,
          synthetic: bool = True) -> Reply:
    """The tape's answer, else synthetic text; without ``synthetic``, an empty reply of
    source "unmatched" (nothing is generated: the caller refuses the request)."""
    entry = tape.take(prompt) if tape is not None else None
    if entry is None and not synthetic:
        return Reply(text="", source="unmatched")
    if entry is None:
        n_tokens = prompt.max_output_tokens
        n_tokens = default_tokens if n_tokens is None else n_tokens
        return Reply(text=synthetic_text(n_tokens, seed))
    calls = [
        ToolCall(c.name, c.arguments if isinstance(c.arguments, str) else json.dumps(c.arguments))
        for c in entry.tool_calls
    ]
    return Reply(
        text=entry.text or "", tool_calls=calls, served_model=entry.served_model, source="tape"
    )
