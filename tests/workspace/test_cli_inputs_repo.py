"""What a job's REPO must be: the root of a git repository with a working tree."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from orchestrator.errors import ConfigError
from orchestrator.workspace.worktree import check_repo_root


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_repository_root_is_accepted(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "repo")
    assert check_repo_root(tmp_path / "repo") == (tmp_path / "repo").resolve()


def test_subfolder_names_the_root(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "repo")
    sub = tmp_path / "repo" / "src" / "pkg"
    sub.mkdir(parents=True)
    root = (tmp_path / "repo").resolve()
    with pytest.raises(ConfigError) as info:
        check_repo_root(sub)
    assert str(info.value) == (f"{sub.resolve()} is inside the git repository {root}; "
                               "pass the repository's root")


def test_bare_repository(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "--bare", "repo.git")
    bare = (tmp_path / "repo.git").resolve()
    with pytest.raises(ConfigError) as info:
        check_repo_root(bare)
    assert str(info.value) == (f"{bare} is a bare git repository (no working tree); "
                               "pass a clone of it")


def test_plain_folder_keeps_the_git_init_advice(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(ConfigError) as info:
        check_repo_root(plain, tool="tandem chat")
    assert str(info.value) == (f"{plain.resolve()} is not a git repository (no .git): run "
                               "`git init` there, or point tandem chat at the repository root")
