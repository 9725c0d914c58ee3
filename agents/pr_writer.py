"""The PR writer: title and summary of the pull request, validated.

The text is the model's, bound for a forge where it is rendered and acted upon: control
characters and bidirectional overrides are dropped, HTML comments (hidden from a reviewer
reading the rendered page) removed, ``@user``/``@org/team`` mentions quoted so that they
ping nobody, and secrets redacted (a finding would otherwise stop the delivery).
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, Field

from agents.base import ModelCaller, StructuredOutputError, Turn, call_structured, prompt
from orchestrator.pr.render import inert
from orchestrator.secrets import redact
from orchestrator.security.text import printable


class PRText(BaseModel):
    title: str = Field(min_length=3, max_length=100)
    summary: str = Field(min_length=3, max_length=4000)


def clean_pr_text(text: PRText, known_secrets: Sequence[str] = ()) -> PRText:
    """The model's title and summary made safe to publish (see the module docstring).
    Redaction comes last: dropping a zero-width character or a comment after it could
    join the halves of a secret it did not recognise."""
    title = redact(" ".join(printable(text.title).split()), known_secrets)
    summary = redact(inert(printable(text.summary.replace("\r\n", "\n"), "\n\t")),
                     known_secrets)
    return PRText.model_construct(title=title, summary=summary.strip())


async def write_pr_text(
    call: ModelCaller, *, tier: str, task: str, steps: list[str],
    known_secrets: Sequence[str] = (),
) -> PRText:
    """Title and summary; falls back to a plain one built from the task if the model fails."""
    listing = "\n".join(f"{i}. {s}" for i, s in enumerate(steps, 1))
    turns = [Turn("user", f"PR FOR TASK:\n{task}\n\nSTEPS DONE:\n{listing}")]
    try:
        text = await call_structured(call, tier=tier, phase="pr",
                                     instructions=prompt("pr_writer"), turns=turns, model=PRText)
    except StructuredOutputError:
        first = task.strip().splitlines()[0] if task.strip() else "Tandem changes"
        return PRText(title=first[:72], summary=f"Automated change for: {task.strip()[:500]}")
    return clean_pr_text(text, known_secrets)
