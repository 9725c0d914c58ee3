"""Routing receipts: one per model call and per decision, the audit trail of a job.

Receipts go into the job's event log (``events.py``), the checkpoint commit trailers and
the PR body. They never hold secrets: free text is redacted before it is stored.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, Field

Phase = Literal["plan", "route", "edit", "gate", "verify", "review", "checkpoint", "pr", "approval"]
Kind = Literal["decision", "model_call"]


class Receipt(BaseModel):
    """One decision or model call. Units are in the field names."""

    job_id: str
    step: int | None = Field(default=None, description="1-based plan step; None for job-level")
    phase: Phase
    kind: Kind
    tier: str | None = None
    rule_id: str | None = Field(default=None, description="policy rule that decided")
    action: str | None = Field(default=None, description="proceed, escalate-redo, block, ...")
    reasons: list[str] = Field(default_factory=list)
    features: dict[str, Any] = Field(default_factory=dict)
    requested_model: str | None = None
    served_model: str | None = None
    transport: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    tokens_cached: int = 0
    cost_usd: float = 0.0
    ttft_ms: float | None = None
    tokens_per_s: float | None = None
    duration_ms: float | None = None
    checkpoint_sha: str | None = None
    steer: str | None = Field(default=None, description="steering message applied, if any")
    ts: float = Field(default_factory=time.time)

    def trailers(self) -> dict[str, str]:
        """The git trailers that carry this receipt in a checkpoint commit."""
        out: dict[str, str] = {}
        if self.step is not None:
            out["Tandem-Step"] = str(self.step)
        if self.tier:
            out["Tandem-Tier"] = self.tier
        if self.requested_model:
            out["Tandem-Requested-Model"] = self.requested_model
        if self.served_model:
            out["Tandem-Served-Model"] = self.served_model
        if self.rule_id:
            out["Tandem-Rule"] = self.rule_id
        out["Tandem-Tokens"] = (
            f"in={self.tokens_in} out={self.tokens_out} cached={self.tokens_cached}"
        )
        out["Tandem-Cost-USD"] = f"{self.cost_usd:.6f}"
        return out
