"""Delivery that fails part way, and delivery again after it: a PR the forge opened is
never forgotten, a remote's credentials are never written down or shown, and a forge or
remote that answers nonsense is one line (real bare remote, the forge stand-in)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from orchestrator.errors import ForgeError, ForgeValidationError, PushRejected
from orchestrator.pr import ForgeConfig, PRContent, deliver
from orchestrator.pr.squash import squash_commits

from .conftest import ForgeStandIn, JobRepo, git

CONTENT = PRContent(title="Add mul", summary="Adds mul().", body="Adds mul().\n")
URL_TOKEN = "ghp_" + "UrlT0kenInTheRemoteUrl0123456789abcd"


def _github(forge: ForgeStandIn, **kw: object) -> ForgeConfig:
    return ForgeConfig(kind="github", repo="octo/app", api_url=forge.github_url, **kw)  # type: ignore[arg-type]


async def test_a_refused_reviewer_leaves_the_opened_pr_recorded(
    job_repo: JobRepo, forge: ForgeStandIn, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    forge.collaborators = {"alice"}
    cfg = _github(forge, labels=["tandem"], reviewers=["mallory"])
    with pytest.raises(ForgeValidationError, match="collaborators"):
        await deliver(job_repo.worktree, job_repo.branch, job_repo.base_sha, CONTENT, cfg, state)
    recorded = json.loads((state / "pr.json").read_text())
    assert (recorded["number"], recorded["url"]) == (1, f"{forge.base_url}/octo/app/pull/1")

    forge.collaborators = None
    forge.requests.clear()
    result = await deliver(job_repo.worktree, job_repo.branch, job_repo.base_sha, CONTENT, cfg,
                           state)
    assert (result.number, result.updated) == (1, True) and len(forge.pulls) == 1
    assert [r.method for r in forge.calls()] == ["PATCH", "POST", "POST"]  # no search
    assert forge.pulls[1]["requested_reviewers"] == [{"login": "mallory"}]


async def test_a_closed_pr_is_left_undecorated(
    job_repo: JobRepo, forge: ForgeStandIn, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    cfg = _github(forge, labels=["tandem"])
    await deliver(job_repo.worktree, job_repo.branch, job_repo.base_sha, CONTENT, cfg, state)
    forge.pulls[1]["state"], forge.pulls[1]["labels"] = "closed", []
    result = await deliver(job_repo.worktree, job_repo.branch, job_repo.base_sha, CONTENT, cfg,
                           state)
    assert (result.number, result.updated) == (2, False)
    assert forge.pulls[1]["labels"] == [] and forge.pulls[2]["labels"] != []


async def test_credentials_in_the_remote_url_are_never_written_or_shown(
    job_repo: JobRepo, forge: ForgeStandIn, tmp_path: Path
) -> None:
    url = f"https://x-access-token:{URL_TOKEN}@forge.invalid/octo/app.git"
    git(job_repo.repo, "config", f"url.{job_repo.remote}.insteadOf", url)
    state = tmp_path / "state"
    cfg = _github(forge, remote=url)
    first = await deliver(job_repo.worktree, job_repo.branch, job_repo.base_sha, CONTENT, cfg,
                          state)
    assert URL_TOKEN not in (state / "pr.json").read_text()
    # A rewritten branch still replaces Tandem's own push (the lease was kept).
    squash_commits(job_repo.worktree, job_repo.base_sha, "Add mul", ref=f"refs/heads/"
                   f"{job_repo.branch}")
    second = await deliver(job_repo.worktree, job_repo.branch, job_repo.base_sha, CONTENT,
                           cfg, state)
    assert second.updated and second.number == first.number
    assert job_repo.remote_sha() == job_repo.head() != first.pushed_sha

    shutil.rmtree(job_repo.remote)  # the remote is gone
    with pytest.raises(PushRejected) as err:
        await deliver(job_repo.worktree, job_repo.branch, job_repo.base_sha, CONTENT, cfg,
                      tmp_path / "state-2")
    msg = str(err.value)
    assert URL_TOKEN not in msg and "cannot reach remote" in msg and "\n" not in msg
    assert "https://***@forge.invalid/octo/app.git" in msg


async def test_an_answer_that_is_not_json_is_one_forge_error(
    job_repo: JobRepo, forge: ForgeStandIn, tmp_path: Path
) -> None:
    forge.fail_next(200, b"<html><body>Sign in</body></html>")
    with pytest.raises(ForgeError, match="not JSON.*check api_url"):
        await deliver(job_repo.worktree, job_repo.branch, job_repo.base_sha, CONTENT,
                      _github(forge), tmp_path / "state")
    assert job_repo.remote_sha() == job_repo.head()  # pushed; the next delivery goes on
    result = await deliver(job_repo.worktree, job_repo.branch, job_repo.base_sha, CONTENT,
                           _github(forge), tmp_path / "state")
    assert (result.number, len(forge.pulls)) == (1, 1)
