"""From a finished job to its pull request: the step table from the graph state, the
deterministic PR body from the receipts, then delivery (bundle, GitHub or GitLab)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.pr import CheckSummary, ForgeConfig, StepSummary, deliver, render_pr
from orchestrator.state import JobState

if TYPE_CHECKING:
    from orchestrator.jobctx import JobRuntime


def step_summaries(steps: list[dict[str, Any]]) -> list[StepSummary]:
    out = []
    for s in steps:
        checks = [CheckSummary(name=v["name"], passed=v["passed"], exit_code=v.get("exit_code"),
                               duration_ms=v.get("duration_ms", 0.0), summary=v.get("summary", ""))
                  for v in s.get("verification", [])]
        out.append(StepSummary(**{k: v for k, v in s.items() if k != "verification"},
                               verification=checks))
    return out


def budget_report(rt: JobRuntime, state: JobState) -> dict[str, Any]:
    """Budget used against its limit, for the PR's budget table."""
    usage = state.get("usage", {})
    limits = rt.policy.budgets
    report: dict[str, Any] = {
        "cost_usd": {"used": round(usage.get("cost_usd", 0.0), 6), "limit": limits.max_cost_usd},
        "steps": {"used": len(state.get("steps_done", [])), "limit": limits.max_steps},
        "wall_s": {"used": round(time.time() - usage.get("started_ts", time.time()), 1),
                   "limit": limits.max_wall_s},
        "model_calls": {"used": usage.get("model_calls", 0), "limit": None},
    }
    for tier, used in sorted(usage.get("tokens", {}).items()):
        report[f"tokens.{tier}"] = {"used": used, "limit": limits.max_tokens.get(tier)}
    return report


def forge_config(rt: JobRuntime) -> ForgeConfig:
    pr = rt.policy.pr
    return ForgeConfig(kind=rt.job.pr, draft=pr.draft, labels=list(pr.labels),  # type: ignore[arg-type]
                       base_branch=pr.base, **rt.job.forge)


async def deliver_job_pr(
    rt: JobRuntime, state: JobState, *, title: str, summary: str
) -> dict[str, Any]:
    if rt.job.pr == "none" or not rt.policy.pr.enabled:
        return {"kind": "none"}
    content = render_pr(
        rt.job.job_id, state["task"], rt.policy.pr.title_prefix + title, summary,
        [s["intent"] for s in state["plan"]],
        step_summaries([dict(s) for s in state.get("steps_done", [])]),
        rt.events_receipts(), budget_report(rt, state),
    )
    rt.ws.settle()
    result = await deliver(rt.ws.path, rt.ws.branch, state["base_sha"], content,
                           forge_config(rt), Path(rt.job.dir) / "pr",
                           known_secrets=rt.known_secrets)
    return result.model_dump(mode="json")
