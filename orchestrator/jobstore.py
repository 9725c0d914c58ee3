"""Job records on disk: ``<home>/jobs/<job_id>/job.json`` (+ ``events.jsonl``).

The record is the job's identity card (repo, task, policy, worktree, status); the graph's
own progress lives in the LangGraph checkpointer and the code in git. Writes are atomic
(write to a temporary file, then rename), so a crash never leaves a torn record.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets as _random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from orchestrator.config import get_settings
from orchestrator.errors import JobBusy, JobError, JobNotFound
from orchestrator.events import read_receipts
from orchestrator.receipts import Receipt

# What ``new_job_id`` makes (and queue job ids): no path separators, no glob characters,
# no leading dot, so an id from the command line can only name a directory under the jobs
# root.
_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

Status = Literal["queued", "running", "paused", "done", "failed", "cancelled"]


class JobRecord(BaseModel):
    job_id: str
    repo: str
    task: str
    policy: str | None = None
    overrides: list[str] = Field(default_factory=list)
    base_ref: str = "HEAD"
    test_cmd: str | None = None
    pr: str = "bundle"
    forge: dict[str, Any] = Field(
        default_factory=dict, description="ForgeConfig fields: repo, remote, api_url, ..."
    )
    tape: str | None = Field(default=None, description="simulator tape (demo and tests)")
    resume_checkpoint_id: str | None = Field(
        default=None, description="graph checkpoint to resume from (set by rollback)"
    )
    status: Status = "queued"
    pause_reason: str | None = None
    error: str | None = None
    worktree: str | None = None
    branch: str | None = None
    base_sha: str | None = None
    head_sha: str | None = None
    plan: list[str] = Field(default_factory=list)
    steps: list[dict[str, Any]] = Field(default_factory=list)
    budget: dict[str, Any] = Field(default_factory=dict)
    pr_result: dict[str, Any] | None = None
    created_ts: float = Field(default_factory=time.time)
    updated_ts: float = Field(default_factory=time.time)

    @property
    def dir(self) -> Path:
        return job_dir(self.job_id)

    @property
    def events_path(self) -> Path:
        return self.dir / "events.jsonl"

    @property
    def receipts(self) -> list[Receipt]:
        return read_receipts(self.events_path)

    def save(self) -> None:
        self.updated_ts = time.time()
        path = self.dir / "job.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self.model_dump_json(indent=2), encoding="utf-8")
        os.replace(tmp, path)


def new_job_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S-") + _random.token_hex(3)


def jobs_root() -> Path:
    return get_settings().jobs_dir


def job_dir(job_id: str) -> Path:
    return jobs_root() / job_id


def load_job(job_id: str) -> JobRecord:
    """The job record (``job_id`` may be a unique prefix), or JobNotFound naming where it
    looked. An id that is not one (``../x``, ``a/b``, ``*``) names no job: it never reaches
    a path outside the jobs root."""
    if not _JOB_ID.fullmatch(job_id):
        raise JobNotFound(f"{job_id!r} is not a job id (letters, digits, '.', '_' and '-'; "
                          "see `tandem jobs`)")
    path = job_dir(job_id) / "job.json"
    if not path.exists():
        root = jobs_root()
        matches = sorted(p.parent.name for p in root.glob(f"{job_id}*/job.json")) \
            if root.exists() else []
        if len(matches) > 1:
            shown = ", ".join(matches[:5]) + (", ..." if len(matches) > 5 else "")
            raise JobNotFound(f"{job_id!r} matches {len(matches)} jobs ({shown}): give more of "
                              "the id")
        if not matches:
            raise JobNotFound(f"no job {job_id!r} under {jobs_root()} (see `tandem jobs`)")
        path = job_dir(matches[0]) / "job.json"
    return _read_record(path)


# What reading a record that is not one raises (torn by a full disk, edited by hand: not
# JSON, not an object, fields of the wrong type).
_RECORD_ERRORS = (OSError, ValueError, TypeError)


def _parse_record(path: Path) -> JobRecord:
    return JobRecord(**json.loads(path.read_text(encoding="utf-8")))


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"


def _read_record(path: Path) -> JobRecord:
    """The record in ``path``; a file that is not one is a JobError naming it, not a
    traceback."""
    try:
        return _parse_record(path)
    except _RECORD_ERRORS as exc:
        raise JobError(f"job record {path} is unreadable ({_describe(exc)}): restore it from "
                       "a backup, or remove its directory to forget the job") from None


def lock_job(job: JobRecord) -> int:
    """Hold the job for this process while it runs; returns the lock's descriptor (for
    ``unlock_job``). A second ``tandem resume`` (or rollback) of a job that is running here
    raises ``JobBusy`` instead of working the same worktree. The lock is the kernel's
    (``flock``), so it ends with the process, however that ends."""
    job.dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(job.dir / "run.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise JobBusy(f"job {job.job_id} is running in another process (pid {holder}): wait "
                      f"for it (`tandem show {job.job_id} --follow`) or stop it first") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


def unlock_job(fd: int) -> None:
    os.close(fd)  # releases the lock


@contextlib.contextmanager
def job_lock(job: JobRecord) -> Iterator[None]:
    fd = lock_job(job)
    try:
        yield
    finally:
        unlock_job(fd)


def running_pid(job: JobRecord) -> int | None:
    """The pid of the process running the job on this machine, if one is."""
    try:
        fd = os.open(job.dir / "run.lock", os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        return int(text) if text.isdigit() else -1
    finally:
        os.close(fd)
    return None


def list_jobs(skipped: list[tuple[Path, str]] | None = None) -> list[JobRecord]:
    """Every job of this machine, newest first. A record that cannot be read (damaged,
    unreadable) is left out of the list and, when ``skipped`` is given, added to it with
    the reason, so the listing can say so instead of a job silently vanishing."""
    root = jobs_root()
    if not root.exists():
        return []
    out = []
    for path in root.glob("*/job.json"):
        try:
            out.append(_parse_record(path))
        except _RECORD_ERRORS as exc:
            if skipped is not None:
                skipped.append((path, _describe(exc)))
    return sorted(out, key=lambda j: j.created_ts, reverse=True)
