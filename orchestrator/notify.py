"""Tell a human that a job paused: a webhook (JSON POST) and/or a local command.

Both are optional (policy ``approvals.notify_webhook`` / ``approvals.notify_command``).
A notification that fails is recorded as a ``notify.failed`` event and never fails the
job. Each has ``approvals.notify_timeout_s`` in all (a webhook that answers slowly, byte
by byte, included). The command runs without a shell, in a scrubbed environment (no API
keys), in its own process group, killed whole at the timeout; what it leaves running in
the background does not hold the job. The webhook URL is never written to the log (it
often embeds a token): only its host and port.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import signal
import tempfile
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


def _host(url: str) -> str:
    """Where a webhook goes, for the log: host and port, never credentials or path."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "?", parts.port
    except ValueError:
        return "?"
    return f"{host}:{port}" if port else host


async def _post(url: str, payload: dict[str, Any], timeout_s: float, events: EventLog) -> None:
    where = _host(url)
    try:
        async with asyncio.timeout(timeout_s), httpx.AsyncClient(timeout=timeout_s) as client:
            response = await client.post(url, json=payload)
    except TimeoutError:
        events.emit("notify.failed", via="webhook", host=where,
                    error=f"no complete answer within {timeout_s:g} s")
        return
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
        error = f"{type(exc).__name__}: {exc}".replace(url, "<webhook>")
        events.emit("notify.failed", via="webhook", host=where, error=error[:300])
        return
    if response.is_success:
        events.emit("notify.sent", via="webhook", host=where, status=response.status_code)
    else:
        events.emit("notify.failed", via="webhook", host=where, status=response.status_code,
                    error=f"the webhook answered {response.status_code}")


async def _run(command: str, payload: dict[str, Any], timeout_s: float, events: EventLog) -> None:
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        events.emit("notify.failed", via="command",
                    error=f"approvals.notify_command cannot be split: {exc}")
        return
    if not argv:
        events.emit("notify.failed", via="command", error="approvals.notify_command is empty")
        return
    env = scrubbed_env({"TANDEM_JOB_ID": payload["job_id"],
                        "TANDEM_PAUSE_REASON": str(payload["reason"] or "")})
    # stderr goes to a file, not a pipe: a process the command leaves in the background
    # would hold a pipe open, and the job with it, for as long as it runs.
    with tempfile.TemporaryFile() as err_file:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
                stderr=err_file, env=env, start_new_session=True)
        except OSError as exc:
            events.emit("notify.failed", via="command", command=argv[0],
                        error=f"could not start {argv[0]!r}: {exc.strerror or exc}")
            return
        try:
            async with asyncio.timeout(timeout_s):
                await proc.communicate(json.dumps(payload).encode())
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the command and what it started
            await proc.wait()
            events.emit("notify.failed", via="command", command=argv[0],
                        error=f"{argv[0]!r} ran longer than {timeout_s:g} s and was stopped")
            return
        err_file.seek(max(0, err_file.seek(0, os.SEEK_END) - 200))
        err = err_file.read()
    if proc.returncode == 0:
        events.emit("notify.sent", via="command", command=argv[0])
    else:
        events.emit("notify.failed", via="command", command=argv[0],
                    error=f"exit status {proc.returncode}: {err.decode(errors='replace')}")
