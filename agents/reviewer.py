"""The reviewer: a deep review of a fast draft that tripped the gate."""

from __future__ import annotations

from dataclasses import dataclass

from agents.base import ModelCaller, Turn, prompt


@dataclass(frozen=True)
class Review:
    approved: bool
    edits: str  # edit blocks that fix the draft ("" when approved)


async def review_draft(
    call: ModelCaller, *, tier: str, task: str, step_no: int, intent: str, diff: str,
    reasons: list[str],
) -> Review:
    text = (
        f"TASK:\n{task}\n\nSTEP {step_no} REVIEW: {intent}\n\nGATE REASONS:\n"
        + "\n".join(f"- {r}" for r in reasons)
        + f"\n\nDRAFT DIFF:\n```diff\n{diff}\n```"
    )
    answer = await call(tier=tier, phase="review", instructions=prompt("reviewer"),
                        turns=[Turn("user", text)])
    if answer.strip().splitlines()[:1] == ["APPROVE"]:
        return Review(approved=True, edits="")
    return Review(approved=False, edits=answer)
