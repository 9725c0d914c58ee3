"""One view of a request, whatever the wire protocol: who said what, and the limits.

Responses input items, Chat messages and Anthropic messages are reduced to ``Turn``s
(role + plain text) so the tape, the synthetic generator and usage counting do not care
which API the request came through.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from orchestrator.sim.tokens import count_all


@dataclass(frozen=True)
class Turn:
    role: str
    text: str


@dataclass
class Prompt:
    model: str
    turns: list[Turn]
    instructions: str = ""
    max_output_tokens: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def last_user_text(self) -> str:
        """Text of the last user message: what tape ``contains``/``regex`` test."""
        return next((t.text for t in reversed(self.turns) if t.role == "user"), "")

    @property
    def all_text(self) -> str:
        """Instructions and every turn: what ``match.anywhere`` tests."""
        return "\n".join([self.instructions, *(t.text for t in self.turns)])

    def input_tokens(self) -> int:
        return count_all([self.instructions, *(t.text for t in self.turns)])


def _content_text(content: Any) -> str:
    """Text of a content field: a string, or a list of typed parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(_part_text(p) for p in content)
    return json.dumps(content)


def _part_text(part: Any) -> str:
    if isinstance(part, str):
        return part
    if not isinstance(part, dict):
        return ""
    if "text" in part and isinstance(part["text"], str):
        return part["text"]
    if part.get("type") == "tool_use":
        return json.dumps(part.get("input", {}))
    if part.get("type") == "tool_result":
        return _content_text(part.get("content"))
    return ""


def responses_turns(items: list[dict[str, Any]]) -> list[Turn]:
    """Turns from Responses input (or output) items."""
    turns: list[Turn] = []
    for item in items:
        kind = item.get("type", "message")
        if kind == "message":
            turns.append(Turn(str(item.get("role", "user")), _content_text(item.get("content"))))
        elif kind == "function_call":
            turns.append(Turn("assistant", str(item.get("arguments", ""))))
        elif kind == "function_call_output":
            turns.append(Turn("tool", _content_text(item.get("output"))))
    return turns


def responses_items(raw_input: Any) -> list[dict[str, Any]]:
    """Normalise a Responses ``input`` (string or item list) to a list of items."""
    if raw_input is None:
        return []
    if isinstance(raw_input, str):
        return [{"type": "message", "role": "user", "content": raw_input}]
    if isinstance(raw_input, list):
        return [i for i in raw_input if isinstance(i, dict)]
    raise ValueError("'input' must be a string or a list of items")


def chat_turns(messages: list[dict[str, Any]]) -> tuple[str, list[Turn]]:
    """(system text, turns) from Chat Completions messages."""
    system: list[str] = []
    turns: list[Turn] = []
    for msg in messages:
        role = str(msg.get("role", "user"))
        text = _content_text(msg.get("content"))
        for call in msg.get("tool_calls") or []:
            text += str(call.get("function", {}).get("arguments", ""))
        if role in ("system", "developer"):
            system.append(text)
        else:
            turns.append(Turn(role, text))
    return "\n".join(system), turns


def anthropic_turns(system: Any, messages: list[dict[str, Any]]) -> tuple[str, list[Turn]]:
    """(system text, turns) from Anthropic Messages; tool results count as tool turns."""
    turns: list[Turn] = []
    for msg in messages:
        content = msg.get("content")
        is_tool_result = isinstance(content, list) and any(
            isinstance(p, dict) and p.get("type") == "tool_result" for p in content
        )
        role = "tool" if is_tool_result else str(msg.get("role", "user"))
        turns.append(Turn(role, _content_text(content)))
    return _content_text(system), turns
