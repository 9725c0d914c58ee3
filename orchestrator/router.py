"""The router: which tier does a step (before editing), and what happens to an edit (after).

No model is involved. ``route_step`` applies the policy's pre-edit rules to what is known
before editing; ``gate_diff`` applies the post-edit gate rules to the actual diff. Both
return a ``Decision`` whose ``rule_id`` names the rule that decided, so every routing
choice can be explained. When several rules match, the strongest action wins (``proceed``
< ``escalate-review`` < ``escalate-redo`` < ``require-approval`` < ``block``), then the
deepest tier. A secret in a diff is always blocked, whatever the policy says.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field

from orchestrator.config import secret_values
from orchestrator.errors import ConfigError
from orchestrator.policy import (
    REGEX_TEXT_LIMIT,
    SECURITY_CATEGORIES,
    Action,
    GateRule,
    GateWhen,
    Policy,
    RouteRule,
    RouteWhen,
    action_rank,
    text_regex,
)
from orchestrator.secrets import find_secrets
from orchestrator.security.diff import ParsedDiff, parse_diff
from orchestrator.security.globs import compile_glob, matching
from orchestrator.security.linter import SEVERITY_RANK, LinterFinding, lint_changes
from orchestrator.security.scan import PatternHit, scan

__all__ = ["Decision", "RuleMatch", "StepFacts", "gate_diff", "route_step"]

SECRET_RULE_ID = "gate.secret-always"  # the built-in rule behind "a secret is always blocked"
# Built-in: a change to the repository's own policy folder is always blocked (a model must
# never edit the rules that judge it), and a diff too large to scan always goes to a human.
REPO_POLICY_RULE_ID = "gate.repo-policy-always"
UNSCANNED_RULE_ID = "gate.too-large-to-scan"
REPO_POLICY_DIR = ".tandem"
# Added, removed and context characters the pattern scan and the linter read at most
# (about half a second of scanning); secrets are looked for in every added line whatever
# the size.
SCAN_LIMIT_CHARS = 1_000_000


class RuleMatch(BaseModel):
    """A rule that matched, why, and the facts it looked at."""

    id: str
    reason: str
    features: dict[str, Any] = Field(default_factory=dict)
    category: str = "other"
    action: Action = "proceed"
    tier: str | None = None


class Decision(BaseModel):
    """The outcome of routing or gating one step."""

    tier: str
    action: Literal["proceed", "escalate-redo", "escalate-review", "require-approval", "block"]
    rules: list[RuleMatch] = Field(default_factory=list)
    features: dict[str, Any] = Field(default_factory=dict)
    rule_id: str = Field(description="The deciding rule (a policy rule id or a '*.default').")

    @property
    def reasons(self) -> list[str]:
        return [f"{m.id}: {m.reason}" for m in self.rules]

    @property
    def escalated(self) -> bool:
        return self.action != "proceed"

    @property
    def security_escalation(self) -> bool:
        """Whether a security or secret rule asked for more than ``proceed``."""
        return any(m.category in SECURITY_CATEGORIES and m.action != "proceed" for m in self.rules)


@dataclass
class StepFacts:
    """What is known about a step before any edit exists."""

    step_text: str
    predicted_files: list[str] = field(default_factory=list)
    context_tokens: int = 0
    failures: int = 0
    same_failure_twice: bool = False
    forced_tier: str | None = None


# --- shared --------------------------------------------------------------------------


def _target_tier(policy: Policy, rule: RouteRule | GateRule) -> str:
    return rule.tier or policy.deepest_tier


def _deciding(matches: list[RuleMatch], policy: Policy) -> RuleMatch | None:
    if not matches:
        return None
    return max(
        matches,
        key=lambda m: (action_rank(m.action), policy.tier_rank(m.tier or policy.default_tier)),
    )


def _with_approval(policy: Policy, matches: list[RuleMatch]) -> None:
    """``approvals.security_sensitive``: security matches need a human before committing."""
    if not policy.approvals.security_sensitive:
        return
    for m in matches:
        if m.category in SECURITY_CATEGORIES and action_rank(m.action) < action_rank(
            "require-approval"
        ):
            m.action = "require-approval"
            m.reason += " (approvals.security_sensitive)"


# --- pre-edit ------------------------------------------------------------------------


def _route_match(policy: Policy, rule: RouteRule, facts: StepFacts) -> dict[str, Any] | None:
    """The features that made ``rule`` match, or None."""
    when = rule.when
    got: dict[str, Any] = {}
    if when.paths:
        hit = matching(facts.predicted_files, policy.expand_globs(when.paths))
        if not hit:
            return None
        got["paths"] = hit
    if when.min_files is not None:
        if len(facts.predicted_files) < when.min_files:
            return None
        got["files"] = len(facts.predicted_files)
    if when.step_text:
        words = _search_all(when.step_text, facts.step_text)
        if not words:
            return None
        got["step_text"] = words
    more = _history_match(policy, rule, facts)
    if more is None:
        return None
    return {**got, **more}


def _history_match(policy: Policy, rule: RouteRule, facts: StepFacts) -> dict[str, Any] | None:
    """The context-size and failure conditions of a pre-edit rule."""
    when = rule.when
    got: dict[str, Any] = {}
    if when.context_fraction is not None:
        window = policy.tiers[policy.default_tier].models[0].context_window
        if facts.context_tokens <= when.context_fraction * window:
            return None
        got.update(context_tokens=facts.context_tokens, context_window=window)
    if when.min_failures is not None:
        if facts.failures < when.min_failures:
            return None
        got["failures"] = facts.failures
    if when.same_failure_twice is not None:
        if facts.same_failure_twice != when.same_failure_twice:
            return None
        got["same_failure_twice"] = facts.same_failure_twice
    return got


def compile_matchers(policy: Policy) -> None:
    """Compile the policy's path globs and text regexes ahead of the first step (both are
    cached per process), so that step does not pay for them (~6 ms for ``default``)."""
    whens: list[RouteWhen | GateWhen] = [*(r.when for r in policy.route_rules),
                                          *(r.when for r in policy.gate_rules)]
    for when in whens:
        for glob in policy.expand_globs(when.paths or []):
            compile_glob(glob)
        texts = when.step_text if isinstance(when, RouteWhen) else when.task_text
        for rx in texts or []:
            text_regex(rx)


def _search_all(regexes: Sequence[str], text: str) -> list[str]:
    """What the policy's regexes match in ``text``: its first ``REGEX_TEXT_LIMIT`` characters
    (the patterns may come from a repository; see ``policy._backtracking``)."""
    found: list[str] = []
    text = text[:REGEX_TEXT_LIMIT]
    for rx in regexes:
        found.extend(m.group(0) for m in text_regex(rx).finditer(text))
    return sorted(set(found))[:10]


def route_step(policy: Policy, facts: StepFacts) -> Decision:
    """Pre-edit decision: the tier for a step, and whether it needs approval or is blocked.

    ``facts.forced_tier`` (from the user) fixes the tier; rules still decide the action.
    """
    if facts.forced_tier is not None and facts.forced_tier not in policy.tiers:
        known = ", ".join(policy.tiers)
        raise ConfigError(f"unknown tier {facts.forced_tier!r} (policy {policy.name}: {known})")
    matches = []
    for rule in policy.route_rules:
        got = _route_match(policy, rule, facts) if rule.enabled else None
        if got is not None:
            action: Action = "proceed" if rule.action.startswith("escalate") else rule.action
            matches.append(RuleMatch(id=rule.id, reason=rule.description or rule.id,
                                     features=got, category=rule.category, action=action,
                                     tier=_target_tier(policy, rule)))
    _with_approval(policy, matches)
    features = {"predicted_files": facts.predicted_files, "context_tokens": facts.context_tokens,
                "failures": facts.failures}
    if facts.forced_tier is not None:
        forced = RuleMatch(id="route.forced-tier", reason="tier chosen on the command line",
                           features={"tier": facts.forced_tier}, tier=facts.forced_tier)
        top = _deciding(matches, policy)
        action = top.action if top else "proceed"
        rule_id = top.id if top and top.action != "proceed" else forced.id
        return Decision(tier=facts.forced_tier, action=action, rules=[forced, *matches],
                        features=features, rule_id=rule_id)
    tier = max([policy.default_tier, *(m.tier or policy.default_tier for m in matches)],
               key=policy.tier_rank)
    top = _deciding(matches, policy)
    return Decision(tier=tier, action=top.action if top else "proceed", rules=matches,
                    features=features, rule_id=top.id if top else "route.default")


# --- post-edit -------------------------------------------------------------------------


@dataclass
class GateFacts:
    """Everything the gate rules look at, computed once per diff."""

    parsed: ParsedDiff
    hits: list[PatternHit]
    scores: dict[str, float]
    secrets: list[dict[str, Any]]
    linter: list[LinterFinding] | None  # None: not run
    task_text: str = ""
    scanned_chars: int = 0  # over SCAN_LIMIT_CHARS: not scanned for patterns


def _key_values(policy: Policy) -> list[str]:
    """Values of the API keys the policy's tiers use: they must never appear in a diff."""
    names = sorted({m.api_key_env for t in policy.tiers.values() for m in t.candidates()
                    if m.api_key_env})
    return secret_values(names)


def _secrets_in(parsed: ParsedDiff, known_values: list[str]) -> list[dict[str, Any]]:
    out = []
    for change in parsed.files:
        lines = [n for n, _t in change.added]
        for f in find_secrets(change.added_text, known_values):
            out.append({"path": change.path, "line": lines[f.line - 1], "kind": f.kind,
                        "excerpt": f.excerpt})
    return out


def _pattern_features(facts: GateFacts, categories: list[str], min_score: float) -> dict | None:
    chosen = {c: s for c, s in facts.scores.items() if "*" in categories or c in categories}
    total = sum(chosen.values())
    if total < min_score:
        return None
    hits = [h for h in facts.hits if h.category in chosen]
    return {"pattern_score": round(total, 2), "categories": sorted(chosen),
            "patterns": sorted({f"{h.pattern_id}@{h.path}:{h.where}" for h in hits})[:20]}


def _gate_match(policy: Policy, rule: GateRule, facts: GateFacts) -> dict[str, Any] | None:
    when, parsed = rule.when, facts.parsed
    checks: list[dict[str, Any] | None] = []  # one per condition; None = not met
    if when.paths:
        hit = matching(parsed.touched_paths, policy.expand_globs(when.paths))
        checks.append({"paths": hit} if hit else None)
    if when.min_files is not None:
        n = len(parsed.files)
        checks.append({"files": n} if n >= when.min_files else None)
    if when.min_lines is not None:
        n = parsed.lines_changed
        checks.append({"lines_changed": n} if n >= when.min_lines else None)
    if when.patterns:
        checks.append(_pattern_features(facts, when.patterns, when.min_pattern_score))
    if when.linter:
        floor = SEVERITY_RANK[when.linter_min_severity]
        found = [f"{f.test_id}@{f.path}:{f.line}" for f in facts.linter or []
                 if SEVERITY_RANK.get(f.severity, 0) >= floor]
        checks.append({"linter": found} if found else None)
    if when.secrets:
        found = [f"{s['kind']}@{s['path']}:{s['line']}" for s in facts.secrets]
        checks.append({"secrets": found} if found else None)
    if when.task_text:
        words = _search_all(when.task_text, facts.task_text)
        checks.append({"task_text": words} if words else None)
    checks.extend(_file_kind_checks(when, parsed))
    got: dict[str, Any] = {}
    for features in checks:
        if features is None:
            return None
        got.update(features)
    return got


def _file_kind_checks(when: GateWhen, parsed: ParsedDiff) -> list[dict[str, Any] | None]:
    """The conditions on what git's headers say about files: modes, links, binary content."""
    checks: list[dict[str, Any] | None] = []
    for name, found in (
        ("executable", lambda: [f.path for f in parsed.files if f.made_executable]),
        ("symlinks", lambda: [f"{f.path} -> {f.symlink_target}" for f in parsed.files
                              if f.symlink]),
        ("symlink_escapes", lambda: [f"{f.path} -> {f.symlink_target}" for f in parsed.files
                                     if f.symlink_escapes]),
        ("binary", lambda: [f.path for f in parsed.files if f.binary]),
    ):
        if getattr(when, name):
            hit = found()
            checks.append({name: hit} if hit else None)
    return checks


def _effective_action(policy: Policy, rule: GateRule, tier: str) -> Action:
    """Escalating to a tier no deeper than the one that made the edit is a no-op."""
    if rule.action.startswith("escalate") and policy.tier_rank(
        _target_tier(policy, rule)
    ) <= policy.tier_rank(tier):
        return "proceed"
    return rule.action


def gate_diff(
    policy: Policy,
    diff: str | ParsedDiff,
    *,
    tier: str,
    task_text: str = "",
    run_linter: bool = True,
    files: dict[str, str] | None = None,
) -> Decision:
    """Post-edit decision on the diff a ``tier`` model produced.

    ``diff`` is the unified diff's text, or that text already parsed (``parse_diff``).
    ``files`` (path -> new content) lets the linter see whole files; its findings count
    only on lines the diff added. ``task_text`` (the step or task) is seen only by rules
    with a ``task_text`` condition.
    """
    if tier not in policy.tiers:
        known = ", ".join(policy.tiers)
        raise ConfigError(f"unknown tier {tier!r} (policy {policy.name}: {known})")
    parsed = diff if isinstance(diff, ParsedDiff) else parse_diff(diff)
    size = sum(len(t) + 1 for f in parsed.files for t in (*(t for _n, t in f.added),
                                                           *f.removed, *f.context))
    hits, scores = scan(parsed) if size <= SCAN_LIMIT_CHARS else ([], {})
    wants_linter = run_linter and policy.gate.linter and size <= SCAN_LIMIT_CHARS and any(
        r.enabled and r.when.linter for r in policy.gate_rules
    )
    lint_start = time.perf_counter()
    findings = lint_changes(parsed, files) if wants_linter else None
    linter_ms = (time.perf_counter() - lint_start) * 1000 if wants_linter else 0.0
    facts = GateFacts(parsed, hits, scores, _secrets_in(parsed, _key_values(policy)),
                      findings, task_text, size)
    matches = _gate_matches(policy, facts, tier)
    _with_approval(policy, matches)
    top = _deciding(matches, policy)
    action = top.action if top else "proceed"
    out_tier = tier
    if top is not None and action != "block" and action != "proceed":
        # Every rule that asked for a deeper tier gets it, not only the deciding one: a
        # rule that only adds an approval (a repository's own, say) must not cancel the
        # deep redo a security rule asked for.
        asked = [m.tier or tier for m in matches if m.action not in ("proceed", "block")]
        out_tier = max([tier, *asked], key=policy.tier_rank)
    features = _summary(facts, task_text) | {"linter_ms": round(linter_ms, 2)}
    return Decision(tier=out_tier, action=action, rules=matches, features=features,
                    rule_id=top.id if top else "gate.default")


def _gate_matches(policy: Policy, facts: GateFacts, tier: str) -> list[RuleMatch]:
    matches = []
    for rule in policy.gate_rules:
        got = _gate_match(policy, rule, facts) if rule.enabled else None
        if got is not None:
            matches.append(RuleMatch(id=rule.id, reason=rule.description or rule.id,
                                     features=got, category=rule.category,
                                     action=_effective_action(policy, rule, tier),
                                     tier=_target_tier(policy, rule)))
    if facts.secrets and not any(m.action == "block" and m.features.get("secrets")
                                 for m in matches):
        matches.append(RuleMatch(
            id=SECRET_RULE_ID, reason="a secret in the diff is never committed",
            features={"secrets": [f"{s['kind']}@{s['path']}:{s['line']}" for s in facts.secrets]},
            category="secret", action="block", tier=tier))
    own = [p for p in facts.parsed.touched_paths if _in_repo_policy_dir(p)]
    if own:
        matches.append(RuleMatch(
            id=REPO_POLICY_RULE_ID, category="security", action="block", tier=tier,
            reason=f"the repository's {REPO_POLICY_DIR}/ folder (the policy that judges the "
                   "change) is never edited by a model", features={"paths": own}))
    if facts.scanned_chars > SCAN_LIMIT_CHARS:
        matches.append(RuleMatch(
            id=UNSCANNED_RULE_ID, category="security", action="require-approval",
            tier=policy.deepest_tier,
            reason=f"the diff is too large to scan for risky code ({facts.scanned_chars} "
                   f"characters of changed lines, limit {SCAN_LIMIT_CHARS}): a person decides",
            features={"chars": facts.scanned_chars, "limit": SCAN_LIMIT_CHARS}))
    return matches


def _in_repo_policy_dir(path: str) -> bool:
    """``.tandem/...`` at the top of the repository, in any case (case-insensitive file
    systems), or spelled with ``./``."""
    first = path.replace("\\", "/").removeprefix("./").lstrip("/").split("/", 1)[0]
    return first.lower() == REPO_POLICY_DIR


def _summary(facts: GateFacts, task_text: str) -> dict[str, Any]:
    parsed = facts.parsed
    return {
        "files": parsed.paths,
        "n_files": len(parsed.files),
        "lines_added": sum(len(f.added) for f in parsed.files),
        "lines_removed": sum(len(f.removed) for f in parsed.files),
        "languages": sorted({f.language for f in parsed.files if f.language}),
        "pattern_scores": {k: round(v, 2) for k, v in sorted(facts.scores.items())},
        "secrets": [{k: v for k, v in s.items() if k != "excerpt"} for s in facts.secrets],
        "linter": None if facts.linter is None else [
            {"path": f.path, "line": f.line, "test_id": f.test_id, "severity": f.severity}
            for f in facts.linter
        ],
        "task_text_chars": len(task_text),
    }
