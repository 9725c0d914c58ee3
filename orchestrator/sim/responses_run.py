"""Turning a Responses create body into a ``Run`` (shared by HTTP and the WebSocket)."""

from __future__ import annotations

from typing import Any

from orchestrator.sim.prompt import Prompt, responses_items, responses_turns
from orchestrator.sim.responses_render import Run
from orchestrator.sim.state import ApiError, SimState
from orchestrator.sim.tokens import count_all


def new_input(body: dict[str, Any]) -> list[dict[str, Any]]:
    try:
        return responses_items(body.get("input"))
    except ValueError as exc:
        raise ApiError(400, str(exc), param="input") from exc


def max_tokens(body: dict[str, Any], *names: str) -> int | None:
    for name in names:
        value = body.get(name)
        if value is not None:
            if not isinstance(value, int) or value < 0:
                raise ApiError(400, f"'{name}' must be a non-negative integer", param=name)
            return value
    return None


def build_run(
    state: SimState,
    body: dict[str, Any],
    prior_items: list[dict[str, Any]],
    *,
    websocket: bool,
) -> tuple[Run, list[dict[str, Any]]]:
    """The run for ``body`` continuing ``prior_items``; also returns the effective input."""
    items = prior_items + new_input(body)
    instructions = body.get("instructions")
    prompt = Prompt(
        model=str(body["model"]),
        turns=responses_turns(items),
        instructions=instructions if isinstance(instructions, str) else "",
        max_output_tokens=max_tokens(body, "max_output_tokens"),
    )
    gen = state.begin(prompt, websocket=websocket)
    cached = count_all(t.text for t in responses_turns(prior_items))
    run = Run(gen=gen, request=body, input_tokens=prompt.input_tokens(), cached_tokens=cached)
    return run, items
