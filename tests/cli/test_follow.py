"""``tandem show JOB --follow``: the log holds every run of a job; the view follows the
run in progress and stops when no process runs the job."""

from __future__ import annotations

import json
import threading
import time

import pytest

from orchestrator.cli.progress import follow_events
from orchestrator.events import EventLog
from orchestrator.jobstore import JobRecord, job_lock, new_job_id


def _job(tmp_path_text: str = "t") -> JobRecord:
    job = JobRecord(job_id=new_job_id(), repo="/nonexistent", task=tmp_path_text,
                    policy="default")
    job.save()
    return job


def _types(out: str) -> list[str]:
    return [json.loads(line)["type"] for line in out.splitlines() if line.strip()]


def test_a_resumed_job_is_shown_to_its_last_run(capsys: pytest.CaptureFixture[str]) -> None:
    job = _job()
    log = EventLog(job.events_path, job.job_id)
    for kind in ("job.start", "job.paused", "job.resume", "step.start", "job.done"):
        log.emit(kind)
    log.close()
    started = time.monotonic()
    follow_events(job, json_out=True, poll_s=0.01)
    assert _types(capsys.readouterr().out)[-3:] == ["job.resume", "step.start", "job.done"]
    assert time.monotonic() - started < 1.0  # it ended with an end event: no grace wait


def test_a_run_in_progress_is_followed_past_the_last_runs_end(
    capsys: pytest.CaptureFixture[str]
) -> None:
    """The job paused; a resume runs now (it holds the job's run lock): the view goes on
    past the old ``job.paused`` until that run ends."""
    job = _job()
    log = EventLog(job.events_path, job.job_id)
    log.emit("job.start")
    log.emit("job.paused")
    locked, done = threading.Event(), threading.Event()

    def resume() -> None:
        with job_lock(job):
            locked.set()
            time.sleep(0.3)
            log.emit("job.resume")
            time.sleep(0.2)
            log.emit("job.done")
        done.set()

    runner = threading.Thread(target=resume)
    runner.start()
    locked.wait(5)
    follow_events(job, json_out=True, poll_s=0.02)
    runner.join(5)
    assert done.is_set()
    log.close()
    assert _types(capsys.readouterr().out) == ["job.start", "job.paused", "job.resume",
                                               "job.done"]


def test_a_killed_run_does_not_hold_the_view(capsys: pytest.CaptureFixture[str]) -> None:
    """No end event (the process was killed) and no process: the view stops after its
    grace period instead of waiting for ever."""
    job = _job()
    log = EventLog(job.events_path, job.job_id)
    log.emit("job.start")
    log.close()
    started = time.monotonic()
    follow_events(job, json_out=True, poll_s=0.01, grace_s=0.2)
    assert _types(capsys.readouterr().out) == ["job.start"]
    assert 0.2 <= time.monotonic() - started < 2.0
