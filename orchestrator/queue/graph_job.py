"""The default job handler of ``tandem worker``: runs Tandem's graph on a queued job
(``orchestrator.runner.run_job``) with the job's fenced Redis checkpointer and its event
stream, so a job taken over by another worker resumes from its last checkpoint."""

from __future__ import annotations

from orchestrator.errors import JobNotFound
from orchestrator.queue.context import JobContext, JobResult

SPEC_FIELDS = ("repo", "task", "policy", "overrides", "base_ref", "test_cmd", "pr", "tape")


async def run_queued_job(ctx: JobContext) -> JobResult:
    from orchestrator.jobstore import JobRecord, load_job
    from orchestrator.runner import run_job

    try:
        job = load_job(ctx.job_id)
    except JobNotFound:
        fields = {k: ctx.spec[k] for k in SPEC_FIELDS if ctx.spec.get(k) is not None}
        job = JobRecord(job_id=ctx.job_id, **fields)
    job = await run_job(job, listeners=(ctx.listener(),), saver=ctx.checkpointer(),
                        fence=ctx.lease)
    output = {"status": job.status, "branch": job.branch, "worktree": job.worktree}
    if job.status == "done":
        return JobResult(output=output)
    return JobResult(state="failed", output=output,
                     error=job.error or job.pause_reason or f"job ended as {job.status}")
