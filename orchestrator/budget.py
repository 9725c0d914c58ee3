"""Budgets, checked before every model call: cost, tokens per tier, steps, wall time.

A breach raises ``BudgetExceeded``; the graph's step runner turns it into a pause (the
job is checkpointed and can be resumed with a raised budget), never a kill mid-write.
"""

from __future__ import annotations

import time
from typing import Any

from orchestrator.errors import BudgetExceeded
from orchestrator.policy import Budgets


def new_usage() -> dict[str, Any]:
    return {"cost_usd": 0.0, "tokens": {}, "model_calls": 0, "started_ts": time.time()}


def add_call(usage: dict[str, Any], tier: str, tokens: int, cost: float) -> None:
    usage["cost_usd"] = usage.get("cost_usd", 0.0) + cost
    by_tier = usage.setdefault("tokens", {})
    by_tier[tier] = by_tier.get(tier, 0) + tokens
    usage["model_calls"] = usage.get("model_calls", 0) + 1


def check(budgets: Budgets, usage: dict[str, Any], *, tier: str, steps_done: int) -> None:
    """Raise BudgetExceeded if another call on ``tier`` would start over budget."""
    if budgets.max_cost_usd is not None and usage.get("cost_usd", 0.0) >= budgets.max_cost_usd:
        raise BudgetExceeded("cost_usd", usage["cost_usd"], budgets.max_cost_usd)
    limit = budgets.max_tokens.get(tier)
    used = usage.get("tokens", {}).get(tier, 0)
    if limit is not None and used >= limit:
        raise BudgetExceeded(f"tokens.{tier}", used, limit)
    if steps_done >= budgets.max_steps:
        raise BudgetExceeded("steps", steps_done, budgets.max_steps)
    elapsed_s = time.time() - usage.get("started_ts", time.time())
    if elapsed_s >= budgets.max_wall_s:
        raise BudgetExceeded("wall_s", round(elapsed_s, 1), budgets.max_wall_s)
