"""``tandem bench e2e``: the demo scenario under several policies, side by side.

The simulated provider runs in its own process with the demo's speed profiles (fast
~1,000 tok/s, deep ~70 tok/s) and a tape where both models can do every step, so each
policy can finish. For each policy the bench reports wall time, model streaming time,
verification time, the orchestrator's own overhead per step (wall time not spent in a
model call or a verification command) and its fraction of the job, and which tier ran
each step. The security linter of the gate is reported on its own (``linter_ms``).
"""

from __future__ import annotations

import asyncio
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import click
import yaml

from agents.planner import MAX_PLAN_STEPS
from orchestrator.cli import emit_json

POLICIES = ("default", "fast-review", "fast-only", "deep-only")
DEMO_STEPS = 3
FAST = "gpt-5.3-codex-spark"
DEEP = "gpt-5.3-codex"


def bench_tape(quick_steps: int = 0) -> list[dict[str, Any]]:
    """The demo tape, with an answer for every step (and the demo's review) from both
    models (the demo's failing fast fix is replaced by the working one: the bench
    measures speed, not retries).

    ``quick_steps`` appends that many more single-file steps to the plan, each about the
    size of the demo's quick steps (a small helper in a new module), to measure how the
    policies compare as the share of quick steps in a task grows."""
    from orchestrator.demo import TAPE_PATH

    entries = yaml.safe_load(TAPE_PATH.read_text())["entries"]
    by_key = {(e["match"]["model"], e["match"]["contains"]): e["text"] for e in entries}
    plan_key = "REPOSITORY FILES:"
    if quick_steps:
        plan = json.loads(by_key[(DEEP, plan_key)])
        first = len(plan["steps"]) + 1
        for n in range(first, first + quick_steps):
            plan["steps"].append({"intent": f"Add a packs_needed helper for packs of {n} "
                                            f"items in shop/packs{n}.py",
                                  "files": [f"shop/packs{n}.py"]})
            by_key[(FAST, f"STEP {n}:")] = _quick_step_answer(n)
        by_key[(DEEP, plan_key)] = ('{"steps": [\n  '
                                    + ",\n  ".join(json.dumps(st) for st in plan["steps"])
                                    + "\n]}")
    keys = list(dict.fromkeys(k for _m, k in by_key if k.startswith("STEP ")))
    out = []
    for key in [*keys, plan_key, "PR FOR TASK"]:
        fast, deep = by_key.get((FAST, key)), by_key.get((DEEP, key))
        if key == "STEP 3":
            fast = deep
        out.append({"match": {"model": FAST, "contains": key}, "text": fast or deep})
        out.append({"match": {"model": DEEP, "contains": key}, "text": deep or fast})
    return out


def _quick_step_answer(n: int) -> str:
    return f"""Adding the helper in a new module.

shop/packs{n}.py
<<<<<<< SEARCH
=======
\"\"\"Packing orders into packs of {n} items.\"\"\"

PACK_SIZE = {n}


def packs_needed(items: int) -> int:
    \"\"\"Whole packs of PACK_SIZE items needed for ``items`` items (at least one).\"\"\"
    if items <= 0:
        return 1
    return -(-items // PACK_SIZE)
>>>>>>> REPLACE
"""


def _policy_file(dirpath: Path, name: str, base_url: str) -> Path:
    from orchestrator.policy import load_policy

    policy = load_policy(name)
    tiers = {}
    for tier, spec in policy.tiers.items():
        models = [m.model_dump(exclude={"fallbacks"}) | {"base_url": base_url, "api_key_env": None}
                  for m in spec.models]
        tiers[tier] = {"models": models}
    path = dirpath / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"extends": name, "name": name, "tiers": tiers}))
    return path


def _measure(job: Any) -> dict[str, Any]:
    from orchestrator.events import read_events

    events = read_events(job.events_path)
    start = next(e["ts"] for e in events if e["type"] == "job.start")
    end = next(e["ts"] for e in reversed(events) if e["type"].startswith("job."))
    calls = [e["receipt"] for e in events if e["type"] == "receipt"
             and e["receipt"]["kind"] == "model_call"]
    gates = [e["receipt"] for e in events if e["type"] == "receipt"
             and e["receipt"]["phase"] == "gate"]
    verifies = [e for e in events if e["type"] == "verify"]
    per_step = []
    # A step's window runs from the end of what came before it (the plan, or the previous
    # step's checkpoint) to its own checkpoint, so the graph's work between steps counts.
    ends = {e["receipt"]["step"]: e["ts"] for e in events if e["type"] == "receipt"
            and e["receipt"]["phase"] == "checkpoint"}
    plan_end = next(e["ts"] for e in events if e["type"] == "plan")
    for step in sorted({s["step"] for s in job.steps}):
        t0, t1 = ends.get(step - 1, plan_end), ends[step]
        model_s = sum(c["duration_ms"] for c in calls if c["step"] == step) / 1000
        verify_s = sum(r["duration_ms"] for v in verifies if v["step"] == step
                       for r in v["results"]) / 1000
        lint_s = sum(g["features"].get("linter_ms", 0.0) for g in gates
                     if g["step"] == step) / 1000
        per_step.append((t1 - t0 - model_s - verify_s - lint_s) * 1000)
    wall_s = end - start
    model_s = sum(c["duration_ms"] for c in calls) / 1000
    verify_s = sum(r["duration_ms"] for v in verifies for r in v["results"]) / 1000
    lint_s = sum(g["features"].get("linter_ms", 0.0) for g in gates) / 1000
    overhead_s = wall_s - model_s - verify_s - lint_s
    sensitive = sorted({g["step"] for g in gates if any(
        str(r).startswith(("gate.sensitive", "gate.risky", "gate.linter", "gate.secret"))
        for r in g["reasons"])})
    tiers = {str(s["step"]): s["tier"] for s in job.steps}
    return {
        "status": job.status,
        "wall_s": round(wall_s, 3),
        "model_stream_s": round(model_s, 3),
        "verification_s": round(verify_s, 3),
        "linter_ms": round(lint_s * 1000, 1),
        "orchestrator_overhead_ms_per_step": round(statistics.median(per_step), 1)
        if per_step else None,
        "overhead_ms_per_step": [round(x, 1) for x in per_step],
        "overhead_fraction": round(overhead_s / wall_s, 4) if wall_s else None,
        "model_calls": len(calls),
        "step_tiers": tiers,
        "security_sensitive_steps": sensitive,
        # None where the policy's gate marked no step (fast-only has no such rules)
        "sensitive_steps_on_deep": all(tiers.get(str(s)) == "deep" for s in sensitive)
        if sensitive else None,
    }


def bench_task(quick_steps: int = 0) -> str:
    from orchestrator.demo import DEMO_TASK

    if not quick_steps:
        return DEMO_TASK
    return (f"{DEMO_TASK} Also add packs_needed helpers for packs of 4 to {3 + quick_steps} "
            "items, one module each.")


async def _run_policy(name: str, policy: Path, workdir: Path, task: str) -> dict[str, Any]:
    from orchestrator.cli.jobs import create_demo_repo
    from orchestrator.demo import DEMO_TEST_CMD
    from orchestrator.jobstore import JobRecord, new_job_id
    from orchestrator.runner import run_job

    repo = create_demo_repo(workdir / f"shop-{name}")
    job = JobRecord(job_id=new_job_id(), repo=str(repo), task=task, policy=str(policy),
                    test_cmd=DEMO_TEST_CMD, pr="bundle")
    job.save()
    job = await run_job(job)
    return _measure(job)


@click.command()
@click.option("--policies", default=",".join(POLICIES), show_default=True,
              help="Comma-separated policies to compare.")
@click.option("--quick-steps", type=click.IntRange(0, MAX_PLAN_STEPS - DEMO_STEPS), default=0,
              show_default=True,
              help="Add this many quick single-file steps to the demo's three (each a small "
                   "helper in a new module), to see how the policies compare as the share "
                   "of quick steps grows; a plan has at most 8 steps. 0 runs the demo "
                   "scenario as it is.")
@click.option("--json", "json_out", is_flag=True, help="Print the results as JSON.")
def cli(policies: str, quick_steps: int, json_out: bool) -> None:
    """Run the demo scenario under each policy in one run and compare wall time, model
    time, verification time and the orchestrator's overhead per step.

    The demo scenario has three steps, one of them security-sensitive (redone on the deep
    tier under `default`, corrected by a deep review of the fast draft under
    `fast-review`, fast under `fast-only`), and the plan is made on deep; so the gain of
    `default` over `deep-only` is bounded by that mix. --quick-steps measures it for
    tasks with more quick steps.
    """
    import os

    from orchestrator.config import use_settings
    from orchestrator.sim import SimConfig, SimServer
    from orchestrator.sim.tape import validate_entries

    names = [p.strip() for p in policies.split(",") if p.strip()]
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="tandem-bench-e2e-") as tmp:
        workdir = Path(tmp)
        use_settings(home=workdir / "home")
        tape = validate_entries(bench_tape(quick_steps))
        with SimServer.subprocess(SimConfig(tape=tape)) as sim:
            for i, name in enumerate(names, 1):
                click.echo(f"[{i}/{len(names)}] {name}: running the demo scenario...", err=True)
                policy = _policy_file(workdir, name, sim.base_url)
                results[name] = asyncio.run(
                    _run_policy(name, policy, workdir, bench_task(quick_steps)))
    out: dict[str, Any] = {
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
                   f"Python {platform.python_version()}",
        "quick_steps_added": quick_steps,
        "policies": results,
        "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if "default" in results and "deep-only" in results:
        out["deep_only_over_default_wall"] = round(
            results["deep-only"]["wall_s"] / results["default"]["wall_s"], 2)
    if json_out:
        emit_json(out)
        return
    click.echo(summary_table(results))
    if "deep_only_over_default_wall" in out:
        click.echo(f"deep-only / default wall time: {out['deep_only_over_default_wall']}x")


def summary_table(results: dict[str, dict[str, Any]]) -> str:
    """The figures of each policy, one line each (what --json prints in full)."""
    head = ("policy", "status", "wall s", "model s", "verify s", "overhead ms/step",
            "overhead %", "tiers by step", "sensitive on deep")
    rows = [head]
    for name, r in results.items():
        fraction = r["overhead_fraction"]
        rows.append((name, r["status"], f"{r['wall_s']:.2f}", f"{r['model_stream_s']:.2f}",
                     f"{r['verification_s']:.2f}", str(r["orchestrator_overhead_ms_per_step"]),
                     "-" if fraction is None else f"{100 * fraction:.1f}",
                     " ".join(r["step_tiers"][k] for k in sorted(r["step_tiers"], key=int)),
                     {True: "yes", False: "NO", None: "-"}[r["sensitive_steps_on_deep"]]))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                     for row in rows)
