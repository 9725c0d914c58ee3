"""A user's uncommitted edits in a job's worktree are never reset away unseen: a resume
or a rollback keeps them as a commit under ``refs/tandem/kept/<job>/...`` and says so;
a clean worktree keeps nothing. A step redone after a rollback records its own cost,
not its cost plus that of the run the rollback took back."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

from orchestrator.events import read_events
from orchestrator.jobstore import JobRecord, load_job, new_job_id
from orchestrator.runner import rollback_job, run_job
from orchestrator.sim.server import ThreadedSim
from tests.fixtures_jobs import budget_paused_job, write_policy


def _git(cwd: str | Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


def _run(job: JobRecord, resume_value: Any = None) -> JobRecord:
    return asyncio.run(run_job(job, resume_value=resume_value))


def _kept(job: JobRecord) -> list[str]:
    out = _git(job.repo, "for-each-ref", "--format=%(refname)", f"refs/tandem/kept/{job.job_id}")
    return out.split()


def _edit_by_hand(worktree: str) -> None:
    readme = Path(worktree) / "README.md"
    readme.write_text(readme.read_text() + "\nmy own note\n")
    (Path(worktree) / "NOTES.txt").write_text("not committed anywhere\n")


def _assert_kept(job: JobRecord, ref: str) -> None:
    assert "my own note" in _git(job.repo, "show", f"{ref}:README.md")
    assert _git(job.repo, "show", f"{ref}:NOTES.txt") == "not committed anywhere"


def test_resume_keeps_the_users_edits(tmp_path: Path, demo_repo: Path,
                                      demo_sim: ThreadedSim) -> None:
    job = budget_paused_job(tmp_path, demo_repo, demo_sim)
    _edit_by_hand(job.worktree)
    job.overrides = ["budgets.max_cost_usd=10"]
    job = _run(job, resume_value={"note": None})
    assert job.status == "done", job.pause_reason
    [ref] = _kept(job)
    _assert_kept(job, ref)
    kept = [e for e in read_events(job.events_path) if e["type"] == "worktree.kept"]
    assert [e["ref"] for e in kept] == [ref]


def test_rollback_keeps_the_users_edits(tmp_path: Path, demo_repo: Path,
                                        demo_sim: ThreadedSim) -> None:
    policy = write_policy(tmp_path / "p.yaml", demo_sim.base_url)
    job = JobRecord(job_id=new_job_id(), repo=str(demo_repo), task="Add slugify",
                    policy=str(policy), test_cmd="true")
    job.save()
    job = _run(job)
    assert job.status == "done" and job.worktree and len(job.steps) >= 2
    asyncio.run(rollback_job(job, 2))
    assert _kept(job) == []  # a clean worktree: nothing to keep
    job = load_job(job.job_id)
    _edit_by_hand(job.worktree or "")
    sha = asyncio.run(rollback_job(job, 1))
    assert _git(job.worktree or "", "status", "--porcelain") == ""
    assert _git(job.worktree or "", "rev-parse", "HEAD") == sha
    [ref] = _kept(job)
    _assert_kept(job, ref)


def test_a_step_redone_after_a_rollback_counts_only_its_own_calls(
    tmp_path: Path, demo_repo: Path, demo_sim: ThreadedSim
) -> None:
    policy = write_policy(tmp_path / "p.yaml", demo_sim.base_url)
    job = JobRecord(job_id=new_job_id(), repo=str(demo_repo), task="Add slugify",
                    policy=str(policy), test_cmd="true")
    job.save()
    job = _run(job)
    assert job.status == "done"
    first = {s["step"]: (s["tokens_in"], s["tokens_out"], s["cost_usd"]) for s in job.steps}
    asyncio.run(rollback_job(job, 1))
    job = _run(load_job(job.job_id))
    assert job.status == "done", job.error
    redone = {s["step"]: (s["tokens_in"], s["tokens_out"], s["cost_usd"]) for s in job.steps}
    assert redone == first  # the same scripted answers: the same cost, not twice it
    trailers = _git(job.worktree or "", "log", "-1", "--format=%(trailers:key=Tandem-Tokens)")
    assert f"in={first[3][0]} out={first[3][1]}" in trailers
