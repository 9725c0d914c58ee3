"""``tandem bench routing``: the post-edit gate on labelled diffs, against baselines.

Each item of the JSONL data (``diff``, ``files``, ``n_files``, ``security``, ``language``,
``repo``, ``item_id``; ``task_text`` optional) is gated as if the fast tier had produced
it. Reported per group (overall, per language, Python only, django only):

- ``security_recall``: security items that a security rule escalated;
- ``false_escalation_rate``: non-security items that a security rule escalated;
- ``multi_file_recall``: items with two or more files that were escalated at all.

Baselines: ``fast-only`` (the shipped policy), ``deep-only`` (every step on deep, so every
item counts as escalated), ``file-count-only`` (escalate when two or more files changed);
for baselines any escalation counts, whatever its reason. ``gate`` sees only the diff;
``gate+task-text`` also gives the gate the item's task text; ``route+gate`` adds the
pre-edit routing of the task text and the actual files to the diff-only gate. Items are also
split by a hash of their id into ``tune`` and ``check`` halves so that rules tuned on one
half can be checked on the other. Timings are medians in milliseconds on this machine.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import statistics
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import click

from orchestrator.errors import ConfigError
from orchestrator.policy import Policy, load_policy
from orchestrator.router import Decision, StepFacts, gate_diff, route_step

Item = dict[str, Any]
Verdict = Callable[[Item], tuple[bool, bool]]  # -> (escalated for security, escalated at all)
_TIMING_LINES = 200


def read_items(path: Path) -> list[Item]:
    """Items of a JSONL file; a bad line is a ``ConfigError`` naming the file and line."""
    items = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read benchmark data ({exc.strerror})") from exc
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            _ = (item["diff"], item["security"], item["language"])
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path}:{lineno}: not a routing item ({exc})") from exc
        items.append(item)
    if not items:
        raise ConfigError(f"{path}: no items")
    return items


def split_of(item: Item) -> str:
    digest = hashlib.sha256(str(item.get("item_id", item["diff"])).encode()).digest()
    return "tune" if digest[0] % 2 == 0 else "check"


def _n_files(item: Item) -> int:
    return int(item.get("n_files") or len(item.get("files") or []))


def _groups(item: Item) -> list[str]:
    out = ["overall", f"language:{item['language']}", f"split:{split_of(item)}"]
    if item["language"] == "Python":
        out.append("python-only")
    if item.get("repo") == "django/django":
        out.append("django-only")
    if item.get("source") == "swebench_verified":
        out.append("swebench-only")
    return out


def _metrics(rows: list[tuple[Item, bool, bool]]) -> dict[str, Any]:
    sec = [s for it, s, _a in rows if it["security"]]
    non = [s for it, s, _a in rows if not it["security"]]
    multi = [a for it, _s, a in rows if _n_files(it) >= 2]

    def rate(xs: list[bool]) -> float | None:
        return round(sum(xs) / len(xs), 4) if xs else None

    return {
        "items": len(rows),
        "security_items": len(sec),
        "multi_file_items": len(multi),
        "security_recall": rate(sec),
        "false_escalation_rate": rate(non),
        "multi_file_recall": rate(multi),
        "escalation_rate": rate([a for _it, _s, a in rows]),
    }


def evaluate(items: list[Item], verdict: Verdict) -> dict[str, Any]:
    """Metrics of one verdict function, per group."""
    grouped: dict[str, list[tuple[Item, bool, bool]]] = {}
    for item in items:
        security, anyway = verdict(item)
        for group in _groups(item):
            grouped.setdefault(group, []).append((item, security, anyway))
    return {g: _metrics(rows) for g, rows in sorted(grouped.items())}


def _gate_verdict(policy: Policy, decisions: dict[str, Decision], with_task: bool) -> Verdict:
    def verdict(item: Item) -> tuple[bool, bool]:
        task = item.get("task_text", "") if with_task else ""
        d = gate_diff(policy, item["diff"], tier="fast", task_text=task, run_linter=False)
        if not with_task:
            decisions[str(item.get("item_id"))] = d
        return d.security_escalation, d.escalated

    return verdict


def _with_task_verdict(policy: Policy, decisions: dict[str, Decision]) -> Verdict:
    def verdict(item: Item) -> tuple[bool, bool]:
        gate = decisions[str(item.get("item_id"))]
        files = list(item.get("files") or [])
        route = route_step(policy, StepFacts(step_text=item.get("task_text", ""),
                                             predicted_files=files))
        sec_route = any(m.category in ("security", "secret") for m in route.rules)
        deep = route.tier != policy.default_tier
        return gate.security_escalation or sec_route, gate.escalated or deep

    return verdict


def _baselines(items: list[Item]) -> dict[str, Any]:
    fast = load_policy("fast-only", user_path=Path("/nonexistent"))
    deep = load_policy("deep-only", user_path=Path("/nonexistent"))

    def fast_only(item: Item) -> tuple[bool, bool]:
        d = gate_diff(fast, item["diff"], tier=fast.default_tier, run_linter=False)
        return d.escalated, d.escalated

    def deep_only(item: Item) -> tuple[bool, bool]:
        tier = route_step(deep, StepFacts(step_text="", predicted_files=[])).tier
        return tier == deep.deepest_tier, tier == deep.deepest_tier

    def file_count_only(item: Item) -> tuple[bool, bool]:
        multi = _n_files(item) >= 2
        return multi, multi

    return {"fast-only": evaluate(items, fast_only), "deep-only": evaluate(items, deep_only),
            "file-count-only": evaluate(items, file_count_only)}


def _timing_diffs(items: list[Item], lines: int) -> list[str]:
    """Diffs of ``lines`` changed lines (within 10%), made by joining real items' diffs
    (cycling through the items when there are few)."""
    out: list[str] = []
    parts: list[str] = []
    count = 0
    for item in itertools.islice(itertools.cycle(items), max(len(items), lines)):
        changed = sum(1 for ln in item["diff"].splitlines()
                      if ln[:1] in "+-" and not ln.startswith(("+++", "---")))
        if count + changed > lines * 1.1:
            continue
        parts.append(item["diff"].rstrip("\n"))
        count += changed
        if count >= lines * 0.9:
            out.append("\n".join(parts) + "\n")
            parts, count = [], 0
    return out[:25]


def _median_ms(fn: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(samples), 3)


def timings(policy: Policy, items: list[Item], lines: int = _TIMING_LINES) -> dict[str, Any]:
    """Gate medians on ~``lines``-line diffs, without and with the linter, side by side."""
    diffs = _timing_diffs(items, lines)
    def gate(diff: str, linter: bool) -> Callable[[], object]:
        return lambda: gate_diff(policy, diff, tier="fast", run_linter=linter)

    without = [_median_ms(gate(d, False), 5) for d in diffs]
    with_linter = [_median_ms(gate(d, True), 1) for d in diffs]
    return {
        "diffs": len(diffs),
        "diff_lines_target": lines,
        "gate_median_ms_no_linter": round(statistics.median(without), 3) if diffs else None,
        "gate_median_ms_with_linter": round(statistics.median(with_linter), 3) if diffs else None,
        "linter_cost_median_ms": round(statistics.median(with_linter) - statistics.median(without),
                                       3) if diffs else None,
    }


def false_escalations(items: Iterable[Item], decisions: dict[str, Decision]) -> list[dict]:
    """Non-security items escalated for security reasons, with the rules and patterns."""
    out = []
    for item in items:
        d = decisions[str(item.get("item_id"))]
        if not item["security"] and d.security_escalation:
            out.append({"item_id": item.get("item_id"), "rule_id": d.rule_id,
                        "rules": [{"id": m.id, **m.features} for m in d.rules
                                  if m.category in ("security", "secret")]})
    return out


def run(data: Path, policy_name: str, with_timing: bool = True) -> dict[str, Any]:
    items = read_items(data)
    policy = load_policy(policy_name, user_path=Path("/nonexistent"))
    decisions: dict[str, Decision] = {}
    result: dict[str, Any] = {"data": str(data), "policy": policy.name, "items": len(items)}
    result["gate"] = evaluate(items, _gate_verdict(policy, decisions, with_task=False))
    result["gate+task-text"] = evaluate(items, _gate_verdict(policy, decisions, with_task=True))
    result["route+gate"] = evaluate(items, _with_task_verdict(policy, decisions))
    result["baselines"] = _baselines(items)
    result["false_escalations"] = false_escalations(items, decisions)
    if with_timing:
        result["timing"] = timings(policy, items)
    return result


@click.command("routing")
@click.option("--data", "data", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="Labelled JSONL (diff, files, n_files, security, language, repo, item_id).")
@click.option("--policy", "policy_name", default="default", show_default=True,
              help="Policy name or file whose gate is measured.")
@click.option("--no-timing", is_flag=True, help="Skip the gate timing (faster).")
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
def cli(data: Path, policy_name: str, no_timing: bool, as_json: bool) -> None:
    """Measure the security gate: security recall, false escalations and multi-file recall,
    overall, per language, Python-only and django-only, against the fast-only, deep-only and
    file-count-only baselines, plus the gate's time with and without the linter."""
    from orchestrator.cli import emit_json

    result = run(data, policy_name, with_timing=not no_timing)
    if as_json:
        emit_json(result)
        return
    names = ("gate", "gate+task-text", "route+gate")
    for name, groups in [*((n, result[n]) for n in names), *result["baselines"].items()]:
        click.echo(f"{name}:")
        for group, m in groups.items():
            click.echo(f"  {group:24} sec_recall={m['security_recall']} "
                       f"false_esc={m['false_escalation_rate']} multi={m['multi_file_recall']} "
                       f"(n={m['items']})")
    if "timing" in result:
        click.echo(f"timing: {result['timing']}")
