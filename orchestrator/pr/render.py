"""The PR body: a model-written summary, then deterministic sections built from receipts.

Everything a model produced (title, summary, step intents, reasons) is treated as text to
quote, never as markup to trust: table cells are flattened to one line and ``|`` escaped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from orchestrator.pr.models import PRContent, StepSummary
from orchestrator.receipts import Receipt
from orchestrator.security.text import strip_html_comments

TITLE_MAX_CHARS = 72
CELL_MAX_CHARS = 80
_ESCALATING_ACTIONS = ("escalate", "escalate-redo", "escalate-review")
_MENTION = re.compile(r"(?<![\w@.`/])@[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?"
                      r"(?:/[A-Za-z0-9][A-Za-z0-9_.-]*)?")


def inert(text: str) -> str:
    """Model text made inert on a forge: HTML comments (hidden from a reviewer reading the
    rendered page) removed, ``@user``/``@org/team`` mentions quoted so they ping nobody."""
    return _MENTION.sub(lambda m: f"`{m.group(0)}`", strip_html_comments(text))


def render_pr(
    job_id: str,
    task: str,
    title: str,
    summary: str,
    plan: list[str],
    steps: list[StepSummary],
    receipts: list[Receipt],
    budget: dict[str, Any],
) -> PRContent:
    """Title and body of the job's PR: the summary, then plan, steps, verification,
    escalations and budget, all derived from the job's records."""
    clean_title = validate_title(title, task)
    clean_summary = summary.strip() or task.strip()
    sections = [
        clean_summary,
        "## Task\n\n" + quote(task),
        "## Plan\n\n" + plan_section(plan),
        "## Steps\n\n" + steps_table(steps),
        "## Verification\n\n" + verification_section(steps),
        "## Escalations\n\n" + escalations_section(steps, receipts),
        "## Budget\n\n" + budget_section(steps, receipts, budget),
        footer(job_id),
    ]
    return PRContent(title=clean_title, summary=clean_summary, body="\n\n".join(sections) + "\n")


def validate_title(title: str, task: str) -> str:
    """One line, at most ``TITLE_MAX_CHARS``; the task's first line when the model gave none."""
    text = " ".join(title.split()) or " ".join(task.strip().splitlines()[:1]).strip()
    text = text or "Tandem changes"
    if len(text) > TITLE_MAX_CHARS:
        text = text[: TITLE_MAX_CHARS - 1].rstrip() + "…"
    return text


def cell(value: object, max_chars: int = CELL_MAX_CHARS) -> str:
    """A markdown table cell: one line, pipes escaped, shortened."""
    text = " ".join(str(value).split()) if value is not None else ""
    if len(text) > max_chars:
        text = text[: max_chars - 1] + "…"
    return text.replace("|", "\\|") or "—"


def quote(text: str) -> str:
    return "\n".join("> " + line for line in (text.strip() or "(none)").splitlines())


def plan_section(plan: list[str]) -> str:
    if not plan:
        return "(no plan recorded)"
    return "\n".join(f"{i}. {inert(' '.join(item.split()))}"
                     for i, item in enumerate(plan, start=1))


def _table(header: list[str], rows: Iterable[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def steps_table(steps: list[StepSummary]) -> str:
    if not steps:
        return "(no steps recorded)"
    header = ["#", "intent", "tier", "served model", "rule", "tokens in/out", "cost",
              "time", "checkpoint"]
    rows = [
        [str(s.step), cell(inert(s.intent)), cell(s.tier), f"`{cell(s.served_model)}`",
         f"`{cell(s.rule_id)}`", f"{s.tokens_in:,} / {s.tokens_out:,}", usd(s.cost_usd),
         seconds(s.duration_ms), f"`{s.checkpoint_sha[:10]}`" if s.checkpoint_sha else "—"]
        for s in steps
    ]
    return _table(header, rows)


def verification_section(steps: list[StepSummary]) -> str:
    rows = [
        [str(s.step), cell(v.name), "pass" if v.passed else "**FAIL**",
         "—" if v.exit_code is None else str(v.exit_code), seconds(v.duration_ms),
         cell(v.summary)]
        for s in steps
        for v in s.verification
    ]
    if not rows:
        return "(no verification commands ran)"
    return _table(["step", "check", "result", "exit", "time", "summary"], rows)


def escalations(steps: list[StepSummary], receipts: list[Receipt]) -> list[str]:
    """Every escalation with its reason, once, in step order."""
    found: list[tuple[int, str]] = []
    for s in steps:
        found += [(s.step, " ".join(reason.split())) for reason in s.escalations]
    recorded = set(found)
    for r in receipts:
        if r.action and r.action.startswith(_ESCALATING_ACTIONS):
            why = "; ".join(" ".join(x.split()) for x in r.reasons) or r.action
            if (r.step or 0, why) in recorded:
                continue  # the step's own record already says it
            rule = f" (rule `{r.rule_id}`)" if r.rule_id else ""
            found.append((r.step or 0, f"{r.phase}: {why}{rule}"))
    seen: set[tuple[int, str]] = set()
    out = []
    for step, text in sorted(found, key=lambda item: item[0]):
        if (step, text) not in seen:
            seen.add((step, text))
            out.append(f"step {step}: {text}" if step else f"job: {text}")
    return out


def escalations_section(steps: list[StepSummary], receipts: list[Receipt]) -> str:
    items = escalations(steps, receipts)
    return "\n".join(f"- {item}" for item in items) if items else "None: no step was escalated."


def budget_section(
    steps: list[StepSummary], receipts: list[Receipt], budget: dict[str, Any]
) -> str:
    """Budget lines as given (``{"cost_usd": {"used": .., "limit": ..}}`` or plain
    numbers), then the totals per served model from the model-call receipts."""
    rows = [[cell(name), *_used_limit(value)] for name, value in budget.items()]
    parts = [_table(["budget", "used", "limit"], rows)] if rows else []
    totals = _model_totals(receipts) or _model_totals_from_steps(steps)
    if totals:
        parts.append(_table(
            ["served model", "calls", "tokens in/out", "cost"],
            [[f"`{cell(m)}`", str(c), f"{ti:,} / {to:,}", usd(cost)]
             for m, (c, ti, to, cost) in totals.items()],
        ))
    return "\n\n".join(parts) or "(no budget recorded)"


def _used_limit(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [_num(value.get("used")), _num(value.get("limit"))]
    return [_num(value), "—"]


def _num(value: Any) -> str:
    if value is None:
        return "—"
    return f"{value:g}" if isinstance(value, float) else cell(value)


Totals = dict[str, tuple[int, int, int, float]]


def _model_totals(receipts: list[Receipt]) -> Totals:
    out: Totals = {}
    for r in receipts:
        if r.kind == "model_call":
            c, ti, to, cost = out.get(r.served_model or "?", (0, 0, 0, 0.0))
            out[r.served_model or "?"] = (c + 1, ti + r.tokens_in, to + r.tokens_out,
                                          cost + r.cost_usd)
    return out


def _model_totals_from_steps(steps: list[StepSummary]) -> Totals:
    out: Totals = {}
    for s in steps:
        c, ti, to, cost = out.get(s.served_model or "?", (0, 0, 0, 0.0))
        out[s.served_model or "?"] = (c + 1, ti + s.tokens_in, to + s.tokens_out,
                                      cost + s.cost_usd)
    return out


def usd(value: float) -> str:
    return f"${value:.4f}"


def seconds(duration_ms: float) -> str:
    return f"{duration_ms / 1000:.1f} s"


def footer(job_id: str) -> str:
    return (
        f"---\nGenerated by Tandem job `{cell(job_id)}`. Every commit carries `Tandem-*` "
        "trailers (step, tier, served model, rule, tokens, cost): "
        "`git log --format='%h %s%n%(trailers)'` shows who wrote what."
    )
