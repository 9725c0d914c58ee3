"""Fixtures for workspace tests: a job workspace on a real repository in a tmp dir."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from orchestrator.workspace import Workspace


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def ws(git_repo: Path, tmp_path: Path) -> Workspace:
    return Workspace.open_or_create(git_repo, "job-1", "Add a feature", home=tmp_path / "home")


def committed(ws: Workspace, rel: str, rev: str = "HEAD") -> bytes:
    """The content of ``rel`` in commit ``rev`` of the job branch."""
    return subprocess.run(
        ["git", "cat-file", "blob", f"{rev}:{rel}"], cwd=ws.path, check=True,
        capture_output=True,
    ).stdout


def tree_paths(ws: Workspace, rev: str = "HEAD") -> list[str]:
    out = subprocess.run(
        ["git", "ls-tree", "-r", "-z", "--name-only", rev], cwd=ws.path, check=True,
        capture_output=True,
    ).stdout
    import os

    return sorted(os.fsdecode(p) for p in out.split(b"\0") if p)
