"""Git's configuration files, changed by a command run in the job worktree, are put back."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from orchestrator.verify import CommandSpec, run_command
from orchestrator.workspace import Workspace
from tests.workspace.conftest import git


@pytest.fixture
def user_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "user-home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    return home


def _run_in(ws: Workspace, script: str) -> None:
    result = run_command(CommandSpec(name="t", cmd=["sh", "-c", script]), ws.path)
    assert result.passed, result.output_tail


def test_repository_config_changes_are_put_back(ws: Workspace, user_home: Path) -> None:
    config = ws.repo / ".git" / "config"
    before = config.read_bytes()
    guard = ws.guard_git_files()
    _run_in(ws, 'git config core.sshCommand "touch ran" && '
                'git config filter.x.clean "touch ran" && echo "* filter=x" > .gitattributes')
    assert b"sshCommand" in config.read_bytes()
    assert guard.restore_changes() == [config]
    assert config.read_bytes() == before
    probe = subprocess.run(["git", "config", "--get", "filter.x.clean"], cwd=ws.path,
                           capture_output=True)
    assert probe.returncode == 1


def test_a_redirected_git_dir_is_put_back(ws: Workspace, user_home: Path,
                                          tmp_path: Path) -> None:
    # The worktree's .git file pointed at a repository the command made, whose config
    # would run its commands: the file is put back, and git is the job's again.
    dot_git = ws.path / ".git"
    before = dot_git.read_bytes()
    guard = ws.guard_git_files()
    evil = tmp_path / "evil"
    _run_in(ws, f'git init -q {evil} && git -C {evil} config core.sshCommand "touch ran" '
                f'&& echo "gitdir: {evil}/.git" > .git')
    restored = guard.restore_changes()
    assert dot_git in restored and dot_git.read_bytes() == before
    assert git(ws.path, "symbolic-ref", "HEAD").strip() == f"refs/heads/{ws.branch}"


def test_head_pointed_at_another_branch_is_put_back(ws: Workspace, user_home: Path) -> None:
    # The user's branch sits at the job's base: had HEAD stayed on it, the next checkpoint
    # (update-ref HEAD) would have moved the user's branch.
    user_branch = git(ws.repo, "symbolic-ref", "--short", "HEAD").strip()
    guard = ws.guard_git_files()
    _run_in(ws, f"git symbolic-ref HEAD refs/heads/{user_branch}")
    assert [p.name for p in guard.restore_changes()] == ["HEAD"]
    assert git(ws.path, "symbolic-ref", "HEAD").strip() == f"refs/heads/{ws.branch}"


def test_global_config_created_by_the_command_is_removed(ws: Workspace,
                                                         user_home: Path) -> None:
    guard = ws.guard_git_files()
    _run_in(ws, 'git config --global credential.helper "!touch ran" && '
                'mkdir -p "$HOME/.config/git" && '
                'echo "[core] pager = x" > "$HOME/.config/git/config"')
    restored = guard.restore_changes()
    assert sorted(restored) == sorted([user_home / ".gitconfig",
                                       user_home / ".config" / "git" / "config"])
    assert not (user_home / ".gitconfig").exists()
    assert not (user_home / ".config" / "git" / "config").exists()


def test_a_symlinked_global_config_keeps_its_link_and_content(ws: Workspace,
                                                              user_home: Path) -> None:
    dotfiles = user_home / "dotfiles"
    dotfiles.mkdir()
    (dotfiles / "gitconfig").write_text("[user]\n\tname = Someone\n")
    (user_home / ".gitconfig").symlink_to(dotfiles / "gitconfig")
    guard = ws.guard_git_files()
    # `git config --global` writes through the link's target by replacing the link with
    # a file; either way both the link and the target's content come back.
    _run_in(ws, 'git config --global core.sshCommand "touch ran"')
    assert guard.restore_changes() == [user_home / ".gitconfig"]
    assert (user_home / ".gitconfig").is_symlink()
    assert os.readlink(user_home / ".gitconfig") == str(dotfiles / "gitconfig")
    assert (dotfiles / "gitconfig").read_text() == "[user]\n\tname = Someone\n"


def test_a_fifo_in_place_of_the_config_does_not_block(ws: Workspace,
                                                      user_home: Path) -> None:
    guard = ws.guard_git_files()
    os.mkfifo(user_home / ".gitconfig")
    assert guard.restore_changes() == [user_home / ".gitconfig"]
    assert not (user_home / ".gitconfig").exists()


def test_nothing_changed_nothing_put_back(ws: Workspace, user_home: Path) -> None:
    guard = ws.guard_git_files()
    _run_in(ws, "git status --short > /dev/null && echo hi > notes.txt")
    assert guard.restore_changes() == []
