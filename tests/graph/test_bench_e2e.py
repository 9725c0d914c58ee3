"""The e2e benchmark's scenario: its tape lets every policy finish the demo, and
``--quick-steps`` adds single-file steps that the default policy keeps on the fast tier
(the security-sensitive step still ends on deep, under `fast-review` through the deep
review's corrections). Run on the simulator with quick speed profiles; the benchmark
itself uses the demo's profiles."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from orchestrator.bench.e2e import (
    _policy_file,
    _run_policy,
    bench_tape,
    bench_task,
    summary_table,
)
from orchestrator.demo import DEMO_TASK
from orchestrator.sim import SimConfig, SimServer
from orchestrator.sim.tape import validate_entries
from tests.fixtures_jobs import DEEP, FAST, quick_profiles


def test_added_quick_steps_extend_the_plan_and_the_tape() -> None:
    assert bench_task(0) == DEMO_TASK
    base, more = bench_tape(0), bench_tape(3)
    plan = next(e["text"] for e in more if e["match"] == {"model": DEEP,
                                                          "contains": "REPOSITORY FILES:"})
    steps = json.loads(plan)["steps"]
    assert [s["files"] for s in steps[3:]] == [["shop/packs4.py"], ["shop/packs5.py"],
                                               ["shop/packs6.py"]]
    assert len(more) == len(base) + 2 * 3  # an answer from each model per added step
    # the demo's deep review (used by `fast-review`) is kept, for both models
    assert {e["match"]["model"] for e in base if e["match"]["contains"] == "STEP 2 REVIEW:"} \
        == {DEEP, FAST}
    assert "packs of 4 to 6 items" in bench_task(3)


def test_default_keeps_added_quick_steps_on_fast(tmp_path: Path) -> None:
    tape = validate_entries(bench_tape(2))
    results = {}
    with SimServer(SimConfig(models=quick_profiles(), tape=tape)).run_in_thread() as sim:
        for name in ("default", "fast-review", "fast-only", "deep-only"):
            policy = _policy_file(tmp_path, name, sim.base_url)
            results[name] = asyncio.run(_run_policy(name, policy, tmp_path, bench_task(2)))
    default, deep = results["default"], results["deep-only"]
    assert default["status"] == deep["status"] == "done"
    assert default["step_tiers"] == {"1": "fast", "2": "deep", "3": "fast", "4": "fast",
                                     "5": "fast"}
    assert set(deep["step_tiers"].values()) == {"deep"}
    assert default["security_sensitive_steps"] == [2] and default["sensitive_steps_on_deep"]
    assert deep["security_sensitive_steps"] == [2] and deep["sensitive_steps_on_deep"]
    # fast-review: the auth draft is corrected by the deep review, so step 2 ends on deep
    review, fast = results["fast-review"], results["fast-only"]
    assert review["step_tiers"] == default["step_tiers"] and review["sensitive_steps_on_deep"]
    # fast-only's gate has no security rules to mark a step: nothing to check, not a pass
    assert set(fast["step_tiers"].values()) == {"fast"}
    assert fast["security_sensitive_steps"] == [] and fast["sensitive_steps_on_deep"] is None
    assert len(default["overhead_ms_per_step"]) == 5
    # the table printed without --json: a line per policy, tiers in step order
    lines = summary_table(results).splitlines()
    assert lines[0].split()[:2] == ["policy", "status"] and len(lines) == 5
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["default"][-6:] == ["fast", "deep", "fast", "fast", "fast", "yes"]
    assert rows["fast-only"][1] == "done" and rows["fast-only"][-1] == "-"
