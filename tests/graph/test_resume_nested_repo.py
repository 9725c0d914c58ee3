"""A repository made inside a paused job's worktree (by the user, or by a test run) is
still there, with its history and uncommitted files, after the job resumes."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import pytest

from orchestrator.jobstore import JobRecord
from orchestrator.runner import run_job
from orchestrator.sim.server import ThreadedSim
from tests.fixtures_jobs import budget_paused_job


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=U", "-c", "user.email=u@example.com",
                           *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


def _run(job: JobRecord, resume_value: Any = None) -> JobRecord:
    return asyncio.run(run_job(job, resume_value=resume_value))


@pytest.mark.parametrize("with_commit", [True, False], ids=["committed", "no-commit-yet"])
def test_resume_leaves_a_nested_repository_in_place(
    tmp_path: Path, demo_repo: Path, demo_sim: ThreadedSim, with_commit: bool
) -> None:
    job = budget_paused_job(tmp_path, demo_repo, demo_sim)
    nested = Path(job.worktree) / "vendor" / "lib"
    nested.mkdir(parents=True)
    _git(nested, "init", "-q")
    (nested / "n.txt").write_text("x\n")
    if with_commit:
        _git(nested, "add", ".")
        _git(nested, "commit", "-q", "-m", "c")
    (nested / "draft.txt").write_text("draft\n")

    job.overrides = ["budgets.max_cost_usd=10"]
    job = _run(job, resume_value={"note": None})

    assert job.status == "done", job.pause_reason
    assert (nested / "draft.txt").read_text() == "draft\n"
    assert (nested / "n.txt").read_text() == "x\n"
    if with_commit:
        assert _git(nested, "log", "--format=%s") == "c"
