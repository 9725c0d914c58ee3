"""``tandem pr``: deliver a stored job's branch from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.jobstore import JobRecord

from .conftest import ForgeStandIn, JobRepo, failing_hook, git


def _job(job_repo: JobRepo, **fields: object) -> JobRecord:
    job = JobRecord(
        job_id="20260101-000000-abc123", repo=str(job_repo.repo), task="Add mul() to app.py",
        worktree=str(job_repo.worktree), branch=job_repo.branch, base_sha=job_repo.base_sha,
        status="done", plan=["Add mul()", "Test mul()"],
        steps=[{"step": 1, "intent": "Add mul()", "tier": "fast", "served_model": "spark-sim",
                "verification": [{"name": "pytest", "passed": True, "exit_code": 0,
                                  "duration_ms": 10.0, "summary": "1 passed"}]}],
        budget={"cost_usd": {"used": 0.01, "limit": 1.0}}, **fields,  # type: ignore[arg-type]
    )
    job.save()
    return job


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_pr_job_writes_a_bundle_and_says_where(
    job_repo: JobRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    job = _job(job_repo)
    code, out, _ = _run(["pr", job.job_id, "--json"], capsys)
    assert code == 0
    result = json.loads(out)
    bundle = Path(result["bundle_dir"])
    assert result["kind"] == "bundle" and bundle == job.dir / "pr" / "bundle"
    body = (bundle / "PR.md").read_text()
    assert body.startswith("# Add mul() to app.py") and "| 1 | Add mul() | fast |" in body
    code, out, _ = _run(["pr", job.job_id], capsys)
    assert code == 0 and f"PR bundle: {bundle}" in out


def test_pr_delivers_with_no_identity_and_sign_off_in_the_users_config(
    job_repo: JobRepo, odd_user_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = _job(job_repo)
    code, out, err = _run(["pr", job.job_id, "--squash", "--json"], capsys)
    assert (code, err) == (0, "")
    patches = sorted((Path(json.loads(out)["bundle_dir"]) / "patches").glob("*.patch"))
    assert len(patches) == 1 and "Signed-off-by" not in patches[0].read_text()


def test_pr_update_opens_nothing_new_on_github(
    job_repo: JobRepo, forge: ForgeStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    job = _job(job_repo, pr="github",
               forge={"repo": "octo/app", "api_url": forge.github_url})
    code, out, err = _run(["pr", "update", job.job_id], capsys)
    assert code == 2 and "has no PR yet" in err and forge.requests == []

    code, out, _ = _run(["pr", job.job_id, "--draft", "--label", "tandem"], capsys)
    assert code == 0 and out.startswith("PR #1 opened: ")
    assert forge.pulls[1]["draft"] is True

    code, out, _ = _run(["pr", "update", job.job_id, "--title", "Better title", "--json"],
                        capsys)
    assert code == 0 and json.loads(out)["updated"] is True
    assert forge.pulls[1]["title"] == "Better title" and len(forge.pulls) == 1
    assert job_repo.remote_sha() == git(job_repo.worktree, "rev-parse", "HEAD")

    code, out, _ = _run(["pr", "status", job.job_id, "--json"], capsys)
    assert json.loads(out)["number"] == 1


def test_cli_errors_are_one_line(
    job_repo: JobRepo, forge: ForgeStandIn, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job = _job(job_repo, pr="github", forge={"repo": "octo/app", "api_url": forge.github_url})
    monkeypatch.delenv("GITHUB_TOKEN")
    code, _, err = _run(["pr", job.job_id], capsys)
    assert code == 2 and err.strip().count("\n") == 0 and "GITHUB_TOKEN is not set" in err
    code, _, err = _run(["pr", "no-such-job"], capsys)
    assert code == 2 and "no job 'no-such-job'" in err
    code, _, err = _run(["pr", job.job_id, "--pr", "gitlab", "--api-url", "x", "--repo", ""],
                        capsys)
    assert code == 2 and "GitLab project not set" in err
    assert job_repo.remote_sha() is None


def test_help_explains_delivery(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["pr", "--help"], capsys)
    assert code == 0 and "tandem pr update JOB" in out and "scanned for secrets" in out


def test_pr_after_the_worktree_was_removed_delivers_from_the_repository(
    job_repo: JobRepo, forge: ForgeStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    job = _job(job_repo, pr="github", forge={"repo": "octo/app", "api_url": forge.github_url})
    head = job_repo.head()
    git(job_repo.repo, "worktree", "remove", "--force", str(job_repo.worktree))
    code, out, err = _run(["pr", job.job_id], capsys)
    assert (code, err) == (0, "") and out.startswith("PR #1 opened: ")
    assert job_repo.remote_sha() == head and forge.pulls[1]["head"]["ref"] == job_repo.branch


@pytest.mark.parametrize("hooks", [False, True], ids=["plain", "failing-hooks"])
def test_pr_after_the_job_branch_was_deleted_uses_the_recorded_head(
    job_repo: JobRepo, forge: ForgeStandIn, capsys: pytest.CaptureFixture[str], hooks: bool
) -> None:
    """The branch is made again at the recorded head and pushed; the repository's hooks
    (a failing ``reference-transaction`` and ``pre-push``) are never run."""
    head = job_repo.head()
    job = _job(job_repo, pr="github", head_sha=head,
               forge={"repo": "octo/app", "api_url": forge.github_url})
    git(job_repo.repo, "worktree", "remove", "--force", str(job_repo.worktree))
    git(job_repo.repo, "branch", "-q", "-D", job_repo.branch)
    if hooks:
        failing_hook(job_repo.repo, "reference-transaction")
        failing_hook(job_repo.repo, "pre-push")
    code, out, err = _run(["pr", job.job_id], capsys)
    assert (code, err) == (0, "") and out.startswith("PR #1 opened: ")
    assert job_repo.remote_sha() == head
    assert git(job_repo.repo, "rev-parse", f"refs/heads/{job_repo.branch}") == head


def test_pr_with_the_job_commits_gone_is_one_line_saying_what_to_do(
    job_repo: JobRepo, forge: ForgeStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    job = _job(job_repo, pr="github", head_sha="ab" * 20,
               forge={"repo": "octo/app", "api_url": forge.github_url})
    git(job_repo.repo, "worktree", "remove", "--force", str(job_repo.worktree))
    git(job_repo.repo, "branch", "-q", "-D", job_repo.branch)
    code, out, err = _run(["pr", job.job_id], capsys)
    assert code == 2 and out == "" and err.strip().count("\n") == 0
    assert "Traceback" not in err and f"worktree {job_repo.worktree} is gone" in err
    assert job_repo.branch in err and "git fetch" in err
    assert job_repo.remote_sha() is None and forge.requests == []
