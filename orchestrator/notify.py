"""Tell a human that a job paused: a webhook (JSON POST) and/or a local command.

Both are optional (policy ``approvals.notify_webhook`` / ``approvals.notify_command``).
A notification that fails is recorded as a ``notify.failed`` event and never fails the
job. The command runs without a shell, in a scrubbed environment (no API keys), with a
timeout; the webhook URL is never written to the log (it often embeds a token).
"""

from __future__ import annotations

import asyncio
import json
import shlex
from typing import Any
from urllib.parse import urlsplit

import httpx

from orchestrator.config import scrubbed_env
from orchestrator.events import EventLog
from orchestrator.jobstore import JobRecord
from orchestrator.policy import Approvals


def pause_payload(job: JobRecord) -> dict[str, Any]:
    """What a notification says: which job, why it waits, and how to answer."""
    waits_for_approval = (job.pause_reason or "").startswith("approval")
    answer = (f"tandem approve {job.job_id}  |  tandem reject {job.job_id} --reason ..."
              if waits_for_approval else f"tandem resume {job.job_id}")
    return {"event": "job.paused", "job_id": job.job_id, "task": job.task,
            "reason": job.pause_reason, "repo": job.repo, "branch": job.branch,
            "head_sha": job.head_sha, "answer_with": answer}


async def notify_pause(job: JobRecord, approvals: Approvals, events: EventLog) -> None:
    """Fire the configured notifications for a paused job."""
    if not (approvals.notify_webhook or approvals.notify_command):
        return
    payload = pause_payload(job)
    if approvals.notify_webhook:
        await _post(approvals.notify_webhook, payload, approvals.notify_timeout_s, events)
    if approvals.notify_command:
        await _run(approvals.notify_command, payload, approvals.notify_timeout_s, events)


async def _post(url: str, payload: dict[str, Any], timeout_s: float, events: EventLog) -> None:
    where = urlsplit(url).netloc
    try:
        async with httpx.AsyncClient(timeout=timeout_s) as client:
            response = await client.post(url, json=payload)
    except httpx.HTTPError as exc:
        events.emit("notify.failed", via="webhook", host=where,
                    error=f"{type(exc).__name__}: {exc}"[:300])
        return
    if response.is_success:
        events.emit("notify.sent", via="webhook", host=where, status=response.status_code)
    else:
        events.emit("notify.failed", via="webhook", host=where, status=response.status_code,
                    error=f"the webhook answered {response.status_code}")


async def _run(command: str, payload: dict[str, Any], timeout_s: float, events: EventLog) -> None:
    argv = shlex.split(command)
    if not argv:
        events.emit("notify.failed", via="command", error="approvals.notify_command is empty")
        return
    env = scrubbed_env({"TANDEM_JOB_ID": payload["job_id"],
                        "TANDEM_PAUSE_REASON": str(payload["reason"] or "")})
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, env=env)
    except OSError as exc:
        events.emit("notify.failed", via="command", command=argv[0],
                    error=f"could not start {argv[0]!r}: {exc.strerror or exc}")
        return
    try:
        _, err = await asyncio.wait_for(proc.communicate(json.dumps(payload).encode()),
                                        timeout_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        events.emit("notify.failed", via="command", command=argv[0],
                    error=f"{argv[0]!r} ran longer than {timeout_s:g} s and was stopped")
        return
    if proc.returncode == 0:
        events.emit("notify.sent", via="command", command=argv[0])
    else:
        events.emit("notify.failed", via="command", command=argv[0],
                    error=f"exit status {proc.returncode}: {err.decode(errors='replace')[-200:]}")
