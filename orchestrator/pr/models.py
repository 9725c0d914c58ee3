"""The data of a pull request: what went into it (steps, checks) and where it goes."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator

ForgeKind = Literal["github", "gitlab", "bundle", "none"]

_DEFAULT_API_URLS = {"github": "https://api.github.com", "gitlab": "https://gitlab.com/api/v4"}
_DEFAULT_TOKEN_ENVS = {"github": "GITHUB_TOKEN", "gitlab": "GITLAB_TOKEN"}


class CheckSummary(BaseModel):
    """One verification command of a step, as the pull request shows it (its result in
    `orchestrator.verify.VerifyResult`)."""

    name: str
    passed: bool
    exit_code: int | None = None
    duration_ms: float = 0.0
    summary: str = ""


class StepSummary(BaseModel):
    """What one plan step did, as shown in the PR's step table."""

    step: int
    intent: str
    tier: str
    served_model: str | None = None
    rule_id: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    duration_ms: float = 0.0
    checkpoint_sha: str | None = None
    escalations: list[str] = Field(default_factory=list)
    verification: list[CheckSummary] = Field(default_factory=list)


class PRContent(BaseModel):
    """The title and body of a pull request. ``body`` = summary + deterministic sections."""

    title: str
    summary: str
    body: str


class ForgeConfig(BaseModel):
    """Where a job's pull request goes."""

    kind: ForgeKind = Field(description="github, gitlab, bundle (files on disk) or none")
    remote: str = Field(default="origin", description="git remote the job branch is pushed to")
    repo: str | None = Field(
        default=None, description='"owner/name" on GitHub; project path or numeric id on GitLab'
    )
    api_url: str | None = Field(
        default=None,
        description="API root; default https://api.github.com or https://gitlab.com/api/v4",
    )
    token_env: str = Field(
        default="",
        description="environment variable holding the token; default GITHUB_TOKEN/GITLAB_TOKEN",
    )
    draft: bool = Field(default=False, description="open the PR as a draft")
    labels: list[str] = Field(default_factory=list, description="labels added to the PR")
    reviewers: list[str] = Field(
        default_factory=list,
        description="reviewers: GitHub logins; GitLab usernames or numeric user ids",
    )
    squash: bool = Field(
        default=False, description="squash the step commits into one before delivery"
    )
    base_branch: str | None = Field(
        default=None, description="branch the PR targets; default: the remote's HEAD branch"
    )

    @model_validator(mode="after")
    def _defaults(self) -> ForgeConfig:
        if not self.token_env:
            self.token_env = _DEFAULT_TOKEN_ENVS.get(self.kind, "")
        if self.api_url is None and self.kind in _DEFAULT_API_URLS:
            self.api_url = _DEFAULT_API_URLS[self.kind]
        if self.api_url:
            self.api_url = self.api_url.rstrip("/")
        return self


class DeliveryResult(BaseModel):
    """What ``deliver`` did."""

    kind: ForgeKind
    url: str | None = None
    number: int | None = Field(default=None, description="PR number (GitHub) or MR iid (GitLab)")
    bundle_dir: Path | None = None
    pushed_sha: str | None = None
    updated: bool = Field(default=False, description="an existing PR was updated in place")
