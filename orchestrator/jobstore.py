"""Job records on disk: ``<home>/jobs/<job_id>/job.json`` (+ ``events.jsonl``).

The record is the job's identity card (repo, task, policy, worktree, status); the graph's
own progress lives in the LangGraph checkpointer and the code in git. Writes are atomic
(write to a temporary file, then rename), so a crash never leaves a torn record.
"""

from __future__ import annotations

import json
import os
import secrets as _random
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from orchestrator.config import get_settings
from orchestrator.errors import JobNotFound
from orchestrator.events import read_receipts
from orchestrator.receipts import Receipt

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
    """The job record, or JobNotFound naming where it looked."""
    path = job_dir(job_id) / "job.json"
    if not path.exists():
        root = jobs_root()
        matches = [p.parent.name for p in root.glob(f"{job_id}*/job.json")] if root.exists() else []
        if len(matches) == 1:
            path = job_dir(matches[0]) / "job.json"
        else:
            raise JobNotFound(f"no job {job_id!r} under {jobs_root()} (see `tandem jobs`)")
    return JobRecord(**json.loads(path.read_text(encoding="utf-8")))


def list_jobs() -> list[JobRecord]:
    root = jobs_root()
    if not root.exists():
        return []
    out = []
    for path in root.glob("*/job.json"):
        try:
            out.append(JobRecord(**json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError):
            continue
    return sorted(out, key=lambda j: j.created_ts, reverse=True)
