"""The tighten-only rule for repository policies.

A repository's ``.tandem/policy.yaml`` is part of the repository's content, and that
content is not trusted (anyone who can open a PR can edit it). So that layer may add
rules, sensitive paths and approvals, but never weaken what the trusted layers set: it may
not disable or weaken a security rule, drop a sensitive path, turn off the linter or an
approval, point a tier at another endpoint (a key could be sent there),
move planning or review to a shallower tier, raise a budget or a retry count, or drop or
change a verification command (it may add its own). Pull-request delivery may only become
more conservative (a draft, or no PR at all). Settings that act outside the job worktree
belong to the user alone, and a repository may not set or change them: the pause
notification (a command run on the user's machine, a webhook that would receive the job's
details), pushing checkpoints to a remote, the step commits' message prefix (pushed with
the PR, read by CI and bots), and where the PR goes and what automation it triggers (its
base branch, labels and title prefix, applied with the user's forge token).
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
        _check_fields(trusted, merged)
        _check_budgets(trusted, merged)
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


# What a repository may do with each field of these sections (``FIELD_RULES``). Every
# field of them is listed (a test checks), so a field added to the schema is not open to
# repositories until someone decides what they may do with it.
LOWER = "lower only"  # a count or limit: more model calls or larger inputs is a loosening
TURN_ON = "turn on only"  # a safety switch
TURN_OFF = "turn off only"  # something the user's token or machine does
USER_ONLY = "user only"  # acts outside the job worktree: the repository may not change it
RULED_SECTIONS = ("gate", "retries", "approvals", "checkpoint", "pr")

_PAUSE_NOTICE = "what runs or is contacted when a job pauses"
_DELIVERY = "where the pull request goes and what automation it triggers"
FIELD_RULES: dict[tuple[str, str], tuple[str, str]] = {
    ("gate", "linter"): (TURN_ON, ""),
    ("retries", "same_tier_verify"): (LOWER, "more model calls before escalating"),
    ("retries", "deep_failures_before_pause"): (LOWER, "more model calls before a pause"),
    ("retries", "edit_repairs"): (LOWER, "more model calls before a pause"),
    ("retries", "plan_repairs"): (LOWER, "more model calls before a pause"),
    ("approvals", "security_sensitive"): (TURN_ON, ""),
    ("approvals", "before_pr"): (TURN_ON, ""),
    ("approvals", "notify_command"): (USER_ONLY, _PAUSE_NOTICE),
    ("approvals", "notify_webhook"): (USER_ONLY, _PAUSE_NOTICE),
    ("approvals", "notify_timeout_s"): (USER_ONLY, _PAUSE_NOTICE),
    ("checkpoint", "max_file_bytes"): (LOWER, "larger files in checkpoints and diffs"),
    ("checkpoint", "push_refs"): (USER_ONLY, "what is pushed to a remote"),
    ("checkpoint", "push_remote"): (USER_ONLY, "what is pushed to a remote"),
    ("checkpoint", "message_prefix"): (USER_ONLY, "the commit messages pushed with the pull "
                                                  "request, which CI and bots read"),
    ("pr", "enabled"): (TURN_OFF, "a pull request the user's policy does not make"),
    ("pr", "draft"): (TURN_ON, ""),
    ("pr", "base"): (USER_ONLY, _DELIVERY),
    ("pr", "title_prefix"): (USER_ONLY, _DELIVERY),
    ("pr", "labels"): (USER_ONLY, _DELIVERY),
}


def _check_fields(trusted: Policy, merged: Policy) -> None:
    for (section, field), (rule, why) in FIELD_RULES.items():
        old = getattr(getattr(trusted, section), field)
        new = getattr(getattr(merged, section), field)
        if new == old:
            continue
        key = f"{section}.{field}"
        if rule == LOWER and new > old:
            raise _Loosened((section, field), f"raises {key} ({why}); a repository may only "
                                              "lower it")
        if rule == TURN_ON and old and not new:
            raise _Loosened((section, field), f"turns off a safety setting ({key}); a "
                                              "repository may turn it on, not off")
        if rule == TURN_OFF and new and not old:
            raise _Loosened((section, field), f"turns on {key} ({why}); a repository may "
                                              "turn it off, not on")
        if rule == USER_ONLY:
            raise _Loosened((section, field), f"{key} acts outside the job worktree ({why}); "
                                              "only the user's own policy may set it")


def _check_verify(trusted: Policy, merged: Policy) -> None:
    """The user's verification commands stay as they are (a security scan among them may
    be what the user relies on); a repository may add its own."""
    kept = {(c.name, str(c.cmd), c.timeout_s) for c in merged.verify.commands}
    for command in trusted.verify.commands:
        if (command.name, str(command.cmd), command.timeout_s) not in kept:
            raise _Loosened(("verify", "commands"),
                            f"drops or changes the verification command {command.name!r} "
                            "(its command or timeout)")


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
