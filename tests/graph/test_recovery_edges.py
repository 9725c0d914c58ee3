"""Rollback and resume on a job branch that changed after the job stopped: squashed for its
PR, or holding a commit somebody else made. Real git, the real graph and SQLite store, the
demo's scripted answers."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from orchestrator.errors import JobError
from orchestrator.jobstore import load_job
from orchestrator.pr.squash import squash_commits
from orchestrator.runner import rollback_job, run_job
from orchestrator.sim.server import ThreadedSim
from tests.fixtures_jobs import done_demo_job


def _git(cwd: str | Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


def _user_commit(worktree: str) -> str:
    Path(worktree, "NOTES.md").write_text("mine\n")
    _git(worktree, "add", "NOTES.md")
    _git(worktree, "-c", "user.name=Dev", "-c", "user.email=dev@example.com", "commit", "-q",
         "-m", "my own fix")
    return _git(worktree, "rev-parse", "HEAD")


def test_rollback_after_the_branch_was_squashed_restores_the_step(
    tmp_path: Path, demo_repo: Path, demo_sim: ThreadedSim
) -> None:
    job = done_demo_job(tmp_path, demo_repo, demo_sim)
    assert job.worktree and job.base_sha
    step2 = job.steps[1]["checkpoint_sha"]
    squash_commits(Path(job.worktree), job.base_sha, "All in one")  # `tandem pr --squash`
    assert _git(job.worktree, "rev-list", "--count", f"{job.base_sha}..HEAD") == "1"

    assert asyncio.run(rollback_job(job, 2)) == step2
    assert _git(job.worktree, "rev-parse", "HEAD") == step2
    job = load_job(job.job_id)
    assert (job.status, job.head_sha, len(job.steps)) == ("paused", step2, 2)
    job = asyncio.run(run_job(job))
    assert job.status == "done", job.error
    assert _git(job.worktree, "rev-parse", "HEAD~1") == step2


def test_rollback_and_resume_refuse_to_drop_a_commit_made_on_the_job_branch(
    tmp_path: Path, demo_repo: Path, demo_sim: ThreadedSim
) -> None:
    job = done_demo_job(tmp_path, demo_repo, demo_sim)
    assert job.worktree
    mine = _user_commit(job.worktree)
    with pytest.raises(JobError, match=f"not made by Tandem.*{mine[:12]}"):
        asyncio.run(rollback_job(job, 2))
    assert _git(job.worktree, "rev-parse", "HEAD") == mine
    assert load_job(job.job_id).status == "done"

    _git(job.worktree, "reset", "-q", "--hard", "HEAD~1")
    asyncio.run(rollback_job(job, 2))
    mine = _user_commit(job.worktree)
    job = load_job(job.job_id)
    with pytest.raises(JobError, match=f"not made by Tandem.*{mine[:12]}"):
        asyncio.run(run_job(job))
    assert _git(job.worktree, "rev-parse", "HEAD") == mine
    assert (demo_repo / ".git").is_dir()
    assert load_job(job.job_id).status == "paused"


def test_resume_after_the_branch_was_deleted_and_head_moved_on(
    tmp_path: Path, demo_repo: Path, demo_sim: ThreadedSim
) -> None:
    """The user removed the paused job's worktree and branch and committed on their own
    branch since: resume makes the branch again from the job's recorded base, not from
    the user's new HEAD, and finishes the job."""
    import shutil

    job = done_demo_job(tmp_path, demo_repo, demo_sim)
    assert job.worktree and job.branch and job.base_sha
    step1 = job.steps[0]["checkpoint_sha"]
    asyncio.run(rollback_job(job, 1))
    shutil.rmtree(job.worktree)
    _git(demo_repo, "worktree", "prune")
    _git(demo_repo, "branch", "-D", job.branch)
    _user_commit(str(demo_repo))
    mine = _git(demo_repo, "rev-parse", "HEAD")

    job = asyncio.run(run_job(load_job(job.job_id)))
    assert job.status == "done", job.error
    assert _git(job.worktree, "rev-parse", "HEAD~2") == step1
    assert _git(job.worktree, "merge-base", "HEAD", mine) == job.base_sha != mine
