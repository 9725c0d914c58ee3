"""The tighten-only rule for repository policies.

A repository's ``.tandem/policy.yaml`` is part of the repository's content, and that
content is not trusted (anyone who can open a PR can edit it). So that layer may add
rules, sensitive paths and approvals, but never weaken what the trusted layers set: it may
not disable or weaken a security rule, drop a sensitive path, turn off the linter or an
approval, point a tier at another endpoint (a key could be sent there),
move planning or review to a shallower tier, raise a budget, or drop or change a
verification command (it may add its own). Settings that act outside
the job worktree — the pause notification (a command run on the user's machine, a webhook
that would receive the job's details) and pushing checkpoints to a remote — belong to the
user alone: a repository may not set or change them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orchestrator.policy import SECURITY_CATEGORIES, GateRule, Policy, RouteRule, action_rank

if TYPE_CHECKING:
    from orchestrator.policy_load import KeyPath, Layer

_SEVERITY = {"low": 0, "medium": 1, "high": 2}


class _Loosened(Exception):
    def __init__(self, path: KeyPath, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(message)


def check_tighten_only(trusted: Policy, merged: Policy, repo_layer: Layer) -> None:
    """Raise ``PolicyError`` (at the repo file's line) if ``merged`` is looser than ``trusted``."""
    from orchestrator.policy_load import error_at

    try:
        _check_tiers(trusted, merged)
        _check_paths(trusted, merged)
        _check_switches(trusted, merged)
        _check_budgets(trusted, merged)
        _check_user_only(trusted, merged)
        _check_verify(trusted, merged)
        for kind in ("route_rules", "gate_rules"):
            _check_rules(trusted, merged, kind)
    except _Loosened as exc:
        msg = f"a repository policy may only tighten security settings: {exc.message}"
        raise error_at([repo_layer], exc.path, msg) from None


def _check_tiers(trusted: Policy, merged: Policy) -> None:
    if merged.tiers != trusted.tiers:
        raise _Loosened(("tiers",), "tiers and model endpoints cannot be changed by a repository")
    for name in ("default_tier", "plan_tier", "review_tier"):
        if merged.tier_rank(getattr(merged, name)) < trusted.tier_rank(getattr(trusted, name)):
            raise _Loosened((name,), f"{name} cannot move to a shallower tier")


def _check_paths(trusted: Policy, merged: Policy) -> None:
    missing = set(trusted.sensitive_paths) - set(merged.sensitive_paths)
    if missing:
        raise _Loosened(("sensitive_paths",), f"removes sensitive paths {sorted(missing)}")


def _check_switches(trusted: Policy, merged: Policy) -> None:
    pairs = (
        (("gate", "linter"), trusted.gate.linter, merged.gate.linter),
        (
            ("approvals", "security_sensitive"),
            trusted.approvals.security_sensitive,
            merged.approvals.security_sensitive,
        ),
        (("approvals", "before_pr"), trusted.approvals.before_pr, merged.approvals.before_pr),
    )
    for path, old, new in pairs:
        if old and not new:
            raise _Loosened(path, "turns off a safety setting")


_USER_ONLY = (
    ("approvals", "notify_command"),
    ("approvals", "notify_webhook"),
    ("approvals", "notify_timeout_s"),
    ("checkpoint", "push_refs"),
    ("checkpoint", "push_remote"),
)


def _check_user_only(trusted: Policy, merged: Policy) -> None:
    for section, field in _USER_ONLY:
        old = getattr(getattr(trusted, section), field)
        if getattr(getattr(merged, section), field) != old:
            raise _Loosened((section, field),
                            f"{section}.{field} acts outside the job worktree; only the user's "
                            "own policy may set it")


def _check_verify(trusted: Policy, merged: Policy) -> None:
    """The user's verification commands stay as they are (a security scan among them may
    be what the user relies on); a repository may add its own."""
    kept = {(c.name, str(c.cmd)) for c in merged.verify.commands}
    for command in trusted.verify.commands:
        if (command.name, str(command.cmd)) not in kept:
            raise _Loosened(("verify", "commands"),
                            f"drops or changes the verification command {command.name!r}")


def _check_budgets(trusted: Policy, merged: Policy) -> None:
    old, new = trusted.budgets, merged.budgets
    for name in ("max_steps", "max_wall_s"):
        if getattr(new, name) > getattr(old, name):
            raise _Loosened(("budgets", name), "raises a budget")
    if old.max_cost_usd is not None and (
        new.max_cost_usd is None or new.max_cost_usd > old.max_cost_usd
    ):
        raise _Loosened(("budgets", "max_cost_usd"), "raises a budget")
    for tier, limit in old.max_tokens.items():
        if new.max_tokens.get(tier, limit + 1) > limit:
            raise _Loosened(("budgets", "max_tokens", tier), "raises a budget")


def _check_rules(trusted: Policy, merged: Policy, kind: str) -> None:
    new_rules: dict[str, RouteRule | GateRule] = {r.id: r for r in getattr(merged, kind)}
    for old in getattr(trusted, kind):
        if old.category not in SECURITY_CATEGORIES or not old.enabled:
            continue
        path: KeyPath = (kind, old.id)
        new = new_rules.get(old.id)
        if new is None or not new.enabled:
            raise _Loosened((*path, "enabled"), f"disables security rule {old.id!r}")
        if new.category != old.category:
            raise _Loosened((*path, "category"), f"recategorises security rule {old.id!r}")
        if action_rank(new.action) < action_rank(old.action):
            raise _Loosened((*path, "action"), f"weakens the action of rule {old.id!r}")
        old_tier = trusted.tier_rank(old.tier or trusted.deepest_tier)
        if merged.tier_rank(new.tier or merged.deepest_tier) < old_tier:
            raise _Loosened((*path, "tier"), f"moves rule {old.id!r} to a shallower tier")
        for name, old_value in old.when.model_dump().items():
            if not _broader_or_equal(name, old_value, getattr(new.when, name)):
                raise _Loosened((*path, "when", name), f"narrows when rule {old.id!r} matches")


def _broader_or_equal(name: str, old: Any, new: Any) -> bool:
    """Whether condition ``name`` of a rule matches at least as much as before."""
    if isinstance(old, list):  # "any of": an empty list is no condition at all
        return not new or (bool(old) and set(old) <= set(new))
    if name == "linter_min_severity":
        return bool(_SEVERITY[new] <= _SEVERITY[old])
    if isinstance(old, bool) or name == "same_failure_twice":
        return bool(old == new or new is None)
    if old is None or new is None:  # thresholds: None is no condition
        return new is None
    return bool(new <= old)
