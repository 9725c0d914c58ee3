"""Delivery: push to a real local bare remote, open/update PRs on the forge stand-in
(request and response shapes: see the documentation links in conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import ConfigError, PushRejected
from orchestrator.pr import DeliveryResult, ForgeConfig, PRContent, deliver

from .conftest import GITHUB_TOKEN, GITLAB_TOKEN, ForgeStandIn, JobRepo, git


def _content(title: str = "Add mul") -> PRContent:
    return PRContent(title=title, summary="Adds mul().", body=f"Adds mul().\n\n## Plan\n{title}\n")


def _github(forge: ForgeStandIn, **kw: Any) -> ForgeConfig:
    return ForgeConfig(kind="github", repo="octo/app", api_url=forge.github_url, **kw)


def _gitlab(forge: ForgeStandIn, **kw: Any) -> ForgeConfig:
    return ForgeConfig(kind="gitlab", repo="group/app", api_url=forge.gitlab_url, **kw)


async def _deliver(
    job: JobRepo, cfg: ForgeConfig, state: Path, title: str = "Add mul"
) -> DeliveryResult:
    return await deliver(job.worktree, job.branch, job.base_sha, _content(title), cfg, state)


async def test_github_open_pushes_and_opens_a_draft_with_labels_and_reviewers(
    job_repo: JobRepo, forge: ForgeStandIn, tmp_path: Path
) -> None:
    cfg = _github(forge, draft=True, labels=["tandem", "bot"], reviewers=["alice"])
    result = await _deliver(job_repo, cfg, tmp_path / "state")

    assert job_repo.remote_sha() == job_repo.head() == result.pushed_sha
    assert (result.kind, result.number, result.updated) == ("github", 1, False)
    assert result.url == f"{forge.base_url}/octo/app/pull/1"
    create = forge.calls("POST")[0]
    assert create.path == "/repos/octo/app/pulls"
    assert create.json == {"title": "Add mul", "head": job_repo.branch, "base": "main",
                           "body": _content().body, "draft": True}
    assert create.headers["accept"] == "application/vnd.github+json"
    assert create.headers["x-github-api-version"] == "2022-11-28"
    assert create.headers["authorization"] == f"Bearer {GITHUB_TOKEN}"
    pr = forge.pulls[1]
    assert pr["draft"] is True
    assert [lb["name"] for lb in pr["labels"]] == ["tandem", "bot"]
    assert pr["requested_reviewers"] == [{"login": "alice"}]
    # the bundle is always written too
    assert (result.bundle_dir / "PR.md").exists()  # type: ignore[operator]
    state = json.loads((tmp_path / "state" / "pr.json").read_text())
    assert state["number"] == 1 and state["pushed_sha"] == result.pushed_sha


async def test_github_second_delivery_updates_the_same_pr_in_place(
    job_repo: JobRepo, forge: ForgeStandIn, tmp_path: Path
) -> None:
    cfg, state = _github(forge), tmp_path / "state"
    first = await _deliver(job_repo, cfg, state)
    job_repo.commit_step(3, {"app.py": "def add(a, b):\n    return b + a\n"}, "fast", "spark-sim")
    forge.requests.clear()

    second = await _deliver(job_repo, cfg, state, title="Add mul, reorder add")

    assert (second.number, second.updated) == (first.number, True)
    assert forge.calls("POST") == []
    patch = forge.calls("PATCH")[0]
    assert patch.path == "/repos/octo/app/pulls/1"
    assert patch.json["title"] == "Add mul, reorder add"
    assert forge.pulls[1]["title"] == "Add mul, reorder add" and len(forge.pulls) == 1
    assert job_repo.remote_sha() == job_repo.head() == second.pushed_sha != first.pushed_sha


async def test_squash_on_update_force_pushes_with_lease(
    job_repo: JobRepo, forge: ForgeStandIn, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    await _deliver(job_repo, _github(forge), state)
    result = await _deliver(job_repo, _github(forge, squash=True), state)
    assert result.updated
    assert git(job_repo.remote, "rev-list", "--count",
               f"{job_repo.base_sha}..refs/heads/{job_repo.branch}") == "1"
    assert job_repo.remote_sha() == job_repo.head()


async def test_without_state_an_open_pr_of_the_branch_is_found_and_updated(
    job_repo: JobRepo, forge: ForgeStandIn, tmp_path: Path
) -> None:
    await _deliver(job_repo, _github(forge), tmp_path / "state-a")
    forge.requests.clear()
    result = await _deliver(job_repo, _github(forge), tmp_path / "state-b")
    assert result.updated and result.number == 1
    listing = forge.calls("GET")[0]
    assert listing.query == {"head": f"octo:{job_repo.branch}", "state": "open"}


async def test_a_closed_pr_is_not_reused(
    job_repo: JobRepo, forge: ForgeStandIn, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    await _deliver(job_repo, _github(forge), state)
    forge.pulls[1]["state"] = "closed"
    result = await _deliver(job_repo, _github(forge), state)
    assert (result.number, result.updated) == (2, False)


async def test_push_rejected_when_the_remote_branch_moved_on(
    job_repo: JobRepo, forge: ForgeStandIn, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    await _deliver(job_repo, _github(forge), state)
    # somebody else pushes to the job branch
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", "--branch", job_repo.branch, str(job_repo.remote), str(other))
    git(other, "-c", "user.email=o@example.com", "-c", "user.name=O", "commit", "-q",
        "--allow-empty", "-m", "someone else")
    git(other, "push", "-q", "origin", job_repo.branch)
    theirs = job_repo.remote_sha()
    job_repo.commit_step(3, {"extra.txt": "more\n"}, "fast", "spark-sim")
    local = job_repo.head()
    forge.requests.clear()

    with pytest.raises(PushRejected) as err:
        await _deliver(job_repo, _github(forge, squash=True), state)

    msg = str(err.value)
    assert "\n" not in msg and "rejected" in msg and job_repo.branch in msg
    assert "stale info" in msg or "fetch first" in msg
    assert job_repo.remote_sha() == theirs  # remote untouched
    assert job_repo.head() != theirs
    # nothing sent to the forge after a failed push (only its PR's state read before it)
    assert [(r.method, r.path) for r in forge.calls()] == [("GET", "/repos/octo/app/pulls/1")]
    assert (state / "bundle" / "PR.md").exists()  # bundle intact
    assert len(list((state / "bundle" / "patches").glob("*.patch"))) == 1  # squashed
    assert git(job_repo.worktree, "rev-parse", "HEAD^{tree}") == git(
        job_repo.worktree, "rev-parse", f"{local}^{{tree}}")


async def test_push_rejected_by_a_pre_receive_hook(
    job_repo: JobRepo, forge: ForgeStandIn, tmp_path: Path
) -> None:
    hook = job_repo.remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'branch protection: pushes need review' >&2\nexit 1\n")
    hook.chmod(0o755)
    local = job_repo.head()
    with pytest.raises(PushRejected, match="branch protection: pushes need review"):
        await _deliver(job_repo, _github(forge), tmp_path / "state")
    assert job_repo.remote_sha() is None and job_repo.head() == local
    assert forge.requests == []
    assert (tmp_path / "state" / "bundle" / "PR.md").exists()


async def test_gitlab_open_and_update_in_place(
    job_repo: JobRepo, forge: ForgeStandIn, tmp_path: Path
) -> None:
    cfg = _gitlab(forge, draft=True, labels=["tandem", "bot"], reviewers=["alice", "42"])
    state = tmp_path / "state"
    first = await _deliver(job_repo, cfg, state)

    assert (first.kind, first.number, first.updated) == ("gitlab", 1, False)
    assert first.url == f"{forge.base_url}/group/app/-/merge_requests/1"
    create = forge.calls("POST")[0]
    assert "/projects/group%2Fapp/merge_requests" in create.raw_path  # URL-encoded id
    assert create.headers["private-token"] == GITLAB_TOKEN
    assert "authorization" not in create.headers
    assert create.json == {"source_branch": job_repo.branch, "target_branch": "main",
                           "title": "Draft: Add mul", "description": _content().body,
                           "labels": "tandem,bot", "reviewer_ids": [11, 42]}
    assert forge.pulls[1]["draft"] is True
    assert job_repo.remote_sha() == first.pushed_sha

    job_repo.commit_step(3, {"extra.txt": "more\n"}, "fast", "spark-sim")
    forge.requests.clear()
    second = await _deliver(job_repo, cfg, state, title="Add mul and extra")
    assert (second.number, second.updated) == (1, True)
    put = forge.calls("PUT")[0]
    assert put.path == "/api/v4/projects/group/app/merge_requests/1"
    assert put.json["title"] == "Draft: Add mul and extra"
    assert forge.calls("POST") == [] and len(forge.pulls) == 1
    assert job_repo.remote_sha() == second.pushed_sha


async def test_bundle_kind_writes_files_and_pushes_nothing(
    job_repo: JobRepo, forge: ForgeStandIn, tmp_path: Path
) -> None:
    result = await _deliver(job_repo, ForgeConfig(kind="bundle"), tmp_path / "state")
    assert result.kind == "bundle" and result.pushed_sha is None and not result.updated
    assert result.bundle_dir == tmp_path / "state" / "bundle"
    assert len(list((tmp_path / "state" / "bundle" / "patches").glob("*.patch"))) == 2
    assert job_repo.remote_sha() is None and forge.requests == []
    again = await _deliver(job_repo, ForgeConfig(kind="bundle"), tmp_path / "state")
    assert again.updated


async def test_none_kind_does_nothing(job_repo: JobRepo, tmp_path: Path) -> None:
    result = await _deliver(job_repo, ForgeConfig(kind="none"), tmp_path / "state")
    assert result.kind == "none" and not (tmp_path / "state").exists()


async def test_missing_token_is_a_config_error_naming_the_variable(
    job_repo: JobRepo, forge: ForgeStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_TOKEN")
    with pytest.raises(ConfigError, match="GITHUB_TOKEN is not set"):
        await _deliver(job_repo, _github(forge), tmp_path / "state")
    assert job_repo.remote_sha() is None


async def test_bad_github_repo_is_refused_before_pushing(
    job_repo: JobRepo, forge: ForgeStandIn, tmp_path: Path
) -> None:
    cfg = ForgeConfig(kind="github", repo="just-a-name", api_url=forge.github_url)
    with pytest.raises(ConfigError, match="owner/name"):
        await _deliver(job_repo, cfg, tmp_path / "state")
    assert job_repo.remote_sha() is None
