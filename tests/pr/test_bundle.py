"""PR bundles (PR.md + git format-patch series) and squashing the step commits."""

from __future__ import annotations

import subprocess
from pathlib import Path

from orchestrator.pr import PRContent, squash_commits, write_bundle
from orchestrator.workspace.git import IDENTITY

from .conftest import JobRepo, failing_hook, git

CONTENT = PRContent(title="Add mul", summary="Adds mul().", body="Adds mul().\n\n## Plan\n")


def test_bundle_applies_with_git_am_onto_a_fresh_clone(job_repo: JobRepo, tmp_path: Path) -> None:
    out = write_bundle(job_repo.worktree, job_repo.base_sha, CONTENT, tmp_path / "bundle")
    series = (out / "patches" / "series").read_text().split()
    assert len(series) == 2 and all((out / "patches" / name).exists() for name in series)
    pr_md = (out / "PR.md").read_text()
    assert pr_md.startswith("# Add mul\n") and "git am patches/*.patch" in pr_md

    clone = tmp_path / "fresh"
    git(tmp_path, "clone", "-q", "--branch", "main", str(job_repo.remote), str(clone))
    git(clone, "config", "user.email", "reviewer@example.com")
    git(clone, "config", "user.name", "Reviewer")
    assert git(clone, "rev-parse", "HEAD") == job_repo.base_sha
    git(clone, "am", "-q", *[str(out / "patches" / name) for name in series])

    assert git(clone, "rev-parse", "HEAD^{tree}") == git(
        job_repo.worktree, "rev-parse", f"{job_repo.branch}^{{tree}}")
    assert (clone / "src" / "new module.py").read_text() == "VALUE = 1\n"
    assert not (clone / "old notes.txt").exists()
    assert (clone / "logo.bin").read_bytes() == bytes(range(256)) * 4
    # provenance travels with the patches
    trailers = git(clone, "log", "--format=%(trailers:key=Tandem-Served-Model,valueonly)",
                   f"{job_repo.base_sha}..HEAD").split()
    assert trailers == ["deep-sim", "spark-sim"]


def test_bundle_applies_whatever_the_users_diff_and_format_config(
    job_repo: JobRepo, odd_user_config: Path, tmp_path: Path
) -> None:
    out = write_bundle(job_repo.worktree, job_repo.base_sha, CONTENT, tmp_path / "bundle")
    patches = sorted((out / "patches").glob("*.patch"))
    assert [p.name for p in patches] == (out / "patches" / "series").read_text().split()
    assert len(patches) == 2  # no cover letter, the suffix PR.md's `git am` names
    text = "".join(p.read_text() for p in patches)
    assert "diff --git a/app.py b/app.py" in text
    assert "Signed-off-by" not in text and "my own signature" not in text

    clone = tmp_path / "fresh"
    git(tmp_path, "clone", "-q", "--branch", "main", str(job_repo.remote), str(clone))
    git(clone, "config", "user.email", "reviewer@example.com")
    git(clone, "config", "user.name", "Reviewer")
    git(clone, "am", "-q", *map(str, patches))
    assert git(clone, "rev-parse", "HEAD^{tree}") == git(
        job_repo.worktree, "rev-parse", f"{job_repo.branch}^{{tree}}")


def test_rewriting_a_bundle_drops_stale_patches(job_repo: JobRepo, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    write_bundle(job_repo.worktree, job_repo.base_sha, CONTENT, out)
    squash_commits(job_repo.worktree, job_repo.base_sha, "Add mul")
    write_bundle(job_repo.worktree, job_repo.base_sha, CONTENT, out)
    assert len(list((out / "patches").glob("*.patch"))) == 1
    assert (out / "patches" / "series").read_text().count("\n") == 1


def test_squash_keeps_tree_and_every_steps_trailers(job_repo: JobRepo) -> None:
    wt = job_repo.worktree
    tree_before = git(wt, "rev-parse", "HEAD^{tree}")
    old = git(wt, "rev-list", "--reverse", f"{job_repo.base_sha}..HEAD").split()

    new_sha = squash_commits(wt, job_repo.base_sha, "Add mul\n\nAdds mul() and its test.")

    assert git(wt, "rev-parse", "HEAD") == new_sha
    assert git(wt, "rev-parse", "HEAD^") == job_repo.base_sha
    assert git(wt, "rev-parse", "HEAD^{tree}") == tree_before
    assert git(wt, "status", "--porcelain") == ""  # index and files untouched
    message = git(wt, "log", "-1", "--format=%B")
    assert message.startswith("Add mul\n\nAdds mul() and its test.")
    assert f"- {old[0][:10]} Add mul" in message
    parsed = git(wt, "interpret-trailers", "--parse", input=message + "\n").splitlines()
    assert [t for t in parsed if t.startswith("Tandem-Step:")] == ["Tandem-Step: 1",
                                                                    "Tandem-Step: 2"]
    assert "Tandem-Served-Model: spark-sim" in parsed
    assert "Tandem-Served-Model: deep-sim" in parsed
    assert f"Tandem-Squashed-From: {old[0][:12]} {old[1][:12]}" in parsed


def test_squash_runs_no_hook_of_the_repository(
    job_repo: JobRepo, odd_user_config: Path
) -> None:
    hook = failing_hook(job_repo.repo, "reference-transaction")
    tree = git(job_repo.worktree, "rev-parse", "HEAD^{tree}")
    new_sha = squash_commits(job_repo.worktree, job_repo.base_sha, "Add mul")
    assert job_repo.head() == new_sha and git(job_repo.worktree, "rev-parse",
                                              "HEAD^{tree}") == tree
    assert hook.exists()  # still in place: skipped, not removed
    # committed as Tandem, like each step: the user's config has no identity to give
    assert git(job_repo.worktree, "log", "-1", "--format=%ce") == IDENTITY["GIT_COMMITTER_EMAIL"]


def test_squash_of_a_single_commit_changes_nothing(job_repo: JobRepo) -> None:
    wt = job_repo.worktree
    squash_commits(wt, job_repo.base_sha, "first")
    head = git(wt, "rev-parse", "HEAD")
    assert squash_commits(wt, job_repo.base_sha, "again") == head


def test_git_am_fails_loudly_on_a_different_base(job_repo: JobRepo, tmp_path: Path) -> None:
    """The series is tied to its base: applied onto a diverged tree it does not apply."""
    out = write_bundle(job_repo.worktree, job_repo.base_sha, CONTENT, tmp_path / "bundle")
    clone = tmp_path / "diverged"
    git(tmp_path, "clone", "-q", str(job_repo.remote), str(clone))
    git(clone, "config", "user.email", "r@example.com")
    git(clone, "config", "user.name", "R")
    (clone / "app.py").write_text("something else entirely\n")
    git(clone, "commit", "-qam", "diverge")
    proc = subprocess.run(["git", "am", *sorted(map(str, (out / "patches").glob("*.patch")))],
                          cwd=clone, capture_output=True, text=True)
    assert proc.returncode != 0
