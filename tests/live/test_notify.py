"""The pause notification: a webhook POST (to a real HTTP server on loopback) and a
command (a real script) with a scrubbed environment and a timeout; and a real job that
pauses firing it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from orchestrator.events import EventLog, read_events
from orchestrator.jobstore import JobRecord, new_job_id
from orchestrator.notify import notify_pause
from orchestrator.policy import Approvals
from orchestrator.runner import run_job
from orchestrator.sim.server import SimServer
from tests.fixtures_jobs import write_policy


class _Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []
    status = 204

    def do_POST(self) -> None:
        length = int(self.headers["content-length"])
        type(self).received.append(json.loads(self.rfile.read(length)))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, type[_Hook]]]:
    handler = type("Hook", (_Hook,), {"received": [], "status": 204})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook?token=s3cr3t", handler
    server.shutdown()
    server.server_close()


@pytest.fixture
def paused_job(tmp_path: Path) -> JobRecord:
    return JobRecord(job_id="job-p", repo=str(tmp_path), task="Add slugify", status="paused",
                     pause_reason="approval: touches shop/auth.py", branch="tandem/x")


def _events(log: EventLog) -> list[dict[str, Any]]:
    return [e for e in read_events(log.path) if e["type"].startswith("notify.")]


@pytest.fixture
def log(tmp_path: Path) -> Iterator[EventLog]:
    events = EventLog(tmp_path / "events.jsonl", "job-p")
    yield events
    events.close()


async def test_webhook_gets_the_pause(webhook: Any, paused_job: JobRecord, log: EventLog) -> None:
    url, handler = webhook
    await notify_pause(paused_job, Approvals(notify_webhook=url), log)
    [body] = handler.received
    assert body["job_id"] == "job-p" and body["reason"].startswith("approval")
    assert body["answer_with"].startswith("tandem approve job-p")
    [sent] = _events(log)
    assert sent["type"] == "notify.sent" and sent["status"] == 204
    assert "s3cr3t" not in log.path.read_text()  # the URL's token is never logged


async def test_webhook_error_status_is_recorded_not_raised(
    webhook: Any, paused_job: JobRecord, log: EventLog
) -> None:
    url, handler = webhook
    handler.status = 500
    await notify_pause(paused_job, Approvals(notify_webhook=url), log)
    [failed] = _events(log)
    assert failed["type"] == "notify.failed" and failed["status"] == 500


async def test_command_gets_payload_and_a_scrubbed_env(
    tmp_path: Path, paused_job: JobRecord, log: EventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-must-not-leak")
    script = tmp_path / "notify.sh"
    script.write_text('#!/bin/sh\ncat > "$1"\nenv > "$2"\n')
    script.chmod(0o755)
    out, env = tmp_path / "payload.json", tmp_path / "env.txt"
    await notify_pause(paused_job, Approvals(notify_command=f"{script} {out} {env}"), log)
    assert json.loads(out.read_text())["job_id"] == "job-p"
    seen_env = env.read_text()
    assert "TANDEM_JOB_ID=job-p" in seen_env and "TANDEM_PAUSE_REASON=approval" in seen_env
    assert "sk-must-not-leak" not in seen_env
    assert [e["type"] for e in _events(log)] == ["notify.sent"]


async def test_slow_or_missing_command_is_recorded(
    paused_job: JobRecord, log: EventLog
) -> None:
    await notify_pause(paused_job, Approvals(notify_command="sleep 30", notify_timeout_s=0.2), log)
    await notify_pause(paused_job, Approvals(notify_command="/no/such/notifier"), log)
    slow, missing = _events(log)
    assert slow["type"] == "notify.failed" and "longer than 0.2 s" in slow["error"]
    assert missing["type"] == "notify.failed" and "could not start" in missing["error"]


def test_a_pausing_job_fires_the_notification(
    tmp_path: Path, demo_repo: Path, demo_sim: SimServer
) -> None:
    marker = tmp_path / "paused.json"
    script = tmp_path / "notify.sh"
    script.write_text(f'#!/bin/sh\ncat > "{marker}"\n')
    script.chmod(0o755)
    policy = write_policy(tmp_path / "p.yaml", demo_sim.base_url,  # type: ignore[attr-defined]
                          budgets={"max_cost_usd": 0},
                          approvals={"notify_command": str(script)})
    job = JobRecord(job_id=new_job_id(), repo=str(demo_repo), task="Add slugify",
                    policy=str(policy))
    job.save()
    job = asyncio.run(run_job(job))
    assert job.status == "paused" and "budget" in (job.pause_reason or "")
    assert json.loads(marker.read_text())["reason"] == job.pause_reason


async def test_a_webhook_that_answers_byte_by_byte_is_cut_at_the_timeout(
    paused_job: JobRecord, log: EventLog
) -> None:
    """Each byte within httpx's read timeout kept the job's pause waiting, without end."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def drip() -> None:
        conn, _ = listener.accept()
        with conn, contextlib.suppress(OSError):  # the client hangs up at its timeout
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n")
            while not stop.wait(0.05):
                conn.sendall(b"x")

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    url = f"http://bot:hunter2hunter2@127.0.0.1:{port}/hook"
    try:
        await asyncio.wait_for(notify_pause(
            paused_job, Approvals(notify_webhook=url, notify_timeout_s=0.5), log), 3)
    finally:
        stop.set()
        thread.join()
        listener.close()
    [failed] = _events(log)
    assert failed["type"] == "notify.failed" and "0.5 s" in failed["error"]
    assert failed["host"] == f"127.0.0.1:{port}"
    assert "hunter2" not in log.path.read_text()  # the URL's credentials are never logged


async def test_a_command_that_leaves_a_process_behind_does_not_hold_the_job(
    paused_job: JobRecord, log: EventLog
) -> None:
    """A background child kept the command's stderr pipe open: the pause waited for it
    (a notifier's daemon: for ever), past the timeout too."""
    await asyncio.wait_for(notify_pause(
        paused_job, Approvals(notify_command="sh -c 'sleep 30 & exit 0'"), log), 3)
    await asyncio.wait_for(notify_pause(
        paused_job, Approvals(notify_command="sh -c 'sleep 30 & sleep 30'",
                              notify_timeout_s=0.3), log), 3)
    sent, slow = _events(log)
    assert sent["type"] == "notify.sent"
    assert slow["type"] == "notify.failed" and "longer than 0.3 s" in slow["error"]


async def test_bad_notify_settings_are_recorded_not_raised(
    paused_job: JobRecord, log: EventLog
) -> None:
    await notify_pause(paused_job, Approvals(notify_command="notify 'unclosed"), log)
    await notify_pause(paused_job, Approvals(notify_webhook="http://[::1/hook"), log)
    split, url = _events(log)
    assert split["type"] == "notify.failed" and "cannot be split" in split["error"]
    assert url["type"] == "notify.failed"
