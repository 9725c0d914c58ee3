"""The editor: one agent for every tier; the tier only changes which model answers."""

from __future__ import annotations

from agents.base import ModelCaller, Turn, prompt


def edit_request(
    *, task: str, step_no: int, intent: str, files: dict[str, str | None],
    observation: str | None = None,
) -> list[Turn]:
    """The turns for one edit attempt. ``files`` maps path -> content (None = absent)."""
    parts = [f"TASK:\n{task}", f"STEP {step_no}: {intent}"]
    for path, content in files.items():
        body = "(file does not exist yet)" if content is None else content
        parts.append(f"FILE {path}:\n```\n{body}\n```")
    turns = [Turn("user", "\n\n".join(parts))]
    if observation:
        turns.append(Turn("user", f"STEP {step_no} OBSERVATION:\n{observation}"))
    return turns


async def propose_edit(call: ModelCaller, *, tier: str, turns: list[Turn]) -> str:
    return await call(tier=tier, phase="edit", instructions=prompt("editor"), turns=turns)
