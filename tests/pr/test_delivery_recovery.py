"""Delivery that fails part way, and delivery again after it: a PR the forge opened is
never forgotten, a remote's credentials are never written down or shown, and a forge or
remote that answers nonsense is one line (real bare remote, the forge stand-in)."""

from __future__ import annotations

import importlib
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
    # its state read, then updated; no search
    assert [r.method for r in forge.calls()] == ["GET", "PATCH", "POST", "POST"]
    assert forge.calls("GET")[0].path == "/repos/octo/app/pulls/1"
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


class _Killed(BaseException):
    """The process dying: nothing after it runs."""


def _kill_after_push(monkeypatch: pytest.MonkeyPatch, job_repo: JobRepo) -> None:
    """The delivery dies when it would record the push it just made."""
    deliver_module = importlib.import_module("orchestrator.pr.deliver")
    real = deliver_module.save_state

    def save_state(state_dir: Path, state: object) -> None:
        if getattr(state, "pushed_sha", None) == job_repo.head() == job_repo.remote_sha():
            raise _Killed
        real(state_dir, state)  # type: ignore[arg-type]

    monkeypatch.setattr(deliver_module, "save_state", save_state)


@pytest.mark.parametrize("kind", ["github", "gitlab"])
async def test_a_first_delivery_killed_after_its_push_opens_one_pr_when_run_again(
    kind: str, job_repo: JobRepo, forge: ForgeStandIn, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state = tmp_path / "state"
    cfg = _github(forge) if kind == "github" else ForgeConfig(
        kind="gitlab", repo="group/app", api_url=forge.gitlab_url)
    with monkeypatch.context() as m:
        _kill_after_push(m, job_repo)
        with pytest.raises(_Killed):
            await deliver(job_repo.worktree, job_repo.branch, job_repo.base_sha, CONTENT, cfg,
                          state)
    assert job_repo.remote_sha() == job_repo.head() and forge.pulls == {}
    result = await deliver(job_repo.worktree, job_repo.branch, job_repo.base_sha, CONTENT, cfg,
                           state)
    assert (result.number, result.updated, len(forge.pulls)) == (1, False, 1)
    again = await deliver(job_repo.worktree, job_repo.branch, job_repo.base_sha, CONTENT, cfg,
                          state)
    assert (again.number, again.updated, len(forge.pulls)) == (1, True, 1)


async def test_an_update_killed_after_its_forced_push_is_finished_by_the_next_run(
    job_repo: JobRepo, forge: ForgeStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    first = await deliver(job_repo.worktree, job_repo.branch, job_repo.base_sha, CONTENT,
                          _github(forge), state)
    with monkeypatch.context() as m:  # the squash rewrites the branch: a forced push
        _kill_after_push(m, job_repo)
        with pytest.raises(_Killed):
            await deliver(job_repo.worktree, job_repo.branch, job_repo.base_sha, CONTENT,
                          _github(forge, squash=True), state)
    squashed = job_repo.head()
    assert job_repo.remote_sha() == squashed != first.pushed_sha
    forge.requests.clear()
    result = await deliver(job_repo.worktree, job_repo.branch, job_repo.base_sha, CONTENT,
                           _github(forge, squash=True), state)
    assert (result.number, result.updated, result.pushed_sha) == (1, True, squashed)
    assert len(forge.pulls) == 1 and forge.calls("POST") == []
    assert json.loads((state / "pr.json").read_text())["pushed_sha"] == squashed


@pytest.mark.parametrize("delivered_before", [True, False])
async def test_a_killed_delivery_then_more_work_still_replaces_only_its_own_push(
    delivered_before: bool, job_repo: JobRepo, forge: ForgeStandIn, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state = tmp_path / "state"
    if delivered_before:
        await deliver(job_repo.worktree, job_repo.branch, job_repo.base_sha, CONTENT,
                      _github(forge), state)
    with monkeypatch.context() as m:
        _kill_after_push(m, job_repo)
        with pytest.raises(_Killed):
            await deliver(job_repo.worktree, job_repo.branch, job_repo.base_sha, CONTENT,
                          _github(forge, squash=True), state)
    # the job goes on and its branch is rewritten again before the next delivery
    job_repo.commit_step(3, {"extra.txt": "more\n"}, "fast", "spark-sim")
    killed_push = job_repo.remote_sha()
    result = await deliver(job_repo.worktree, job_repo.branch, job_repo.base_sha, CONTENT,
                           _github(forge, squash=True), state)
    assert (result.number, result.updated) == (1, delivered_before) and len(forge.pulls) == 1
    assert job_repo.remote_sha() == job_repo.head() == result.pushed_sha != killed_push
    recorded = json.loads((state / "pr.json").read_text())
    assert (recorded["pushed_sha"], recorded["pushing_sha"]) == (result.pushed_sha, None)


async def test_a_branch_pushed_by_hand_to_the_same_commit_is_not_pushed_again(
    job_repo: JobRepo, forge: ForgeStandIn, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    await deliver(job_repo.worktree, job_repo.branch, job_repo.base_sha, CONTENT,
                  _github(forge), state)
    squash_commits(job_repo.worktree, job_repo.base_sha, "Add mul",
                   ref=f"refs/heads/{job_repo.branch}")
    git(job_repo.worktree, "push", "-q", "--force", "origin", job_repo.branch)
    result = await deliver(job_repo.worktree, job_repo.branch, job_repo.base_sha, CONTENT,
                           _github(forge), state)
    assert (result.number, result.updated) == (1, True)
    assert result.pushed_sha == job_repo.head() == job_repo.remote_sha()


async def test_a_remote_echoing_the_token_on_rejection_is_redacted(
    job_repo: JobRepo, forge: ForgeStandIn, tmp_path: Path
) -> None:
    from .conftest import GITHUB_TOKEN

    hook = job_repo.remote / "hooks" / "pre-receive"
    hook.write_text(f"#!/bin/sh\nprintf 'denied for token {GITHUB_TOKEN} \\033[2J' >&2\n"
                    "exit 1\n")
    hook.chmod(0o755)
    with pytest.raises(PushRejected) as err:
        await deliver(job_repo.worktree, job_repo.branch, job_repo.base_sha, CONTENT,
                      _github(forge), tmp_path / "state")
    msg = str(err.value)
    assert "denied for token" in msg and GITHUB_TOKEN not in msg and "\n" not in msg
    assert "\x1b" not in msg
