"""Human-in-the-loop commands: approve or reject a step that waits for approval."""

from __future__ import annotations

import click

from orchestrator.cli.jobs import execute
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
@click.option("--json", "json_out", is_flag=True)
def approve(job_id: str, note: str | None, json_out: bool) -> None:
    """Approve the step a job is waiting on; the job then continues."""
    job = _waiting(job_id)
    execute(job, json_out=json_out, resume_value={"approved": True, "note": note or "approved"})


@click.command()
@click.argument("job_id")
@click.option("--reason", required=True, help="Why the step is rejected (recorded).")
@click.option("--json", "json_out", is_flag=True)
def reject(job_id: str, reason: str, json_out: bool) -> None:
    """Reject the step a job is waiting on: it is not applied and the job ends."""
    job = _waiting(job_id)
    execute(job, json_out=json_out, resume_value={"approved": False, "reason": reason})
