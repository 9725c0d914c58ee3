"""``tandem policy``: validate a policy, export its JSON Schema, explain a decision."""

from __future__ import annotations

import json
from pathlib import Path

import click

from orchestrator.cli import emit_json
from orchestrator.errors import ConfigError
from orchestrator.policy import Policy, load_policy, policy_json_schema
from orchestrator.router import Decision, StepFacts, gate_diff, route_step
from orchestrator.security.diff import parse_diff


@click.group()
def policy() -> None:
    """Policies decide which tier serves each step and when a change escalates.

    Shipped: default, strict, fast-only, deep-only. Layers: built-in < ~/.tandem/policy.yaml
    < <repo>/.tandem/policy.yaml (may only tighten) < -s key=value. See docs/POLICIES.md.
    """


def _load(name: str, repo: Path | None, overrides: tuple[str, ...]) -> Policy:
    return load_policy(name, repo=repo, overrides=overrides)


@policy.command("check")
@click.argument("file")
@click.option("--repo", type=click.Path(path_type=Path, exists=True, file_okay=False),
              help="Also apply this repository's .tandem/policy.yaml (tighten-only).")
@click.option("-s", "--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a setting, e.g. -s budgets.max_steps=20 (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def check(file: str, repo: Path | None, overrides: tuple[str, ...], as_json: bool) -> None:
    """Validate FILE (a policy path or a shipped name) with every layer applied.

    Prints a summary and exits 0, or one line naming file, line and field and exits 2.
    """
    result = _load(file, repo, overrides)
    if as_json:
        emit_json({"ok": True, **result.summary()})
        return
    click.echo(f"ok: policy {result.name!r}")
    for key, value in result.summary().items():
        click.echo(f"  {key}: {value}")


@policy.command("schema")
@click.option("--json", "as_json", is_flag=True, help="Accepted for symmetry; output is JSON.")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False),
              help="Write to this file instead of stdout.")
def schema(as_json: bool, output: Path | None) -> None:
    """Export the policy JSON Schema (editor completion and checks for policy files)."""
    text = json.dumps(policy_json_schema(), indent=2)
    if output is None:
        click.echo(text)
        return
    try:
        output.write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        hint = " (create the folder first)" if isinstance(exc, FileNotFoundError) else ""
        raise ConfigError(f"-o {output}: cannot write the schema: {exc.strerror}{hint}") from exc


def _read_diff(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the diff ({exc.strerror})") from exc


def _print_decision(title: str, decision: Decision) -> None:
    click.echo(f"{title}: tier={decision.tier} action={decision.action} "
               f"rule={decision.rule_id}")
    for match in decision.rules:
        click.echo(f"  - {match.id} [{match.category}, {match.action}]: {match.reason}")
        for key, value in match.features.items():
            click.echo(f"      {key}: {value}")


@policy.command("explain")
@click.option("--policy", "policy_name", default="default", show_default=True,
              help="Policy name or file.")
@click.option("--diff", "diff_path", type=click.Path(path_type=Path, dir_okay=False),
              required=True, help="Unified diff to judge (e.g. from `git diff`).")
@click.option("--task", "task_text", default="",
              help="Step or task text (pre-edit rules; gate rules with a task_text condition).")
@click.option("--tier", default=None, help="Tier that produced the diff (default: the fast one).")
@click.option("--repo", type=click.Path(path_type=Path, exists=True, file_okay=False),
              help="Apply this repository's .tandem/policy.yaml.")
@click.option("-s", "--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a setting, e.g. -s gate_rules.gate.linter.action=block.")
@click.option("--no-linter", is_flag=True, help="Skip bandit on changed Python files.")
@click.option("--json", "as_json", is_flag=True, help="Print both decisions as JSON.")
def explain(policy_name: str, diff_path: Path, task_text: str, tier: str | None,
            repo: Path | None, overrides: tuple[str, ...], no_linter: bool,
            as_json: bool) -> None:
    """Show what a policy would do with a change: the pre-edit route (from the task text and
    the diff's files) and the post-edit gate (on the diff), each with the rules that matched."""
    diff = _read_diff(diff_path)
    parsed = parse_diff(diff)
    if not parsed.files:
        raise ConfigError(f"{diff_path}: no file changes found "
                          "(expected a unified diff, e.g. from git diff)")
    loaded = _load(policy_name, repo, overrides)
    route = route_step(loaded, StepFacts(step_text=task_text, predicted_files=parsed.paths))
    gate = gate_diff(loaded, diff, tier=tier or loaded.tier_names[0], task_text=task_text,
                     run_linter=not no_linter)
    if as_json:
        emit_json({"policy": loaded.name,
                   "route": {**route.model_dump(), "reasons": route.reasons},
                   "gate": {**gate.model_dump(), "reasons": gate.reasons}})
        return
    _print_decision("route", route)
    _print_decision("gate", gate)
