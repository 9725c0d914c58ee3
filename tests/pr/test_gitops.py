"""The PR layer's git calls: failures name the git command that failed."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import GitError
from orchestrator.pr.gitops import run_git


def test_a_failure_names_the_git_command_not_its_options(git_repo: Path) -> None:
    with pytest.raises(GitError) as caught:
        run_git(git_repo, "-c", "core.quotePath=false", "rev-parse", "--verify", "no-such-ref")
    assert str(caught.value).startswith(f"git rev-parse in {git_repo} failed: ")
