"""Checkpoints on the shared remote: a local bare repository as the remote, two clones of
it as two machines, each with its own Tandem home."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from orchestrator.errors import CheckpointMissing, CheckpointPushFailed, WorkspaceError
from orchestrator.workspace import Workspace
from orchestrator.workspace.remote import ensure_commit, job_ref, push_checkpoint, safe_remote
from tests.workspace.conftest import git

JOB = "job-7"


def _step(ws: Workspace, n: int) -> str:
    (ws.path / f"step{n}.txt").write_text(f"step {n}\n")
    return ws.checkpoint(f"step {n}", {"Tandem-Job": JOB, "Tandem-Step": str(n)}).sha


def _remote_ref(bare: Path, job_id: str = JOB) -> str:
    return git(bare, "rev-parse", "--verify", "-q", job_ref(job_id)).strip()


def _reject_all(bare: Path, message: str) -> None:
    hook = bare / "hooks" / "pre-receive"
    hook.write_text(f"#!/bin/sh\necho '{message}' >&2\nexit 1\n")
    hook.chmod(0o755)


@pytest.fixture
def bare(git_repo: Path, tmp_path: Path) -> Path:
    out = tmp_path / "shared.git"
    git(tmp_path, "clone", "-q", "--bare", str(git_repo), str(out))
    return out


@pytest.fixture
def clone_a(bare: Path, tmp_path: Path) -> Path:
    git(tmp_path, "clone", "-q", str(bare), str(tmp_path / "a"))
    return tmp_path / "a"


@pytest.fixture
def clone_b(bare: Path, tmp_path: Path) -> Path:
    git(tmp_path, "clone", "-q", str(bare), str(tmp_path / "b"))
    return tmp_path / "b"


@pytest.fixture
def ws_a(clone_a: Path, tmp_path: Path) -> Workspace:
    return Workspace.open_or_create(clone_a, JOB, "remote test", home=tmp_path / "home-a")


def _ws_b(clone_b: Path, tmp_path: Path) -> Workspace:
    return Workspace.open_or_create(clone_b, JOB, "remote test", home=tmp_path / "home-b")


def test_push_sets_the_job_ref_and_is_forced(ws_a: Workspace, bare: Path) -> None:
    first = _step(ws_a, 1)
    ws_a.push_checkpoint("origin", JOB, first)
    assert _remote_ref(bare) == first
    second = _step(ws_a, 2)
    ws_a.push_checkpoint("origin", JOB, second)
    assert _remote_ref(bare) == second
    # a rollback moves the job back: the ref follows (forced, not a fast-forward)
    ws_a.rollback(1)
    ws_a.push_checkpoint("origin", JOB, first)
    assert _remote_ref(bare) == first
    # the ref is Tandem's own: no branch appears on the remote
    assert git(bare, "for-each-ref", "--format=%(refname)", "refs/heads").split() == [
        "refs/heads/main"]


def test_other_machine_fetches_and_restores(ws_a: Workspace, clone_b: Path,
                                            tmp_path: Path) -> None:
    _step(ws_a, 1)
    sha = _step(ws_a, 2)
    ws_a.push_checkpoint("origin", JOB, sha)
    ws_b = _ws_b(clone_b, tmp_path)
    assert subprocess.run(["git", "cat-file", "-e", sha], cwd=clone_b).returncode != 0
    assert ws_b.ensure_commit("origin", JOB, sha, ws_a.base_sha) is True
    assert git(clone_b, "rev-parse", job_ref(JOB)).strip() == sha
    assert ws_b.ensure_commit("origin", JOB, sha) is False  # already here: no fetch
    ws_b.restore(sha)
    assert ws_b.head() == sha
    assert (ws_b.path / "step2.txt").read_text() == "step 2\n"
    assert [c.step for c in ws_b.list_checkpoints()] == [2, 1]


def test_fetched_commits_keep_restore_guard(ws_a: Workspace, clone_b: Path,
                                            tmp_path: Path) -> None:
    """A commit on the job ref that Tandem did not make is still refused by restore."""
    sha = _step(ws_a, 1)
    (ws_a.path / "foreign.txt").write_text("x\n")
    git(ws_a.path, "add", "foreign.txt")
    git(ws_a.path, "-c", "user.email=someone@example.com", "-c", "user.name=S",
        "commit", "-q", "-m", "not tandem")
    foreign = ws_a.head()
    push_checkpoint(ws_a.path, "origin", JOB, foreign)
    ws_b = _ws_b(clone_b, tmp_path)
    ws_b.ensure_commit("origin", JOB, foreign)
    with pytest.raises(WorkspaceError, match="is not a checkpoint of job branch"):
        ws_b.restore(foreign)
    ws_b.restore(sha)  # the Tandem commit before it is fine
    assert ws_b.head() == sha


def test_base_moved_on_other_machine_is_taken_from_state(ws_a: Workspace, clone_b: Path,
                                                         tmp_path: Path) -> None:
    sha = _step(ws_a, 1)
    ws_a.push_checkpoint("origin", JOB, sha)
    (clone_b / "later.txt").write_text("later\n")
    git(clone_b, "add", "later.txt")
    git(clone_b, "-c", "user.email=dev@example.com", "-c", "user.name=Dev",
        "commit", "-q", "-m", "main moved on")
    ws_b = _ws_b(clone_b, tmp_path)
    assert ws_b.base_sha != ws_a.base_sha
    ws_b.ensure_commit("origin", JOB, sha, ws_a.base_sha)
    assert ws_b.base_sha == ws_a.base_sha
    ws_b.restore(sha)
    assert [c.step for c in ws_b.list_checkpoints()] == [1]
    assert not (ws_b.path / "later.txt").exists()
    # the adopted base survives reopening the workspace
    assert _ws_b(clone_b, tmp_path).base_sha == ws_a.base_sha


def test_base_not_taken_over_when_worktree_has_own_checkpoints(
    ws_a: Workspace, clone_b: Path, tmp_path: Path
) -> None:
    sha = _step(ws_a, 1)
    ws_a.push_checkpoint("origin", JOB, sha)
    ws_b = _ws_b(clone_b, tmp_path)
    _step(ws_b, 1)
    with pytest.raises(WorkspaceError, match="remove the worktree"):
        ws_b.ensure_commit("origin", JOB, sha, "0" * 40)


def test_push_to_missing_remote_names_it_without_credentials(ws_a: Workspace,
                                                             tmp_path: Path) -> None:
    sha = _step(ws_a, 1)
    with pytest.raises(CheckpointPushFailed) as info:
        ws_a.push_checkpoint("nosuchremote", JOB, sha)
    assert "nosuchremote" in str(info.value) and job_ref(JOB) in str(info.value)
    url = "http://alice:s3cret-token@127.0.0.1:9/shared.git"
    with pytest.raises(CheckpointPushFailed) as info:
        push_checkpoint(ws_a.path, url, JOB, sha, timeout_s=30)
    message = str(info.value)
    assert "s3cret-token" not in message and "alice" not in message
    assert "http://***@127.0.0.1:9/shared.git" in message
    assert "\n" not in message


def test_push_rejected_by_remote_hook(ws_a: Workspace, bare: Path) -> None:
    sha = _step(ws_a, 1)
    _reject_all(bare, "refs/tandem are not allowed here")
    with pytest.raises(CheckpointPushFailed, match="refs/tandem are not allowed here"):
        ws_a.push_checkpoint("origin", JOB, sha)
    assert subprocess.run(["git", "rev-parse", "--verify", "-q", job_ref(JOB)],
                          cwd=bare, capture_output=True).returncode != 0


def test_missing_ref_on_remote(ws_a: Workspace, clone_b: Path, tmp_path: Path) -> None:
    sha = _step(ws_a, 1)  # never pushed
    ws_b = _ws_b(clone_b, tmp_path)
    with pytest.raises(CheckpointMissing, match=f"fetching {job_ref(JOB)} from origin failed"):
        ws_b.ensure_commit("origin", JOB, sha)


def test_commit_not_reachable_from_remote_ref(ws_a: Workspace, clone_b: Path,
                                              tmp_path: Path) -> None:
    first = _step(ws_a, 1)
    ws_a.push_checkpoint("origin", JOB, first)
    unpushed = _step(ws_a, 2)
    with pytest.raises(CheckpointMissing, match="nor reachable from"):
        ensure_commit(_ws_b(clone_b, tmp_path).path, "origin", JOB, unpushed)


def test_safe_remote_strips_userinfo() -> None:
    assert safe_remote("push to https://u:p@host/x.git failed") == (
        "push to https://***@host/x.git failed")
    assert safe_remote("ssh://git@host:22/x") == "ssh://***@host:22/x"
    assert safe_remote("origin") == "origin"
