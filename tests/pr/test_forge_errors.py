"""Every forge error status gives one clear line, of the right class, without the token.

Status codes and bodies as documented: GitHub
https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api and
https://docs.github.com/en/rest/pulls/pulls ; GitLab
https://docs.gitlab.com/api/rest/troubleshooting/ .
"""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import (
    ForgeAuthError,
    ForgeError,
    ForgeNotFound,
    ForgeRateLimited,
    ForgeValidationError,
)
from orchestrator.pr import ForgeConfig, PRContent, deliver

from .conftest import GITHUB_TOKEN, GITLAB_TOKEN, ForgeStandIn, JobRepo

CASES = [
    # (status, headers, body, expected class, words the message must hold)
    (401, {}, {"message": "Bad credentials"}, ForgeAuthError, ["401", "check {env}"]),
    (403, {}, {"message": "Resource not accessible by personal access token"},
     ForgeAuthError, ["403", "lacks a permission", "{env}"]),
    (404, {}, {"message": "Not Found"}, ForgeNotFound, ["404", "repository name"]),
    (422, {}, {"message": "Validation Failed",
               "errors": [{"resource": "PullRequest", "code": "invalid", "field": "base",
                           "message": "base branch does-not-exist is invalid"}]},
     ForgeValidationError, ["422", "base branch"]),
    (429, {"retry-after": "30"}, {"message": "Too Many Requests"}, ForgeRateLimited,
     ["rate limit", "retry in 30 s"]),
    (403, {"x-ratelimit-remaining": "0", "x-ratelimit-limit": "5000"},
     {"message": "API rate limit exceeded for user ID 1."}, ForgeRateLimited,
     ["rate limit", "403"]),
    (502, {}, {"message": "Bad Gateway"}, ForgeError, ["502"]),
]


def _cfg(kind: str, forge: ForgeStandIn) -> ForgeConfig:
    if kind == "github":
        return ForgeConfig(kind="github", repo="octo/app", api_url=forge.github_url)
    return ForgeConfig(kind="gitlab", repo="group/app", api_url=forge.gitlab_url)


@pytest.mark.parametrize("kind", ["github", "gitlab"])
@pytest.mark.parametrize(("status", "headers", "body", "cls", "words"), CASES,
                         ids=[f"{c[0]}-{c[3].__name__}" for c in CASES])
async def test_forge_error_is_one_clear_line(
    kind: str, status: int, headers: dict[str, str], body: dict[str, object],
    cls: type[ForgeError], words: list[str], job_repo: JobRepo, forge: ForgeStandIn,
    tmp_path: Path,
) -> None:
    cfg = _cfg(kind, forge)
    forge.fail_next(status, body, headers)
    content = PRContent(title="t", summary="s", body="s\n")
    with pytest.raises(cls) as err:
        await deliver(job_repo.worktree, job_repo.branch, job_repo.base_sha, content, cfg,
                      tmp_path / "state")
    msg = str(err.value)
    assert type(err.value) is cls and err.value.status == status
    assert "\n" not in msg
    assert ("GitHub" if kind == "github" else "GitLab") in msg
    for word in words:
        assert word.format(env=cfg.token_env) in msg
    assert GITHUB_TOKEN not in msg and GITLAB_TOKEN not in msg
    # the push happened before the API call and was recorded for the next lease
    assert job_repo.remote_sha() == job_repo.head()
    assert (tmp_path / "state" / "pr.json").exists()


async def test_rate_limit_reports_the_wait(job_repo: JobRepo, forge: ForgeStandIn,
                                           tmp_path: Path) -> None:
    forge.fail_next(429, {"message": "slow down"}, {"retry-after": "12"})
    with pytest.raises(ForgeRateLimited) as err:
        await deliver(job_repo.worktree, job_repo.branch, job_repo.base_sha,
                      PRContent(title="t", summary="s", body="s"), _cfg("github", forge),
                      tmp_path / "state")
    assert err.value.retry_after_s == 12


async def test_a_forge_echoing_the_token_is_redacted(job_repo: JobRepo, forge: ForgeStandIn,
                                                     tmp_path: Path) -> None:
    forge.fail_next(422, {"message": f"token {GITHUB_TOKEN} may not open PRs here"})
    with pytest.raises(ForgeValidationError) as err:
        await deliver(job_repo.worktree, job_repo.branch, job_repo.base_sha,
                      PRContent(title="t", summary="s", body="s"), _cfg("github", forge),
                      tmp_path / "state")
    assert GITHUB_TOKEN not in str(err.value) and "REDACTED" in str(err.value)


async def test_unreachable_api_is_one_line_without_headers(
    job_repo: JobRepo, forge: ForgeStandIn, tmp_path: Path
) -> None:
    from .conftest import free_port

    cfg = ForgeConfig(kind="github", repo="octo/app", api_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ForgeError, match="cannot reach") as err:
        await deliver(job_repo.worktree, job_repo.branch, job_repo.base_sha,
                      PRContent(title="t", summary="s", body="s"), cfg, tmp_path / "state")
    assert "\n" not in str(err.value) and GITHUB_TOKEN not in str(err.value)


async def test_unknown_gitlab_reviewer_is_named(job_repo: JobRepo, forge: ForgeStandIn,
                                                tmp_path: Path) -> None:
    cfg = ForgeConfig(kind="gitlab", repo="group/app", api_url=forge.gitlab_url,
                      reviewers=["nobody"])
    with pytest.raises(ForgeNotFound, match="no user 'nobody'"):
        await deliver(job_repo.worktree, job_repo.branch, job_repo.base_sha,
                      PRContent(title="t", summary="s", body="s"), cfg, tmp_path / "state")
