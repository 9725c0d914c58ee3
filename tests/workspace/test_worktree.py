"""Job worktrees: creation, resume, removal; the user's repository stays byte-identical."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from orchestrator.errors import ConfigError, WorkspaceError
from orchestrator.workspace import Workspace, parse_edits
from tests.workspace.conftest import git


def user_state(repo: Path) -> dict[str, object]:
    return {
        "index": (repo / ".git" / "index").read_bytes(),
        "HEAD": (repo / ".git" / "HEAD").read_bytes(),
        "head_sha": git(repo, "rev-parse", "HEAD"),
        "status": git(repo, "status", "--porcelain=v1", "--untracked-files=all", "--ignored"),
        "branches": git(repo, "for-each-ref", "--format=%(refname) %(objectname)",
                        "refs/heads/"),
        "config": (repo / ".git" / "config").read_bytes(),
        "files": {p.name: p.read_bytes() for p in repo.iterdir() if p.is_file()},
    }


def test_whole_job_leaves_user_repository_byte_identical(git_repo: Path, tmp_path: Path) -> None:
    git(git_repo, "branch", "feature")
    (git_repo / "app.py").write_text("def add(a, b):\n    return a + b  # user's edit\n")
    (git_repo / "README.md").write_text("# staged by the user\n")
    git(git_repo, "add", "README.md")
    (git_repo / "scratch.txt").write_text("untracked user file\n")
    before = user_state(git_repo)

    ws = Workspace.open_or_create(git_repo, "job-7", "Whole job", home=tmp_path / "home")
    text = ("app.py\n<<<<<<< SEARCH\n    return a + b\n=======\n    return a + b + 0\n"
            ">>>>>>> REPLACE\n")
    res = ws.apply_edits(parse_edits(text))
    (ws.path / "log.txt").write_text("verification output\n")
    first = ws.checkpoint("Step 1", {"Tandem-Step": "1"}, res.changed_paths)
    (ws.path / "more.txt").write_text("x\n")
    ws.checkpoint("Step 2", {"Tandem-Step": "2"})
    ws.rollback(1)
    ws.restore(first.sha)
    ws.diff()
    ws.remove(delete_branch=True)

    assert user_state(git_repo) == before
    assert (git_repo / "app.py").read_text().endswith("# user's edit\n")


def test_worktree_location_branch_and_base(ws: Workspace, git_repo: Path, tmp_path: Path) -> None:
    assert ws.path == (tmp_path / "home" / "worktrees" / "job-1").resolve()
    assert ws.branch == "tandem/add-a-feature-job-1"
    assert ws.base_sha == git(git_repo, "rev-parse", "HEAD").strip()
    assert ws.head() == ws.base_sha
    assert (ws.path / "app.py").read_text() == (git_repo / "app.py").read_text()


def test_open_is_idempotent_and_keeps_base(ws: Workspace, git_repo: Path, tmp_path: Path) -> None:
    (ws.path / "n.txt").write_text("n\n")
    info = ws.checkpoint("Step 1", {"Tandem-Step": "1"})
    git(git_repo, "commit", "--allow-empty", "-q", "-m", "user moves on")
    again = Workspace.open_or_create(git_repo, "job-1", "Add a feature", home=tmp_path / "home")
    assert again.path == ws.path and again.head() == info.sha
    assert again.base_sha == ws.base_sha
    assert [c.sha for c in again.list_checkpoints()] == [info.sha]


def test_resume_after_remove_reuses_branch(ws: Workspace, git_repo: Path, tmp_path: Path) -> None:
    (ws.path / "n.txt").write_text("n\n")
    info = ws.checkpoint("Step 1", {"Tandem-Step": "1"})
    ws.remove()
    assert not ws.path.exists()
    assert "job-1" not in git(git_repo, "worktree", "list")
    again = Workspace.open_or_create(git_repo, "job-1", "Add a feature", home=tmp_path / "home")
    assert again.head() == info.sha and again.base_sha == ws.base_sha
    assert (again.path / "n.txt").read_text() == "n\n"


def test_remove_can_delete_branch(ws: Workspace, git_repo: Path) -> None:
    ws.remove(delete_branch=True)
    assert git(git_repo, "branch", "--list", ws.branch) == ""


def test_base_ref_other_than_head(git_repo: Path, tmp_path: Path) -> None:
    first = git(git_repo, "rev-parse", "HEAD").strip()
    (git_repo / "later.txt").write_text("later\n")
    git(git_repo, "add", "later.txt")
    git(git_repo, "commit", "-q", "-m", "later")
    ws = Workspace.open_or_create(git_repo, "j", "s", base_ref=first, home=tmp_path / "h")
    assert ws.base_sha == first and not (ws.path / "later.txt").exists()


def test_errors_are_clear(git_repo: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    with pytest.raises(ConfigError, match="invalid job id"):
        Workspace.open_or_create(git_repo, "../escape", "s", home=home)
    with pytest.raises(WorkspaceError, match="not a git repository"):
        Workspace.open_or_create(tmp_path, "j", "s", home=home)
    with pytest.raises(WorkspaceError, match="repository not found"):
        Workspace.open_or_create(tmp_path / "missing", "j", "s", home=home)
    with pytest.raises(WorkspaceError, match="base ref 'nope' is not a commit"):
        Workspace.open_or_create(git_repo, "j", "s", base_ref="nope", home=home)
    (home / "worktrees" / "occupied").mkdir(parents=True)
    with pytest.raises(WorkspaceError, match="not a Tandem worktree"):
        Workspace.open_or_create(git_repo, "occupied", "s", home=home)


def test_other_jobs_worktree_is_not_adopted(ws: Workspace, git_repo: Path, tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="not on branch tandem/other-slug-job-1"):
        Workspace.open_or_create(git_repo, "job-1", "other slug", home=tmp_path / "home")


def test_restore_refuses_when_worktree_vanished(ws: Workspace) -> None:
    subprocess.run(["rm", "-rf", str(ws.path)], check=True)
    with pytest.raises(WorkspaceError, match="is missing"):
        ws.restore(ws.base_sha)


def test_default_home_is_tandem_home(git_repo: Path, _tandem_home: Path) -> None:
    ws = Workspace.open_or_create(git_repo, "job-h", "s")
    assert ws.path == (_tandem_home / "worktrees" / "job-h").resolve()


def test_users_worktree_on_a_missing_folder_keeps_its_record(
    git_repo: Path, tmp_path: Path
) -> None:
    """git keeps the record of a worktree whose folder is away (an unmounted drive) for
    months; creating and removing a job's worktree must not drop it."""
    user_wt = tmp_path / "user-wt"
    git(git_repo, "worktree", "add", "-q", "-b", "user-work", str(user_wt))
    (user_wt / "staged.txt").write_text("staged\n")
    git(user_wt, "add", "staged.txt")
    away = tmp_path / "unmounted"
    user_wt.rename(away)

    ws = Workspace.open_or_create(git_repo, "job-u", "s", home=tmp_path / "home")
    subprocess.run(["rm", "-rf", str(ws.path)], check=True)  # the job's folder, by hand
    again = Workspace.open_or_create(git_repo, "job-u", "s", home=tmp_path / "home")
    again.remove(delete_branch=True)

    away.rename(user_wt)
    assert git(user_wt, "status", "--porcelain") == "A  staged.txt\n"
    assert str(user_wt) in git(git_repo, "worktree", "list")
    assert "job-u" not in git(git_repo, "worktree", "list")


def test_deleted_branch_is_made_again_from_the_recorded_base(
    git_repo: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    ws = Workspace.open_or_create(git_repo, "job-b", "s", home=home)
    (ws.path / "n.txt").write_text("n\n")
    step = ws.checkpoint("Step 1", {"Tandem-Step": "1"})
    ws.remove(delete_branch=True)
    git(git_repo, "commit", "--allow-empty", "-q", "-m", "user moves on")

    again = Workspace.open_or_create(git_repo, "job-b", "s", home=home, base_sha=ws.base_sha)
    assert again.base_sha == ws.base_sha and again.head() == ws.base_sha
    again.restore(step.sha)  # the job's checkpoint is its own again
    assert (again.path / "n.txt").read_text() == "n\n"


def test_recorded_base_missing_here_falls_back_to_base_ref(
    git_repo: Path, tmp_path: Path
) -> None:
    """A job that ran on another machine may record a base this clone has not fetched:
    ``ensure_commit`` takes it over once the checkpoints are fetched."""
    ws = Workspace.open_or_create(git_repo, "job-r", "s", home=tmp_path / "home",
                                  base_sha="1" * 40)
    assert ws.base_sha == git(git_repo, "rev-parse", "HEAD").strip()


def test_restore_refusal_names_the_show_command(ws: Workspace, git_repo: Path) -> None:
    git(git_repo, "commit", "--allow-empty", "-q", "-m", "not the job's")
    with pytest.raises(WorkspaceError, match=r"see `tandem show job-1`"):
        ws.restore(git(git_repo, "rev-parse", "HEAD").strip())
