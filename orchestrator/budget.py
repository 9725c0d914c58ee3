"""Budgets, checked before every model call: cost, tokens per tier, steps, wall time.

A breach raises ``BudgetExceeded``; the graph's step runner turns it into a pause (the
job is checkpointed and can be resumed with a raised budget), never a kill mid-write.

Wall time is the time the job ran, not the time it waited: ``running_s`` is what the
nodes ran so far, and ``started_ts`` is moved at the start of every node run so that
``now - started_ts`` is the running time (a job paused overnight for a human, or stopped
and resumed days later, does not find its wall budget spent). A node cut off by a crash
loses the seconds it ran.
"""

from __future__ import annotations

import time
from typing import Any

from orchestrator.errors import BudgetExceeded
from orchestrator.policy import Budgets


def new_usage() -> dict[str, Any]:
    return {"cost_usd": 0.0, "tokens": {}, "model_calls": 0, "started_ts": time.time()}


def resume_clock(usage: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``usage`` whose clock goes on from the running time recorded, so the time
    the job spent paused is not counted."""
    out = dict(usage)
    now = time.time()
    running = out.get("running_s")
    if not isinstance(running, (int, float)):  # a record from before ``running_s``
        running = max(0.0, now - out.get("started_ts", now))
    out["started_ts"] = now - running
    return out


def stop_clock(usage: dict[str, Any]) -> None:
    """Record the running time so far (at the end of a node run, or before a pause)."""
    usage["running_s"] = round(max(0.0, time.time() - usage.get("started_ts", time.time())), 3)


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
