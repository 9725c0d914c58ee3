"""The planner: task in, a validated list of steps out."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field, field_validator

from agents.base import ModelCaller, Turn, call_structured, prompt
from orchestrator.errors import UnsafePath
from orchestrator.security.text import printable, strip_html_comments
from orchestrator.workspace.paths import normalize_edit_path

MAX_PLAN_STEPS = 8
MAX_INTENT_CHARS = 300
MAX_STEP_FILES = 20


def _one_line(value: Any) -> Any:
    """An intent is a commit subject, a prompt line and a PR list item: one line of
    printable text. A terminal escape, a line break, a bidi override or a zero-width
    character from the model is dropped, and so is an HTML comment (hidden on a forge):
    the text is final here, so the redaction that follows sees what is published."""
    if not isinstance(value, str):
        return value  # the type check reports it
    return " ".join(strip_html_comments(printable(value)).split())


class PlanStep(BaseModel):
    intent: Annotated[str, BeforeValidator(_one_line)] = Field(
        min_length=3, max_length=MAX_INTENT_CHARS)
    files: list[str] = Field(default_factory=list, max_length=MAX_STEP_FILES)

    @field_validator("files")
    @classmethod
    def _relative(cls, files: list[str]) -> list[str]:
        """The edit paths' own rules (the editor is shown these files), normalised."""
        out: list[str] = []
        for f in files:
            try:
                path = normalize_edit_path(f)
            except UnsafePath:
                raise ValueError(f"file {f[:200]!r} must be a relative path inside the "
                                 "repository, outside .git") from None
            if path not in out:
                out.append(path)
        return out


class Plan(BaseModel):
    steps: list[PlanStep] = Field(min_length=1, max_length=MAX_PLAN_STEPS)


async def make_plan(
    call: ModelCaller, *, tier: str, task: str, repo_files: list[str], repairs: int = 1
) -> Plan:
    listing = "\n".join(repo_files[:400])
    turns = [Turn("user", f"TASK:\n{task}\n\nREPOSITORY FILES:\n{listing}")]
    return await call_structured(call, tier=tier, phase="plan", instructions=prompt("planner"),
                                 turns=turns, model=Plan, repairs=repairs)
