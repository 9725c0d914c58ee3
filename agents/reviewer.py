"""The reviewer: a deep review of a fast draft that tripped the gate."""

from __future__ import annotations

from dataclasses import dataclass

from agents.base import ModelCaller, Turn, prompt
from orchestrator.errors import EditApplyError, InvalidModelOutput
from orchestrator.workspace.edits import parse_edits


@dataclass(frozen=True)
class Review:
    approved: bool
    edits: str  # edit blocks that fix the draft ("" when approved)


_REPAIR = ("REPAIR: your answer is neither the single line APPROVE nor edit blocks. Answer "
           "again: APPROVE alone, or the edit blocks that fix the draft.")


async def review_draft(
    call: ModelCaller, *, tier: str, task: str, step_no: int, intent: str, diff: str,
    reasons: list[str], repairs: int = 1,
) -> Review:
    """APPROVE, or the correcting edit blocks. An answer that is neither (a refusal, a
    truncated or empty answer) is no review: it is sent back for repair, then raises
    ``InvalidModelOutput`` (the job pauses) rather than letting the draft through."""
    text = (
        f"TASK:\n{task}\n\nSTEP {step_no} REVIEW: {intent}\n\nGATE REASONS:\n"
        + "\n".join(f"- {r}" for r in reasons)
        + f"\n\nDRAFT DIFF:\n```diff\n{diff}\n```"
    )
    turns = [Turn("user", text)]
    for _ in range(repairs + 1):
        answer = await call(tier=tier, phase="review", instructions=prompt("reviewer"),
                            turns=turns)
        if answer.strip().splitlines()[:1] == ["APPROVE"]:
            return Review(approved=True, edits="")
        try:
            if parse_edits(answer):
                return Review(approved=False, edits=answer)
        except EditApplyError:
            return Review(approved=False, edits=answer)  # malformed: applying it says why
        turns = [*turns, Turn("assistant", answer), Turn("user", _REPAIR)]
    raise InvalidModelOutput(f"the step {step_no} reviewer answered neither APPROVE nor edit "
                             f"blocks after {repairs} repairs; the flagged draft was not "
                             "accepted: resume to ask again")
