"""Policy schema: which model serves which step, and when a change escalates.

A policy is YAML validated by these pydantic models (unknown keys are errors). Loading and
layering (built-in < user < repository < ``-s key=value``) live in
``orchestrator.policy_load``; ``load_policy`` here is the entry point::

    from orchestrator.policy import Policy, load_policy
    policy = load_policy("default", repo=Path("."), overrides=["budgets.max_steps=20"])
    policy.tiers["fast"].models[0].model

Tiers are ordered: a later tier in ``tiers`` is deeper. Every rule has an ``id``; every
routing decision names the rule that made it.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from orchestrator.security.regexes import backtracking

Provider = Literal["openai-ws", "openai-responses", "chat-completions", "anthropic"]
Action = Literal["proceed", "escalate-review", "escalate-redo", "require-approval", "block"]
Category = Literal["security", "secret", "size", "context", "failure", "other"]

# Weakest to strongest: when several rules match, the strongest action decides.
ACTION_ORDER: tuple[Action, ...] = (
    "proceed",
    "escalate-review",
    "escalate-redo",
    "require-approval",
    "block",
)
SECURITY_CATEGORIES: frozenset[str] = frozenset({"security", "secret"})
# A git remote name (checkpoint.push_remote): never a URL a repository could point elsewhere.
_REMOTE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def action_rank(action: str) -> int:
    """Position of ``action`` in ``ACTION_ORDER`` (higher is stronger)."""
    return ACTION_ORDER.index(action)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelEntry(_Strict):
    """One model endpoint of a tier. ``api_key_env`` names the variable, never the value."""

    provider: Provider = Field(description="Wire protocol of the endpoint.")
    base_url: str = Field(description="Endpoint base URL; 'sim://' is the embedded simulator.")
    model: str = Field(min_length=1, description="Model name sent to the provider.")
    api_key_env: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Name of the environment variable holding the API key (read via config).",
    )
    price_input_usd_per_mtok: float = Field(default=0.0, ge=0)
    price_output_usd_per_mtok: float = Field(default=0.0, ge=0)
    price_cached_usd_per_mtok: float = Field(default=0.0, ge=0)
    context_window: int = Field(default=128_000, gt=0, description="Context window in tokens.")
    max_output_tokens: int = Field(default=16_384, gt=0)
    allow_served_model_mismatch: bool = Field(
        default=False, description="Accept a response whose served model differs from `model`."
    )
    reasoning_effort: Literal["minimal", "low", "medium", "high", "xhigh"] | None = None
    connect_timeout_s: float = Field(default=10.0, gt=0)
    first_token_timeout_s: float = Field(default=60.0, gt=0)
    idle_timeout_s: float = Field(default=60.0, gt=0)
    total_timeout_s: float = Field(
        default=900.0, gt=0,
        description="The most one model call may take, retries included, however steadily "
        "the server keeps sending.",
    )
    max_retry_after_s: float = Field(
        default=60.0, ge=0,
        description="A longer Retry-After is not waited for: the call fails at once, saying "
        "how long the server asked to wait.",
    )
    max_retry_wait_s: float = Field(
        default=120.0, ge=0, description="The most one call waits between its retries, in all."
    )
    steer_supported: bool = Field(
        default=False,
        description="The endpoint accepts `response.steer` (Responses over WebSocket only): a "
        "steer redirects the stream in place instead of aborting and re-issuing the request.",
    )
    ca_file: str | None = Field(
        default=None, min_length=1,
        description="PEM file of the certificate authorities to trust for this endpoint's TLS "
        "(https/wss) instead of the default trust store, e.g. a self-hosted server behind a "
        "private CA; a relative path is read from the policy file's folder, ~ is home. The default "
        "store honours SSL_CERT_FILE.",
    )
    fallbacks: list[ModelEntry] = Field(
        default_factory=list, description="Other endpoints of the same tier, tried in order."
    )

    def cost_usd(self, tokens_in: int, tokens_out: int, tokens_cached: int = 0) -> float:
        """Price of one call; ``tokens_in`` includes the cached tokens."""
        uncached = max(tokens_in - tokens_cached, 0)
        return (
            uncached * self.price_input_usd_per_mtok
            + tokens_cached * self.price_cached_usd_per_mtok
            + tokens_out * self.price_output_usd_per_mtok
        ) / 1_000_000


class Tier(_Strict):
    """A class of models that may stand in for one another (never a silent downgrade)."""

    description: str = ""
    models: list[ModelEntry] = Field(min_length=1)

    def candidates(self) -> list[ModelEntry]:
        """Every endpoint of this tier in the order to try: each model, then its fallbacks."""
        out: list[ModelEntry] = []
        for entry in self.models:
            out.append(entry)
            out.extend(entry.fallbacks)
        return out


# Text a policy regex is searched in is cut to this length: a pattern that passes
# ``backtracking`` is at worst quadratic in it, and rule keywords sit near the start.
REGEX_TEXT_LIMIT = 4096


def text_regex(pattern: str) -> re.Pattern[str]:
    """A rule's ``step_text`` / ``task_text`` pattern as it is checked at load and matched
    (case-insensitive; ``re`` caches it)."""
    return re.compile(pattern, re.IGNORECASE)


def _regexes(patterns: list[str]) -> list[str]:
    """Each pattern must compile and must not backtrack catastrophically (a policy error at
    load, not a crash or a hung router at the first step): a repository writes these."""
    for pattern in patterns:
        try:
            compiled = text_regex(pattern)
        except re.error as exc:
            raise ValueError(f"{pattern!r} is not a valid regular expression: {exc}") from None
        if problem := backtracking(compiled):
            raise ValueError(f"{pattern!r} can backtrack for a very long time ({problem}); "
                             "use at most one repeat (*, +, {m,n}) per alternative, not nested "
                             "in another repeat") from None
    return patterns


class RouteWhen(_Strict):
    """Conditions of a pre-edit rule; all given conditions must hold (an empty one always does)."""

    paths: list[str] = Field(
        default_factory=list,
        description="Globs; '@sensitive' expands to `sensitive_paths`. Any predicted file matches.",
    )
    min_files: int | None = Field(default=None, ge=1, description="At least N predicted files.")
    step_text: list[str] = Field(
        default_factory=list, description="Regexes (case-insensitive) searched in the step text."
    )
    context_fraction: float | None = Field(
        default=None, gt=0, le=1, description="Context tokens above this share of the window."
    )
    min_failures: int | None = Field(default=None, ge=1)
    same_failure_twice: bool | None = None

    _step_text = field_validator("step_text")(_regexes)


class GateWhen(_Strict):
    """Conditions of a post-edit gate rule, evaluated on the actual diff."""

    paths: list[str] = Field(default_factory=list, description="Globs on changed files.")
    min_files: int | None = Field(default=None, ge=1)
    min_lines: int | None = Field(default=None, ge=1, description="Added + removed lines.")
    patterns: list[str] = Field(
        default_factory=list,
        description="Risky-pattern categories ('*' = any), see orchestrator/security/patterns.py.",
    )
    min_pattern_score: float = Field(default=1.0, gt=0)
    linter: bool | None = Field(default=None, description="New security-linter findings.")
    linter_min_severity: Literal["low", "medium", "high"] = "medium"
    secrets: bool | None = Field(default=None, description="A secret in the added lines.")
    task_text: list[str] = Field(
        default_factory=list,
        description="Regexes (case-insensitive) searched in the task text given to the gate.",
    )
    executable: bool | None = Field(
        default=None, description="A file made executable (git mode 100755), or a new one."
    )
    symlinks: bool | None = Field(
        default=None, description="A symbolic link added or changed (git mode 120000)."
    )
    symlink_escapes: bool | None = Field(
        default=None,
        description="A symbolic link that points outside the repository, or into .git or .tandem.",
    )
    binary: bool | None = Field(
        default=None, description="Binary content changed: no lines the other conditions can read."
    )

    _task_text = field_validator("task_text")(_regexes)


class _Rule(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.\-]*$")
    description: str = ""
    category: Category = "other"
    enabled: bool = True
    tier: str | None = Field(default=None, description="Tier to use; default the deepest.")
    action: Action = "proceed"


class RouteRule(_Rule):
    """Pre-edit rule: picks a tier before any edit exists."""

    when: RouteWhen = Field(default_factory=RouteWhen)


class GateRule(_Rule):
    """Post-edit rule: looks at the diff and may escalate, ask for approval or block."""

    when: GateWhen = Field(default_factory=GateWhen)
    action: Action = "escalate-redo"


def split_command(cmd: str) -> list[str]:
    """A verification command given as one string, split as a shell would split it (no
    shell runs it); ValueError saying why when it cannot be split or is empty."""
    try:
        argv = shlex.split(cmd)
    except ValueError as exc:
        raise ValueError(f"cannot be split ({str(exc).lower()}): check the quotes") from None
    if not argv:
        raise ValueError("is empty: give the command to run, e.g. 'pytest -q'")
    return argv


class VerifyCommand(_Strict):
    name: str
    cmd: list[str] | str = Field(
        description="argv list, or a string split like a shell line (quotes honoured; no "
        "shell runs it: no pipes, globs or variables). `{python}` is Tandem's interpreter."
    )
    timeout_s: float = Field(default=600.0, gt=0)

    @field_validator("cmd")
    @classmethod
    def _splits(cls, v: list[str] | str) -> list[str] | str:
        # Refused when the policy loads, not when the first step is verified.
        if isinstance(v, str):
            split_command(v)
        elif not v or not v[0]:
            raise ValueError("is empty: give the command to run, e.g. 'pytest -q'")
        return v


class Verify(_Strict):
    commands: list[VerifyCommand] = Field(default_factory=list)


class Retries(_Strict):
    same_tier_verify: int = Field(default=2, ge=0, description="Verify failures before escalating.")
    deep_failures_before_pause: int = Field(default=2, ge=1)
    edit_repairs: int = Field(default=1, ge=0, description="Re-asks for a malformed edit.")
    plan_repairs: int = Field(default=1, ge=0)


class Approvals(_Strict):
    security_sensitive: bool = Field(
        default=False, description="Human approval before committing a security-sensitive step."
    )
    before_pr: bool = Field(
        default=False, description="Human approval of the finished job before its PR is made."
    )
    notify_command: str | None = Field(
        default=None,
        description="Run when a job pauses (approval, budget, failures): split like a shell "
        "line, no shell; gets the pause as JSON on stdin and TANDEM_JOB_ID / "
        "TANDEM_PAUSE_REASON in a scrubbed environment (no secrets).",
    )
    notify_webhook: str | None = Field(
        default=None, pattern=r"^https?://",
        description="POST the pause as JSON to this URL when a job pauses.",
    )
    notify_timeout_s: float = Field(
        default=10.0, gt=0, description="Limit for the notify command or webhook."
    )


class Budgets(_Strict):
    max_cost_usd: float | None = Field(default=5.0, ge=0)
    max_tokens: dict[str, int] = Field(default_factory=dict, description="Per tier name.")
    max_steps: int = Field(default=30, ge=1)
    max_wall_s: float = Field(default=3600.0, gt=0)


class Checkpoint(_Strict):
    max_file_bytes: int = Field(default=1_000_000, gt=0, description="Larger files are refused.")
    push_refs: bool = Field(default=False, description="Push checkpoints to refs/tandem/...")
    push_remote: str = Field(
        default="origin",
        description="Name of a remote configured in the repository (`git remote`) that "
        "push_refs pushes to and a resuming worker fetches from. A name, never a URL: a "
        "repository's policy must not be able to send checkpoints elsewhere.",
    )
    message_prefix: str = "tandem:"

    @field_validator("push_remote")
    @classmethod
    def _remote_name(cls, value: str) -> str:
        if not _REMOTE_NAME.match(value):
            raise ValueError("use the name of a remote configured in the repository (see "
                             "`git remote -v`), not a URL or a path")
        return value


class PullRequest(_Strict):
    enabled: bool = True
    draft: bool = True
    base: str | None = Field(default=None, description="Base branch; None = the job's base ref.")
    title_prefix: str = ""
    labels: list[str] = Field(default_factory=list)


class Gate(_Strict):
    """Settings of the post-edit gate shared by its rules."""

    linter: bool = Field(default=True, description="Run bandit on changed Python files.")


class Policy(_Strict):
    """A whole policy. See docs/POLICIES.md."""

    name: str = "custom"
    description: str = ""
    extends: str | None = Field(default=None, description="Built-in policy this one layers on.")
    tiers: dict[str, Tier]
    default_tier: str = "fast"
    plan_tier: str = "deep"
    review_tier: str = "deep"
    sensitive_paths: list[str] = Field(default_factory=list)
    route_rules: list[RouteRule] = Field(default_factory=list)
    gate_rules: list[GateRule] = Field(default_factory=list)
    gate: Gate = Field(default_factory=Gate)
    verify: Verify = Field(default_factory=Verify)
    retries: Retries = Field(default_factory=Retries)
    approvals: Approvals = Field(default_factory=Approvals)
    budgets: Budgets = Field(default_factory=Budgets)
    checkpoint: Checkpoint = Field(default_factory=Checkpoint)
    pr: PullRequest = Field(default_factory=PullRequest)

    @model_validator(mode="after")
    def _check_references(self) -> Policy:
        if not self.tiers:
            raise ValueError("at least one tier is needed")
        for field in ("default_tier", "plan_tier", "review_tier"):
            _require_tier(self, getattr(self, field), field)
        for kind in ("route_rules", "gate_rules"):
            rules: list[_Rule] = getattr(self, kind)
            seen: set[str] = set()
            for rule in rules:
                if rule.id in seen:
                    raise ValueError(f"{kind}.{rule.id}: duplicate rule id {rule.id!r}")
                seen.add(rule.id)
                if rule.tier is not None:
                    _require_tier(self, rule.tier, f"{kind}.{rule.id}.tier")
        for tier_name in self.budgets.max_tokens:
            _require_tier(self, tier_name, f"budgets.max_tokens.{tier_name}")
        return self

    @property
    def tier_names(self) -> list[str]:
        """Tier names from fastest to deepest."""
        return list(self.tiers)

    @property
    def deepest_tier(self) -> str:
        return self.tier_names[-1]

    def tier_rank(self, name: str) -> int:
        return self.tier_names.index(name)

    def expand_globs(self, globs: list[str]) -> list[str]:
        """Globs with '@sensitive' replaced by the policy's sensitive paths."""
        out: list[str] = []
        for glob in globs:
            out.extend(self.sensitive_paths if glob == "@sensitive" else [glob])
        return out

    def summary(self) -> dict[str, Any]:
        """A short description for `tandem policy check`."""
        return {
            "name": self.name,
            "tiers": {n: [m.model for m in t.candidates()] for n, t in self.tiers.items()},
            "plan_tier": self.plan_tier,
            "route_rules": [r.id for r in self.route_rules if r.enabled],
            "gate_rules": [r.id for r in self.gate_rules if r.enabled],
            "verify": [c.name for c in self.verify.commands],
            "approvals": self.approvals.model_dump(),
        }


def _require_tier(policy: Policy, name: str, field: str) -> None:
    if name not in policy.tiers:
        known = ", ".join(policy.tiers)
        raise ValueError(f"{field}: unknown tier {name!r} (defined: {known})")


def policy_json_schema() -> dict[str, Any]:
    """JSON Schema of a policy file, for editors."""
    schema = Policy.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Tandem policy"
    return schema


def load_policy(
    name_or_path: str | None = None,
    *,
    repo: Path | None = None,
    overrides: Sequence[str] = (),
    user_path: Path | None = None,
) -> Policy:
    """The effective policy: built-in (or file) < user < repository (tighten-only) < overrides.

    ``name_or_path`` is a shipped policy name (``default``, ``strict``, ``fast-only``,
    ``deep-only``) or a YAML file; None means the ``TANDEM_POLICY`` setting or ``default``.
    ``user_path`` defaults to ``<TANDEM_HOME>/policy.yaml``; ``repo`` adds
    ``<repo>/.tandem/policy.yaml``; ``overrides`` are ``dotted.key=value`` strings.
    Raises ``PolicyError`` (file, line, field) for anything invalid.
    """
    from orchestrator.policy_load import load_layers

    return load_layers(name_or_path, repo=repo, overrides=overrides, user_path=user_path)
