"""What a plan's file list can make the job read into a prompt: files of the worktree only,
never .git, however the path is spelled or linked."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrator.errors import UnsafePath
from tests.fixtures_jobs import bare_runtime


@pytest.mark.parametrize("rel", ["link/config", "sub/.GIT/config", "sub/.git./config",
                                 "sub/.git/config"])
def test_a_plan_file_in_a_git_folder_is_not_read(git_repo: Path, tmp_path: Path,
                                                  rel: str) -> None:
    rt = bare_runtime(git_repo, tmp_path, "job-reads")
    nested = rt.ws.path / "sub" / ".git"
    nested.mkdir(parents=True)
    (nested / "config").write_text("[remote]\n\turl = https://user:hunter2@example.com\n")
    os.symlink("sub/.git", rt.ws.path / "link")  # a link the repository could hold
    with pytest.raises(UnsafePath):
        rt.read_text(rel, max_chars=None)
    assert rt.read_text("app.py", max_chars=None) == "def add(a, b):\n    return a + b\n"
