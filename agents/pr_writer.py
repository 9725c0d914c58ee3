"""The PR writer: title and summary of the pull request, validated."""

from __future__ import annotations

from pydantic import BaseModel, Field

from agents.base import ModelCaller, StructuredOutputError, Turn, call_structured, prompt


class PRText(BaseModel):
    title: str = Field(min_length=3, max_length=100)
    summary: str = Field(min_length=3, max_length=4000)


async def write_pr_text(
    call: ModelCaller, *, tier: str, task: str, steps: list[str]
) -> PRText:
    """Title and summary; falls back to a plain one built from the task if the model fails."""
    listing = "\n".join(f"{i}. {s}" for i, s in enumerate(steps, 1))
    turns = [Turn("user", f"PR FOR TASK:\n{task}\n\nSTEPS DONE:\n{listing}")]
    try:
        return await call_structured(call, tier=tier, phase="pr", instructions=prompt("pr_writer"),
                                     turns=turns, model=PRText)
    except StructuredOutputError:
        first = task.strip().splitlines()[0] if task.strip() else "Tandem changes"
        return PRText(title=first[:72], summary=f"Automated change for: {task.strip()[:500]}")
