"""Rollback and resume on a job branch that changed after the job stopped: squashed for its
PR, or holding a commit somebody else made. Real git, the real graph and SQLite store, the
demo's scripted answers."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from orchestrator.demo import DEMO_TASK, DEMO_TEST_CMD
from orchestrator.errors import JobError
from orchestrator.jobstore import JobRecord, load_job, new_job_id
from orchestrator.pr.squash import squash_commits
from orchestrator.runner import rollback_job, run_job
from orchestrator.sim.server import ThreadedSim
from tests.fixtures_jobs import write_policy


def _git(cwd: str | Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


def _done_job(tmp_path: Path, repo: Path, sim: ThreadedSim) -> JobRecord:
    policy = write_policy(tmp_path / "p.yaml", sim.base_url)
    job = JobRecord(job_id=new_job_id(), repo=str(repo), task=DEMO_TASK, policy=str(policy),
                    test_cmd=DEMO_TEST_CMD)
    job.save()
    job = asyncio.run(run_job(job))
    assert job.status == "done", job.error
    return job


def _user_commit(worktree: str) -> str:
    Path(worktree, "NOTES.md").write_text("mine\n")
    _git(worktree, "add", "NOTES.md")
    _git(worktree, "-c", "user.name=Dev", "-c", "user.email=dev@example.com", "commit", "-q",
         "-m", "my own fix")
    return _git(worktree, "rev-parse", "HEAD")


def test_rollback_after_the_branch_was_squashed_restores_the_step(
    tmp_path: Path, demo_repo: Path, demo_sim: ThreadedSim
) -> None:
    job = _done_job(tmp_path, demo_repo, demo_sim)
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
    job = _done_job(tmp_path, demo_repo, demo_sim)
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
