"""``tandem pr JOB`` / ``tandem pr update JOB`` / ``tandem pr status JOB``.

Delivers a finished job's branch as a pull request (GitHub, GitLab) or a PR bundle on
disk, with the body rebuilt from the job's receipts. The forge settings come from the job
record (``tandem run --pr ... --forge-repo ...``); options here override them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from orchestrator.cli import emit_json
from orchestrator.errors import ConfigError, JobError

KINDS = click.Choice(["github", "gitlab", "bundle", "none"])


class _DefaultOpenGroup(click.Group):
    """``tandem pr JOB`` means ``tandem pr open JOB``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["open", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_DefaultOpenGroup)
def pr() -> None:
    """Open or update a job's pull request, or write its PR bundle.

    \b
      tandem pr JOB                 deliver as configured for the job (default: bundle)
      tandem pr JOB --pr github --repo owner/name --draft --label tandem
      tandem pr update JOB          push again and update the same PR in place
      tandem pr status JOB          what was delivered last time

    Tokens are read from GITHUB_TOKEN / GITLAB_TOKEN (or --token-env). The PR body, the
    commit messages and every commit's diff are scanned for secrets first: a finding
    blocks delivery and nothing leaves the machine.
    """


def _delivery_options(fn: Any) -> Any:
    options = [
        click.option("--pr", "kind", type=KINDS, help="Where to deliver (default: the job's)."),
        click.option("--repo", help="owner/name (GitHub) or group/project or id (GitLab)."),
        click.option("--remote", help="git remote to push the job branch to (default origin)."),
        click.option("--api-url", help="Forge API root, e.g. https://github.example.com/api/v3."),
        click.option("--token-env", help="Variable holding the token (default GITHUB_TOKEN / "
                                         "GITLAB_TOKEN)."),
        click.option("--base", "base_branch", help="Target branch (default: remote's HEAD)."),
        click.option("--draft/--ready", default=None, help="Open as a draft PR."),
        click.option("--label", "labels", multiple=True, help="Label to add (repeatable)."),
        click.option("--reviewer", "reviewers", multiple=True,
                     help="Reviewer login / GitLab username or id (repeatable)."),
        click.option("--squash", is_flag=True, default=None,
                     help="Squash the step commits into one (provenance kept in the message)."),
        click.option("--title", help="PR title (default: from the task)."),
        click.option("--summary", help="PR summary paragraph (default: the task)."),
        click.option("--json", "json_out", is_flag=True, help="Print the result as JSON."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@pr.command("open")
@click.argument("job_id")
@_delivery_options
def open_(job_id: str, json_out: bool, **opts: Any) -> None:
    """Deliver JOB's branch: push and open (or update) its PR, or write its bundle."""
    _run(job_id, json_out, require_previous=False, opts=opts)


@pr.command("update")
@click.argument("job_id")
@_delivery_options
def update(job_id: str, json_out: bool, **opts: Any) -> None:
    """Push JOB's branch again and update the PR opened for it earlier."""
    _run(job_id, json_out, require_previous=True, opts=opts)


@pr.command("status")
@click.argument("job_id")
@click.option("--json", "json_out", is_flag=True, help="Print the state as JSON.")
def status(job_id: str, json_out: bool) -> None:
    """Show what was delivered for JOB last time (PR number, URL, pushed SHA, bundle)."""
    from orchestrator.pr.state import load_state

    state = load_state(_state_dir(_load_job(job_id)))
    if json_out:
        emit_json(state.model_dump(mode="json") if state else None)
    elif state is None:
        click.echo(f"job {job_id}: no PR delivered yet (run `tandem pr {job_id}`)")
    else:
        click.echo(f"job {job_id}: {state.kind} PR #{state.number or '-'} {state.url or ''}\n"
                   f"  branch {state.branch}, pushed {state.pushed_sha or '-'}\n"
                   f"  bundle {state.bundle_dir or '-'}")


def _load_job(job_id: str) -> Any:
    try:
        from orchestrator.jobstore import load_job
    except ImportError as exc:
        raise JobError(f"the job store is not available ({exc}); cannot look up {job_id}") from exc
    return load_job(job_id)


def _state_dir(job: Any) -> Path:
    return Path(job.dir) / "pr"


def _run(job_id: str, json_out: bool, *, require_previous: bool, opts: dict[str, Any]) -> None:
    from orchestrator.pr.state import load_state

    job = _load_job(job_id)
    if require_previous and load_state(_state_dir(job)) is None:
        raise JobError(f"job {job_id} has no PR yet: run `tandem pr {job_id}` first")
    title, summary = opts.pop("title"), opts.pop("summary")
    result = asyncio.run(_deliver(job, _forge_config(job, opts), title, summary))
    if hasattr(job, "save"):
        job.pr_result = result
        job.save()
    _report(result, json_out)


def _forge_config(job: Any, opts: dict[str, Any]) -> Any:
    from orchestrator.pr import ForgeConfig

    fields: dict[str, Any] = {"kind": getattr(job, "pr", None) or "bundle",
                              **(getattr(job, "forge", None) or {})}
    for key, value in opts.items():
        if value not in (None, ()):
            fields[key] = list(value) if isinstance(value, tuple) else value
    try:
        return ForgeConfig(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"PR settings of job {job.job_id}: {where}: {first['msg']}") from exc


async def _deliver(job: Any, cfg: Any, title: str | None, summary: str | None) -> dict[str, Any]:
    from orchestrator.pr import StepSummary, deliver, render_pr

    if not job.worktree or not job.branch or not job.base_sha:
        raise JobError(f"job {job.job_id} has no branch yet (status {job.status}): "
                       "run or resume it first")
    source = _commits_source(job)
    steps = [StepSummary.model_validate(s) for s in job.steps]
    content = render_pr(job.job_id, job.task, title or "", summary or "", list(job.plan),
                        steps, list(job.receipts), dict(job.budget))
    result = await deliver(source, job.branch, job.base_sha, content, cfg, _state_dir(job))
    return result.model_dump(mode="json")


def _commits_source(job: Any) -> Path:
    """Where the job branch's commits are: the job's worktree, else (a worktree cleaned up,
    or a job run on another machine) the job's repository, whose branch is recreated at the
    job's last recorded commit when only the commit is left."""
    from orchestrator.pr.gitops import run_git

    ref = f"refs/heads/{job.branch}"

    def has(cwd: Path, rev: str) -> bool:
        return cwd.is_dir() and run_git(
            cwd, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False
        ).returncode == 0

    worktree, repo = Path(job.worktree), Path(job.repo)
    if has(worktree, ref):
        return worktree
    if has(repo, ref) and has(repo, job.base_sha):
        return repo
    for rev in (job.head_sha, f"refs/tandem/jobs/{job.job_id}"):
        if rev and has(repo, rev) and has(repo, job.base_sha):
            sha = run_git(repo, "rev-parse", "--verify", f"{rev}^{{commit}}").stdout.strip()
            run_git(repo, "update-ref", "-m", "tandem: restore the job branch for its PR",
                    ref, sha, "")
            return repo
    head = f" or its commit {job.head_sha[:10]}" if job.head_sha else ""
    raise JobError(
        f"job {job.job_id}: its worktree {worktree} is gone and repository {repo} lacks the "
        f"branch {job.branch}{head}: fetch it there (git fetch <remote> "
        f"{job.branch}:{job.branch}, or refs/tandem/jobs/{job.job_id}:{job.branch} from the "
        "checkpoint remote) and run tandem pr again"
    )


def _report(result: dict[str, Any], json_out: bool) -> None:
    if json_out:
        emit_json(result)
        return
    if result["kind"] == "none":
        click.echo("PR delivery is off for this job (--pr none).")
        return
    if result.get("number") is not None:
        verb = "updated" if result["updated"] else "opened"
        click.echo(f"PR #{result['number']} {verb}: {result.get('url') or '(no URL)'}")
    if result.get("bundle_dir"):
        click.echo(f"PR bundle: {result['bundle_dir']} "
                   f"(apply with: git am {result['bundle_dir']}/patches/*.patch)")
