"""The graph state of one job: plain JSON-able values, so every checkpointer stores it.

Code state lives in git; the graph state records the SHA of the last git checkpoint
(``checkpoint_sha``) and the edits accepted since (``pending_edits``), so the worktree
can always be rebuilt exactly: reset to ``checkpoint_sha``, re-apply ``pending_edits``.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

Route = Literal["plan", "route", "edit", "gate", "review", "verify", "escalate", "pause",
                "hold", "approval", "checkpoint", "pr", "done"]


class StepRecord(TypedDict, total=False):
    step: int
    intent: str
    tier: str
    rule_id: str | None
    served_model: str | None
    tokens_in: int
    tokens_out: int
    cost_usd: float
    duration_ms: float
    checkpoint_sha: str
    escalations: list[str]
    verification: list[dict[str, Any]]


class JobState(TypedDict, total=False):
    # identity (set once by the runner)
    job_id: str
    task: str
    # workspace
    base_sha: str
    checkpoint_sha: str
    # plan
    plan: list[dict[str, Any]]  # [{"intent": str, "files": [str]}]
    step_index: int  # 0-based index into plan
    # current step
    tier: str
    route_rule: str | None
    forced_tier: str | None
    pending_edits: list[str]  # edit texts applied on top of checkpoint_sha
    observation: str | None  # feedback for the next edit attempt
    edit_attempts: int
    tier_failures: int  # verification failures on the current tier
    deep_failures: int
    signatures: list[str]  # failure signatures seen in this step
    escalations: list[str]  # reasons, for the receipts and the PR
    approval_required: bool
    approval_reasons: list[str]
    gate_action: str | None
    gate_reasons: list[str]
    verification: list[dict[str, Any]]
    step_started_ts: float
    next: Route
    hold: dict[str, Any] | None  # why the job pauses in ``hold``, and the node to go back to
    # results
    steps_done: list[StepRecord]
    usage: dict[str, Any]  # {"cost_usd": float, "tokens": {tier: int}, "model_calls": int}
    pr: dict[str, Any] | None
    status: str
