"""The planner: task in, a validated list of steps out."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from agents.base import ModelCaller, Turn, call_structured, prompt


class PlanStep(BaseModel):
    intent: str = Field(min_length=3)
    files: list[str] = Field(default_factory=list)

    @field_validator("files")
    @classmethod
    def _relative(cls, files: list[str]) -> list[str]:
        for f in files:
            if f.startswith("/") or ".." in f.split("/") or f.split("/")[0] == ".git":
                raise ValueError(f"file {f!r} must be a relative path inside the repository")
        return files


MAX_PLAN_STEPS = 8


class Plan(BaseModel):
    steps: list[PlanStep] = Field(min_length=1, max_length=MAX_PLAN_STEPS)


async def make_plan(
    call: ModelCaller, *, tier: str, task: str, repo_files: list[str], repairs: int = 1
) -> Plan:
    listing = "\n".join(repo_files[:400])
    turns = [Turn("user", f"TASK:\n{task}\n\nREPOSITORY FILES:\n{listing}")]
    return await call_structured(call, tier=tier, phase="plan", instructions=prompt("planner"),
                                 turns=turns, model=Plan, repairs=repairs)
