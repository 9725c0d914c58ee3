"""What a plan's file list can make the job read into a prompt: files of the worktree only,
never .git, however the path is spelled or linked."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrator.errors import UnsafePath
from orchestrator.events import EventLog
from orchestrator.jobctx import JobRuntime
from orchestrator.jobstore import JobRecord
from orchestrator.policy import load_policy
from orchestrator.workspace import Workspace


def _runtime(repo: Path, tmp_path: Path) -> JobRuntime:
    ws = Workspace.open_or_create(repo, "job-reads", "reads", home=tmp_path / "home")
    job = JobRecord(job_id="job-reads", repo=str(repo), task="t", policy="default")
    return JobRuntime(job=job, policy=load_policy("default"), ws=ws,
                      events=EventLog(tmp_path / "events.jsonl", job.job_id),
                      gateway=None)  # type: ignore[arg-type]  # no model call here


@pytest.mark.parametrize("rel", ["link/config", "sub/.GIT/config", "sub/.git./config",
                                 "sub/.git/config"])
def test_a_plan_file_in_a_git_folder_is_not_read(git_repo: Path, tmp_path: Path,
                                                  rel: str) -> None:
    rt = _runtime(git_repo, tmp_path)
    nested = rt.ws.path / "sub" / ".git"
    nested.mkdir(parents=True)
    (nested / "config").write_text("[remote]\n\turl = https://user:hunter2@example.com\n")
    os.symlink("sub/.git", rt.ws.path / "link")  # a link the repository could hold
    with pytest.raises(UnsafePath):
        rt.read_text(rel, max_chars=None)
    assert rt.read_text("app.py", max_chars=None) == "def add(a, b):\n    return a + b\n"
