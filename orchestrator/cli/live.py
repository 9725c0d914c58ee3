"""Human-in-the-loop commands: approve or reject a step that waits for approval, steer a
running job, and the interactive chat."""

from __future__ import annotations

from pathlib import Path

import click

from orchestrator.cli import check_env_redis_url, emit_json
from orchestrator.errors import ConfigError
from orchestrator.jobstore import JobRecord, load_job


def _waiting(job_id: str) -> JobRecord:
    job = load_job(job_id)
    if job.status != "paused" or not (job.pause_reason or "").startswith("approval"):
        why = f": {job.pause_reason}" if job.pause_reason else ""
        raise ConfigError(f"job {job.job_id} is not waiting for approval "
                          f"(status {job.status}{why})")
    return job


@click.command()
@click.argument("job_id")
@click.option("--note", help="Recorded in the approval receipt.")
@click.option("--json", "json_out", is_flag=True, help="Print the job summary as JSON.")
def approve(job_id: str, note: str | None, json_out: bool) -> None:
    """Approve the step a job is waiting on; the job then continues."""
    from orchestrator.cli.jobs import execute  # imported late: `tandem steer` stays quick

    check_env_redis_url()  # before the job is looked up: the first error a user should see
    job = _waiting(job_id)
    execute(job, json_out=json_out, resume_value={"approved": True, "note": note or "approved"})


@click.command()
@click.argument("job_id")
@click.option("--reason", required=True, help="Why the step is rejected (recorded).")
@click.option("--json", "json_out", is_flag=True, help="Print the job summary as JSON.")
def reject(job_id: str, reason: str, json_out: bool) -> None:
    """Reject the step a job is waiting on: it is not applied and the job ends."""
    from orchestrator.cli.jobs import execute

    check_env_redis_url()  # before the job is looked up: the first error a user should see
    job = _waiting(job_id)
    execute(job, json_out=json_out, resume_value={"approved": False, "reason": reason})


@click.command()
@click.argument("job_id")
@click.argument("message")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0, min_open=True),
              default=5.0, show_default=True,
              help="Seconds to wait for the job to answer.")
@click.option("--json", "json_out", is_flag=True, help="Print the job's answer as JSON.")
def steer(job_id: str, message: str, timeout_s: float, json_out: bool) -> None:
    """Redirect a running job with MESSAGE.

    The model's generation in flight is interrupted and redirected: in place with
    `response.steer` where the endpoint supports it, otherwise by aborting the stream and
    asking again with MESSAGE added. Nothing of the interrupted output is applied. Sent
    between two model calls, MESSAGE goes with the job's next call. Works for jobs run
    here (`tandem run`, `tandem chat`) and, with TANDEM_REDIS_URL, on workers.
    """
    from orchestrator.control import send_steer
    from orchestrator.errors import JobNotFound

    check_env_redis_url()
    try:
        job_id = load_job(job_id).job_id  # accepts a unique prefix
    except (JobNotFound, OSError):
        pass  # maybe a job that only the shared queue knows
    ack = send_steer(job_id, message, timeout_s=timeout_s)
    if ack.get("status") == "error":
        raise ConfigError(f"job {job_id} refused the steer: {ack.get('detail')}")
    if json_out:
        emit_json({"job_id": job_id, **ack})
    else:
        steer_id = f" (steer id {ack['id']})" if ack.get("id") else ""
        click.echo(f"job {job_id}: {ack.get('detail')}{steer_id}")


@click.command()
@click.argument("repo", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--policy", "-p", help="Policy name or YAML file (as for `tandem run`).")
@click.option("--test", "test_cmd", help="Verification command run after every step.")
@click.option("--pr", "pr_kind", type=click.Choice(["bundle", "none"]), default="none",
              show_default=True, help="Write a PR bundle at the end of each task, or not.")
@click.option("--tape", type=click.Path(exists=True, dir_okay=False),
              help="Scripted answers for the simulated provider (tiers at sim://).")
def chat(repo: Path, policy: str | None, test_cmd: str | None, pr_kind: str,
         tape: str | None) -> None:
    """Work on REPO interactively: type a task and watch the model stream it.

    \b
    While it streams, Ctrl-C interrupts and asks for a redirect (the generation is
    steered with what you type; empty = carry on).
    /undo    roll back the last checkpoint
    /deep    force the deep tier for the next task's first step (/fast: the fast tier)
    /quit    leave (Ctrl-D too)
    Each task runs as a job on its own branch, starting from the previous task's result.
    """
    from orchestrator.chat import ChatSession
    from orchestrator.cli.jobs import check_home, check_test_cmd
    from orchestrator.policy import load_policy
    from orchestrator.runner import check_runnable
    from orchestrator.workspace.worktree import check_repo_root

    check_test_cmd(test_cmd)
    check_env_redis_url()
    check_home()
    root = check_repo_root(repo, tool="tandem chat")
    # Checked as `tandem run` checks them, before the prompt: not once per typed task.
    check_runnable(load_policy(policy, repo=root), tape)
    ChatSession(root, policy=policy, test_cmd=test_cmd, pr=pr_kind, tape=tape).loop()
