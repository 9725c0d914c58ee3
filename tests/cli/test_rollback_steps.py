"""`tandem rollback` as a user sees it: the steps it accepts (up to the one the job is at,
said when another is asked for), what it says it drops, and a record that follows the
rolled-back state (its steps, no pull request). Real git, the real graph and SQLite
store, the demo's scripted answers; the commands through the real `tandem` process."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.errors import JobError
from orchestrator.jobstore import JobRecord, job_lock, load_job, new_job_id
from orchestrator.runner import rollback_job
from orchestrator.sim.server import ThreadedSim
from tests.fixtures_jobs import done_demo_job


def _tandem(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], env=dict(os.environ),
                          capture_output=True, text=True, timeout=120)


def _git(cwd: str | Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


def _one_line_error(out: subprocess.CompletedProcess[str], needle: str) -> None:
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
    assert needle in out.stderr, out.stderr


def test_rollback_past_the_last_step_says_which_steps_are_valid(
    tmp_path: Path, demo_repo: Path, demo_sim: ThreadedSim
) -> None:
    job = done_demo_job(tmp_path, demo_repo, demo_sim)
    head = _git(job.worktree or "", "rev-parse", "HEAD")
    _one_line_error(_tandem("rollback", job.job_id, "--to", "99"),
                    f"job {job.job_id} is at step 3: roll back to 0..3")
    assert _git(job.worktree or "", "rev-parse", "HEAD") == head
    assert load_job(job.job_id).status == "done"


def test_a_second_rollback_cannot_move_the_job_forward_again(
    tmp_path: Path, demo_repo: Path, demo_sim: ThreadedSim, caplog: pytest.LogCaptureFixture
) -> None:
    job = done_demo_job(tmp_path, demo_repo, demo_sim)
    step1, step2, step3 = (s["checkpoint_sha"] for s in job.steps)
    with caplog.at_level(logging.WARNING, logger="orchestrator.runner"):
        assert asyncio.run(rollback_job(job, 1)) == step1
    dropped = [r.getMessage() for r in caplog.records if "rollback drops" in r.getMessage()]
    assert len(dropped) == 2 and step3[:12] in dropped[0] and step2[:12] in dropped[1]
    assert [s["step"] for s in load_job(job.job_id).steps] == [1]

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="orchestrator.runner"), \
            pytest.raises(JobError, match=f"job {job.job_id} is at step 1: roll back to 0..1"):
        asyncio.run(rollback_job(load_job(job.job_id), 3))
    assert not [r for r in caplog.records if "rollback drops" in r.getMessage()]
    assert _git(job.worktree or "", "rev-parse", "HEAD") == step1
    listed = json.loads(_tandem("jobs", "--json").stdout)
    assert [(j["job_id"], j["steps"]) for j in listed] == [(job.job_id, 1)]

    assert asyncio.run(rollback_job(load_job(job.job_id), 0)) == job.base_sha
    assert load_job(job.job_id).steps == []
    _one_line_error(_tandem("rollback", job.job_id, "--to", "1"),
                    f"job {job.job_id} is at step 0: roll back to 0")


def test_a_rolled_back_job_shows_no_pull_request(
    tmp_path: Path, demo_repo: Path, demo_sim: ThreadedSim
) -> None:
    job = done_demo_job(tmp_path, demo_repo, demo_sim)
    bundle = (job.pr_result or {}).get("bundle_dir")
    assert bundle and f"pull request: {bundle}" in _tandem("show", job.job_id).stdout
    out = _tandem("rollback", job.job_id, "--to", "2")
    assert out.returncode == 0, out.stderr
    assert load_job(job.job_id).pr_result is None
    shown = _tandem("show", job.job_id)
    assert shown.returncode == 0 and "pull request" not in shown.stdout, shown.stdout
    assert json.loads(_tandem("show", job.job_id, "--json").stdout)["pr"] is None


def test_rolling_back_a_running_job_names_the_process_running_it(tmp_path: Path) -> None:
    job = JobRecord(job_id=new_job_id(), repo=str(tmp_path), task="t", status="running")
    job.save()  # a first run that has not made its worktree yet
    with job_lock(job):
        out = _tandem("rollback", job.job_id, "--to", "0")
    _one_line_error(out, f"job {job.job_id} is running in another process (pid {os.getpid()})")
