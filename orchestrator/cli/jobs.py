"""Job commands: run, demo, resume, rollback, jobs, show."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from orchestrator.cli import check_env_redis_url, emit_json
from orchestrator.cli.progress import Progress, receipts_table
from orchestrator.config import get_settings
from orchestrator.errors import ConfigError, JobNotFound, TandemError
from orchestrator.events import read_events
from orchestrator.jobstore import JobRecord, list_jobs, load_job, new_job_id, running_pid
from orchestrator.workspace.worktree import check_repo_root

PR_KINDS = click.Choice(["bundle", "github", "gitlab", "none"])
EXIT_PAUSED = 3  # the job waits: for `tandem resume`, or a human's approve/reject


def _execute(job: JobRecord, *, json_out: bool, resume_value: Any = None,
             new: bool = False) -> JobRecord:
    from orchestrator.runner import run_job

    check_env_redis_url()  # a job also listens on it (steering, approvals) when it is set
    progress = Progress(enabled=not json_out)

    async def main() -> JobRecord:
        # SIGTERM stops the job as Ctrl-C does: the run is recorded as interrupted.
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        return await run_job(job, resume_value=resume_value, listeners=(progress.on_event,))

    try:
        job = asyncio.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        progress.close()
        _interrupted(job.job_id, json_out=json_out)
    except TandemError:
        progress.close()
        if new and not job.events_path.exists():  # refused before it started: no record
            shutil.rmtree(job.dir, ignore_errors=True)
        raise
    progress.close()
    return job


def _interrupted(job_id: str, *, json_out: bool = False) -> None:
    job = load_job(job_id)
    done = f"after step {job.steps[-1]['step']}" if job.steps else "before its first checkpoint"
    message = f"job {job_id} interrupted {done}; continue with `tandem resume {job_id}`"
    click.echo(f"tandem: {message}", err=True)
    if json_out:  # a script reads JSON on stdout whatever the outcome
        emit_json({"job_id": job_id, "status": "interrupted", "error": message,
                   "exit_code": 130})
    sys.exit(130)


def _job_summary(job: JobRecord) -> dict[str, Any]:
    receipts = [r.model_dump(mode="json") for r in job.receipts]
    return {
        "job_id": job.job_id, "status": job.status, "pause_reason": job.pause_reason,
        "error": job.error, "task": job.task, "repo": job.repo, "worktree": job.worktree,
        "branch": job.branch, "base_sha": job.base_sha, "head_sha": job.head_sha,
        "plan": job.plan, "steps": job.steps, "budget": job.budget,
        "escalations": [e for s in job.steps for e in s.get("escalations", [])],
        "checkpoints": [s.get("checkpoint_sha") for s in job.steps],
        "pr": job.pr_result,
        "pr_bundle": (job.pr_result or {}).get("bundle_dir"),
        "receipts": receipts,
    }


def _report(job: JobRecord, json_out: bool) -> None:
    if json_out:
        emit_json(_job_summary(job))
    else:
        receipts_table(job)
    if job.status in ("failed", "cancelled"):
        sys.exit(1)
    if job.status == "paused":
        sys.exit(EXIT_PAUSED)


def execute(job: JobRecord, *, json_out: bool, resume_value: Any = None,
            new: bool = False) -> None:
    """Run or resume a job, then report it (every job command, approve/reject included).
    ``new``: the job was just created, and its record goes if it is refused at the start."""
    _report(_execute(job, json_out=json_out, resume_value=resume_value, new=new), json_out)


def _note_uncommitted(repo: Path, base_ref: str) -> None:
    """Say so when the user's uncommitted work will not be part of the job."""
    out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=normal"],
                         cwd=repo, capture_output=True, text=True)
    changes = [line for line in out.stdout.splitlines() if line.strip()]
    if out.returncode == 0 and changes:
        click.echo(f"note: {len(changes)} uncommitted change(s) in {repo} are not part of "
                   f"the job, which starts from {base_ref} (commit them first to include "
                   "them)", err=True)


def check_forge_token(pr_kind: str, forge: dict[str, Any] | None = None) -> None:
    """A PR to a forge needs its token: checked before the job spends anything."""
    if pr_kind in ("github", "gitlab"):
        from orchestrator.pr.deliver import forge_token
        from orchestrator.pr.models import ForgeConfig

        forge_token(ForgeConfig(kind=pr_kind, **(forge or {})))  # type: ignore[arg-type]


def read_task(task: str) -> str:
    """TASK as given, or read from stdin when it is ``-`` (a task longer than the
    command line allows, or one written by another program)."""
    if task != "-":
        return task
    if sys.stdin is None or sys.stdin.isatty():
        raise ConfigError("TASK is `-` but nothing is piped in: e.g. "
                          "`tandem run . - < task.md`")
    try:
        return sys.stdin.read()
    except UnicodeDecodeError:  # a strict stdin; otherwise check_task finds the bytes
        raise ConfigError(_NOT_UTF8) from None


# A byte that is not UTF-8 arrives as a lone surrogate (Python's escape for it), which the
# job's record could not be written with.
_NOT_UTF8 = "the task is not UTF-8 text: re-encode it as UTF-8 (e.g. with iconv)"


def check_task(task: str) -> None:
    try:
        task.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(_NOT_UTF8) from None
    if not task.strip():
        raise ConfigError("the task is empty: say what to do, e.g. "
                          '`tandem run . "Fix the failing test in tests/test_cart.py"`')


def check_test_cmd(test_cmd: str | None) -> None:
    """``--test`` is split as a shell would split it: a command that cannot be split, or
    that is empty, is refused before the job spends anything (not after its first step)."""
    from orchestrator.policy import split_command

    if test_cmd is None:
        return
    try:
        split_command(test_cmd)
    except ValueError as exc:
        raise ConfigError(f"--test {test_cmd!r} {exc} (it is split as a shell would split "
                          "it; no shell runs it)") from None


def check_home() -> None:
    """The Tandem home is created if missing and must be writable: said before a job
    creates anything in it (records, worktrees, the sample repository)."""
    home = get_settings().home
    try:
        home.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=home):
            pass
    except OSError as exc:
        raise ConfigError(f"TANDEM_HOME {home} cannot be written ({exc.strerror or exc}): "
                          "set TANDEM_HOME to a folder you can write (default ~/.tandem)"
                          ) from None


def _new_job(repo: Path, task: str, **fields: Any) -> JobRecord:
    """The job's record, for a repository root and a task already checked."""
    job = JobRecord(job_id=new_job_id(), repo=str(repo.resolve()), task=task, **fields)
    job.save()
    return job


@click.command()
@click.argument("repo", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("task")
@click.option("--policy", "-p", help="Policy name (default, strict, fast-only, deep-only) or "
              "path to a YAML file.")
@click.option("--set", "-s", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a policy field, e.g. -s budgets.max_cost_usd=2 (repeatable).")
@click.option("--test", "test_cmd", help="Verification command run after every step "
              "(replaces the policy's verify commands).")
@click.option("--base", "base_ref", default="HEAD", show_default=True,
              help="Git ref the job branch starts from.")
@click.option("--pr", "pr_kind", type=PR_KINDS, default="bundle", show_default=True,
              help="Where the result goes: a PR bundle on disk, GitHub, GitLab, or nowhere.")
@click.option("--forge-repo", help="owner/name (GitHub) or project path (GitLab) for --pr.")
@click.option("--tape", type=click.Path(exists=True, dir_okay=False, resolve_path=True),
              help="Scripted answers for the simulated provider (tiers at sim://).")
@click.option("--json", "json_out", is_flag=True, help="Print the job summary as JSON.")
def run(repo: Path, task: str, policy: str | None, overrides: tuple[str, ...],
        test_cmd: str | None, base_ref: str, pr_kind: str, forge_repo: str | None,
        tape: str | None, json_out: bool) -> None:
    """Carry TASK out on the git repository REPO: plan, route each step to the fast or the
    deep model, verify, checkpoint, and finish with a pull request (or PR bundle).

    \b
    Examples:
      tandem run ~/src/app "Fix the off-by-one in pagination" --test "pytest -q"
      tandem run . - --pr github < task.md     # TASK `-`: read it from stdin

    The repository's own working tree, index and branches are never touched: the job
    works in its own worktree on branch tandem/<slug>-<job>.

    Exit status: 0 done, 1 failed or rejected, 2 bad input, 3 paused (a budget, a
    provider error or an approval: see `tandem show JOB`, then `tandem resume JOB`),
    130 interrupted (Ctrl-C or SIGTERM: `tandem resume JOB` continues it). With --json,
    a failure before the summary prints {"error": ..., "exit_code": ...}.
    """
    from orchestrator.policy import load_policy
    from orchestrator.runner import check_runnable

    task = read_task(task)
    check_task(task)
    check_test_cmd(test_cmd)
    root = check_repo_root(repo)
    check_runnable(load_policy(policy, repo=root, overrides=overrides), tape)
    forge = {"repo": forge_repo} if forge_repo else {}
    check_forge_token(pr_kind, forge)
    check_home()
    job = _new_job(root, task, policy=policy, overrides=list(overrides), test_cmd=test_cmd,
                   base_ref=base_ref, pr=pr_kind, tape=tape, forge=forge)
    if not json_out:
        _note_uncommitted(root, base_ref)
    execute(job, json_out=json_out, new=True)


def create_demo_repo(target: Path) -> Path:
    """Copy the sample repository template to ``target`` and commit it; on failure,
    ``target`` is left as it was found (missing or empty)."""
    try:
        existed = target.exists()
        if existed and any(target.iterdir()):
            raise ConfigError(f"{target} exists and is not empty: choose another --dir")
    except OSError as exc:
        raise ConfigError(f"cannot use {target} for the sample repository "
                          f"({exc.strerror or exc}): choose another --dir") from None
    try:
        _fill_demo_repo(target)
    except (OSError, TandemError) as exc:
        shutil.rmtree(target, ignore_errors=True)
        if existed:
            target.mkdir(exist_ok=True)
        if isinstance(exc, TandemError):
            raise
        raise ConfigError(f"cannot create the sample repository in {target} "
                          f"({exc.strerror or exc}): choose another --dir") from None
    return target


def _fill_demo_repo(target: Path) -> None:
    """The template, committed with Tandem's own identity and git settings: the user's
    global git config (commit signing, hooks) must not make the demo fail."""
    from orchestrator.demo import TEMPLATE_DIR
    from orchestrator.workspace.git import run_git

    shutil.copytree(TEMPLATE_DIR, target, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    # Written here: a dotfile in the package data would not survive every installer.
    (target / ".gitignore").write_text("__pycache__/\n*.pyc\n")
    # A plain index, as the user's own repositories have: the split index that Tandem's
    # worktrees use is theirs alone.
    plain = ["-c", "core.splitIndex=false", "-c", "core.untrackedCache=false"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["commit", "-q", "--no-gpg-sign", "--no-verify", "-m", "Sample shop"]):
        run_git(target, [*plain, *args])


@click.command()
@click.option("--dir", "target", type=click.Path(file_okay=False, path_type=Path),
              help="Where to create the sample repository (default: under the Tandem home).")
@click.option("--policy", "-p", default="default", show_default=True,
              help="Policy name or path to a YAML file (its tiers are pointed at the "
              "simulated models).")
@click.option("--pr", "pr_kind", type=PR_KINDS, default="bundle", show_default=True,
              help="Where the result goes: a PR bundle on disk, GitHub, GitLab, or nowhere.")
@click.option("--json", "json_out", is_flag=True, help="Print receipts and the PR bundle "
              "path as JSON.")
def demo(target: Path | None, policy: str, pr_kind: str, json_out: bool) -> None:
    """Run a scripted multi-step job on a sample repository with the simulated models
    (no network, no keys): a fast single-file edit, a gate escalation on an auth change,
    a failing test fixed after escalation, a checkpoint per step, and a PR bundle."""
    from orchestrator.demo import DEMO_TASK, DEMO_TEST_CMD, TAPE_PATH
    from orchestrator.policy import load_policy

    load_policy(policy)  # a bad --policy is refused before anything is created
    check_forge_token(pr_kind)
    check_home()
    # Named as a job id is (time and a random part): two demos started in the same second
    # get folders of their own.
    target = target or get_settings().home / "demo" / f"shop-{new_job_id()}"
    repo = create_demo_repo(target)
    if not json_out:
        click.echo(f"sample repository: {repo}", err=True)
    job = _new_job(repo, DEMO_TASK, policy=policy, test_cmd=DEMO_TEST_CMD, pr=pr_kind,
                   tape=str(TAPE_PATH))
    execute(job, json_out=json_out, new=True)


@click.command()
@click.argument("job_id")
@click.option("--set", "-s", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Extra policy overrides for the rest of the job, e.g. a raised budget: "
              "-s budgets.max_cost_usd=10")
@click.option("--note", help="Guidance for the model after a pause (added to its context).")
@click.option("--json", "json_out", is_flag=True, help="Print the job summary as JSON.")
def resume(job_id: str, overrides: tuple[str, ...], note: str | None, json_out: bool) -> None:
    """Continue a paused, interrupted or crashed job from its last checkpoint."""
    job = load_job(job_id)
    if job.status == "done":
        raise ConfigError(f"job {job.job_id} is already done (see `tandem show {job.job_id}`)")
    if job.status == "cancelled":
        raise ConfigError(f"job {job.job_id} was rejected or cancelled ({job.error}); to "
                          f"redo part of it: `tandem rollback {job.job_id} --to STEP`, then "
                          "resume")
    if (job.pause_reason or "").startswith("approval"):
        raise ConfigError(f"job {job.job_id} waits for a human decision: "
                          f"`tandem approve {job.job_id}` or `tandem reject {job.job_id} "
                          "--reason ...`")
    if overrides:  # checked before they are saved: a typo must not stick to the job
        from orchestrator.runner import job_policy

        job_policy(job.model_copy(update={"overrides": [*job.overrides, *overrides]}))
    job.overrides = [*job.overrides, *overrides]
    job.save()
    execute(job, json_out=json_out, resume_value={"note": note})


@click.command()
@click.argument("job_id")
@click.option("--to", "step", type=click.IntRange(min=0), required=True,
              help="Step whose checkpoint to restore (0: the job's base, before step 1).")
@click.option("--json", "json_out", is_flag=True, help="Print the job, step and sha as JSON.")
def rollback(job_id: str, step: int, json_out: bool) -> None:
    """Restore a job's worktree (and its graph state) to the checkpoint of step STEP;
    `tandem resume JOB` then redoes the steps after it.

    The later checkpoints leave the job branch; their commits are listed on stderr and
    can be recovered by their sha (git keeps them until it collects garbage)."""
    from orchestrator.runner import rollback_job

    job = load_job(job_id)
    sha = asyncio.run(rollback_job(job, step))
    if json_out:
        emit_json({"job_id": job.job_id, "step": step, "sha": sha})
    else:
        click.echo(f"job {job.job_id} rolled back to step {step} ({sha[:12]}); "
                   f"continue with `tandem resume {job.job_id}`")


redis_option = click.option(
    "--redis-url", metavar="URL",
    help="Read the shared queue in Redis instead of this machine's job records "
    "(default: TANDEM_REDIS_URL when set).",
)


prefix_option = click.option(
    "--prefix", default="tandem", show_default=True,
    help="Key prefix of the deployment in Redis (with --redis-url).",
)


def _redis_url(redis_url: str | None) -> str | None:
    return redis_url or get_settings().redis_url


@click.command()
@click.option("--json", "json_out", is_flag=True, help="Print the jobs as a JSON list.")
@redis_option
@prefix_option
def jobs(json_out: bool, redis_url: str | None, prefix: str) -> None:
    """List jobs, newest first (this machine's, or the shared queue's with Redis)."""
    if _redis_url(redis_url):
        from orchestrator.cli.queue import run_with_queue

        queued = run_with_queue(_redis_url(redis_url), prefix, lambda q: q.list_jobs())
        if json_out:
            emit_json(queued)
        for entry in [] if json_out else queued:
            task = _one_line(str(entry.get("spec", {}).get("task", "")))
            click.echo(f"{entry['id']}  {entry['state']:<9} {task}")
        return
    skipped: list[tuple[Path, str]] = []
    records = [_live_status(j) for j in list_jobs(skipped)]
    for path, why in skipped:
        click.echo(f"warning: {path}: cannot be read, left out of the list ({why})", err=True)
    if json_out:
        emit_json([{"job_id": j.job_id, "status": j.status, "task": j.task, "repo": j.repo,
                    "steps": len(j.steps), "pause_reason": j.pause_reason} for j in records])
        return
    if not records:
        click.echo("no jobs yet: try `tandem demo`")
    for j in records:
        reason = f" ({j.pause_reason})" if j.pause_reason else ""
        click.echo(f"{j.job_id}  {j.status:<9} {len(j.steps)} steps  {_one_line(j.task)}"
                   f"{reason}")


def _one_line(task: str, width: int = 60) -> str:
    """A task as one line of the listing (a task read from a file has newlines)."""
    return " ".join(task.split())[:width]


def _live_status(job: JobRecord) -> JobRecord:
    """A record that says "running" while no process runs the job is a run that died
    (killed, or the machine stopped): it is shown as interrupted, to be resumed."""
    if job.status == "running" and running_pid(job) is None:
        job.status, job.pause_reason = "paused", "interrupted: resume it"
    return job


@click.command()
@click.argument("job_id")
@click.option("--json", "json_out", is_flag=True, help="Print the job as JSON (with --follow: "
              "one JSON event per line).")
@click.option("--follow", "-f", is_flag=True, help="Keep printing events until the job ends.")
@redis_option
@prefix_option
def show(job_id: str, json_out: bool, follow: bool, redis_url: str | None, prefix: str) -> None:
    """Show a job: plan, receipts, checkpoints and cost (or follow its events live,
    from any machine when the job runs on the shared Redis queue)."""
    # TANDEM_REDIS_URL set for the queue does not hide the jobs run here; --redis-url asks
    # for the queue's view.
    local = None if redis_url else _local_record(job_id)
    if local is None and _redis_url(redis_url):
        _show_queued(job_id, _redis_url(redis_url), prefix, json_out=json_out, follow=follow)
        return
    job = _live_status(local or load_job(job_id))
    if follow:
        from orchestrator.cli.progress import follow_events

        follow_events(job, json_out=json_out)
        return
    if json_out:
        out = _job_summary(job)
        out["events"] = len(read_events(job.events_path))
        emit_json(out)
        return
    receipts_table(job)


def _local_record(job_id: str) -> JobRecord | None:
    """This machine's record of the job (one run here with `tandem run`), if it has one."""
    try:
        return load_job(job_id)
    except JobNotFound:
        return None


def _show_queued(
    job_id: str, redis_url: str | None, prefix: str, *, json_out: bool, follow: bool
) -> None:
    from orchestrator.cli.progress import Progress
    from orchestrator.cli.queue import run_with_queue
    from orchestrator.queue import JobQueue

    if not follow:
        status = run_with_queue(redis_url, prefix, lambda q: q.status(job_id))
        if json_out:
            emit_json(status)
        else:
            for key, value in status.items():
                click.echo(f"{key}: {value}")
        return
    progress = Progress()

    async def tail(queue: JobQueue) -> None:
        async for event in queue.follow(job_id):
            if json_out:
                click.echo(json.dumps(event, default=str))
            else:
                progress.on_event(event)
                if event.get("type") == "job.finished":
                    click.echo(f"job {job_id} finished: {event.get('state')}")

    run_with_queue(redis_url, prefix, tail)
