"""What the agents need from the engine, as one small Protocol, plus prompt and JSON helpers.

Agents build prompts and validate answers; they never pick a model, check budgets or
write receipts themselves: the ``ModelCaller`` (the engine's gateway) does that.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from pydantic import BaseModel, ValidationError

PROMPTS_DIR = Path(__file__).parent / "prompts"
T = TypeVar("T", bound=BaseModel)


@dataclass(frozen=True)
class Turn:
    role: str  # "user" | "assistant"
    content: str


class ModelCaller(Protocol):
    async def __call__(
        self, *, tier: str, phase: str, instructions: str, turns: list[Turn],
        max_output_tokens: int | None = None,
    ) -> str:
        """Stream one model call and return its full text."""
        ...


def prompt(name: str) -> str:
    return (PROMPTS_DIR / f"{name}.md").read_text(encoding="utf-8")


class StructuredOutputError(ValueError):
    """A model answer that does not validate, with the message to send back for repair."""


_FENCE_TAG = re.compile(r"^json\b")


def _fenced_object(text: str) -> str | None:
    """The first ```` ``` ```` (or ```` ```json ````) fenced block that holds one JSON
    object. Linear in the answer's length: a lazy regex over an answer full of fences
    backtracks quadratically (seconds of a blocked event loop per 100 kB)."""
    for body in text.split("```")[1::2]:
        body = _FENCE_TAG.sub("", body).strip()
        if body.startswith("{") and body.endswith("}"):
            return body
    return None


def parse_json_model(text: str, model: type[T]) -> T:
    """Validate the first JSON object in ``text`` (fenced or bare) as ``model``."""
    candidate = _fenced_object(text)
    if candidate is None:
        candidate = text[text.find("{") : text.rfind("}") + 1]
    try:
        return model.model_validate(json.loads(candidate))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise StructuredOutputError(
            f"the answer is not valid {model.__name__} JSON: {exc}"
        ) from exc
    except RecursionError:  # nesting deeper than the decoder's stack: refused like the rest
        raise StructuredOutputError(
            f"the answer is not valid {model.__name__} JSON: it is nested too deeply"
        ) from None


async def call_structured(
    call: ModelCaller, *, tier: str, phase: str, instructions: str, turns: list[Turn],
    model: type[T], max_output_tokens: int | None = None, repairs: int = 1,
) -> T:
    """One call, validated; an invalid answer is sent back for repair up to ``repairs``
    times, then the validation error propagates."""
    for attempt in range(repairs + 1):
        text = await call(tier=tier, phase=phase, instructions=instructions, turns=turns,
                          max_output_tokens=max_output_tokens)
        try:
            return parse_json_model(text, model)
        except StructuredOutputError as exc:
            if attempt == repairs:
                raise
            turns = [*turns, Turn("assistant", text),
                     Turn("user", f"REPAIR: {exc}\nAnswer again with only the JSON object.")]
    raise AssertionError("unreachable")
