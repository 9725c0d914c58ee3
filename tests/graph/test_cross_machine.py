"""A job started on one machine and finished on another: the graph state in a real Redis,
the checkpoints pushed to a shared bare repository under refs/tandem/jobs/<job>. The two
"machines" are two clones of that repository with two Tandem homes; the simulator plays
the demo's tape.

Also: a push that fails (no such remote, a remote that rejects it) is recorded and the job
still completes locally; the next successful push carries the commits."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli.jobs import create_demo_repo
from orchestrator.config import reset_settings
from orchestrator.demo import DEMO_TASK, DEMO_TEST_CMD
from orchestrator.errors import PolicyError
from orchestrator.jobstore import JobRecord, new_job_id
from orchestrator.policy import load_policy
from orchestrator.runner import run_job
from orchestrator.sim.server import ThreadedSim
from orchestrator.workspace.remote import job_ref
from tests.fixtures_jobs import write_policy


def _git(cwd: str | Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout


def _events(job: JobRecord, type_: str) -> list[dict[str, Any]]:
    lines = job.events_path.read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["type"] == type_]


def _model_calls(job: JobRecord) -> list[tuple[str, int | None]]:
    return [(r.phase, r.step) for r in job.receipts if r.kind == "model_call"]


def _steps_on_branch(repo: Path, job: JobRecord) -> list[str]:
    """The Tandem-Step trailer of every commit on the job branch since its base, oldest
    first ("" for a commit without one)."""
    out = _git(repo, "log", "--reverse", "--format=%(trailers:key=Tandem-Step,valueonly)%x1e",
               f"{job.base_sha}..{job.branch}")
    return [record.strip() for record in out.split("\x1e")[:-1]]


def _use_home(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    monkeypatch.setenv("TANDEM_HOME", str(home))
    reset_settings()


def _job(repo: Path, policy: Path, job_id: str | None = None, **fields: Any) -> JobRecord:
    job = JobRecord(job_id=job_id or new_job_id(), repo=str(repo), task=DEMO_TASK,
                    policy=str(policy), test_cmd=DEMO_TEST_CMD, **fields)
    job.save()
    return job


@pytest.fixture
def shared(tmp_path: Path) -> Path:
    """The shared remote: a bare repository holding the demo repository."""
    template = create_demo_repo(tmp_path / "template")
    _git(tmp_path, "clone", "-q", "--bare", str(template), str(tmp_path / "shared.git"))
    return tmp_path / "shared.git"


def _clone(shared: Path, target: Path) -> Path:
    _git(shared.parent, "clone", "-q", str(shared), str(target))
    return target


def test_job_paused_on_a_resumes_on_b(tmp_path: Path, shared: Path, demo_sim: ThreadedSim,
                                      redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TANDEM_REDIS_URL", redis_url)
    clone_a, clone_b = _clone(shared, tmp_path / "a"), _clone(shared, tmp_path / "b")
    # plan + step 1 of the demo tape cost about $0.0076: the job pauses during step 2
    policy = write_policy(tmp_path / "p.yaml", demo_sim.base_url,
                          budgets={"max_cost_usd": 0.008}, checkpoint={"push_refs": True})

    _use_home(monkeypatch, tmp_path / "home-a")
    job_a = asyncio.run(run_job(_job(clone_a, policy)))
    assert job_a.status == "paused" and "budget" in (job_a.pause_reason or "")
    done_on_a = [s["step"] for s in job_a.steps]
    assert done_on_a and len(done_on_a) < 3, done_on_a
    assert _git(shared, "rev-parse", job_ref(job_a.job_id)).strip() == job_a.head_sha
    calls_a = _model_calls(job_a)

    # meanwhile B's main moved on: the job still resumes on the base it started from
    (clone_b / "NOTES.md").write_text("later work\n")
    _git(clone_b, "add", "NOTES.md")
    _git(clone_b, "-c", "user.name=Dev", "-c", "user.email=dev@example.com", "commit", "-q",
         "-m", "later work")
    _use_home(monkeypatch, tmp_path / "home-b")
    job_b = _job(clone_b, policy, job_id=job_a.job_id, overrides=["budgets.max_cost_usd=10"])
    job_b = asyncio.run(run_job(job_b, resume_value={"note": None}))
    assert job_b.status == "done", job_b.error
    assert Path(job_b.worktree or "").is_relative_to(tmp_path / "home-b")
    assert job_b.base_sha == job_a.base_sha
    assert _steps_on_branch(clone_b, job_b) == ["1", "2", "3"]
    assert not (Path(job_b.worktree or "") / "NOTES.md").exists()
    assert [s["step"] for s in job_b.steps] == [1, 2, 3]
    # the steps finished on A were not redone on B: no plan call, no call for those steps
    calls_b = _model_calls(job_b)
    assert "plan" not in [phase for phase, _ in calls_b]
    assert not [c for c in calls_b if c[1] in done_on_a], calls_b
    assert any(p == "edit" for p, _ in calls_a) and any(p == "edit" for p, _ in calls_b)
    assert [e["sha"] for e in _events(job_b, "checkpoint.fetched")] == [job_a.head_sha]
    # the shared remote holds the final checkpoint, and B's branch ends there
    final = _git(clone_b, "rev-parse", job_b.branch or "").strip()
    assert final == job_b.head_sha
    assert _git(shared, "rev-parse", job_ref(job_b.job_id)).strip() == final


def test_push_to_missing_remote_is_recorded_and_job_completes(
    tmp_path: Path, shared: Path, demo_sim: ThreadedSim
) -> None:
    clone = _clone(shared, tmp_path / "a")
    policy = write_policy(tmp_path / "p.yaml", demo_sim.base_url,
                          checkpoint={"push_refs": True, "push_remote": "nosuchremote"})
    job = asyncio.run(run_job(_job(clone, policy)))
    assert job.status == "done", job.error
    assert _steps_on_branch(clone, job) == ["1", "2", "3"]
    failed = _events(job, "checkpoint.push_failed")
    # one per step, then the retry at the end of the run
    assert [e["step"] for e in failed] == [1, 2, 3, None]
    assert all("nosuchremote" in e["error"] and e["remote"] == "nosuchremote" for e in failed)
    assert not _events(job, "checkpoint.pushed")


def _reject_push_number(shared: Path, n: int) -> None:
    """A pre-receive hook on the shared remote that rejects its ``n``-th push only."""
    hook = shared / "hooks" / "pre-receive"
    hook.write_text(
        "#!/bin/sh\n"
        "cat >/dev/null\n"
        "count=$(( $(cat pushes 2>/dev/null || echo 0) + 1 ))\n"
        "echo $count > pushes\n"
        f"if [ $count -eq {n} ]; then echo 'checkpoint refs are frozen' >&2; exit 1; fi\n"
    )
    hook.chmod(0o755)


@pytest.mark.parametrize("rejected", [1, 3])
def test_rejected_push_is_carried_by_the_next(tmp_path: Path, shared: Path,
                                              demo_sim: ThreadedSim, rejected: int) -> None:
    """Push 1 rejected: step 2's push carries it. Push 3 (the last step) rejected: the
    retry at the end of the run carries it."""
    _reject_push_number(shared, rejected)
    clone = _clone(shared, tmp_path / "a")
    policy = write_policy(tmp_path / "p.yaml", demo_sim.base_url,
                          checkpoint={"push_refs": True})
    job = asyncio.run(run_job(_job(clone, policy)))
    assert job.status == "done", job.error
    [failed] = _events(job, "checkpoint.push_failed")
    assert failed["step"] == rejected and "checkpoint refs are frozen" in failed["error"]
    pushed = [e["step"] for e in _events(job, "checkpoint.pushed")]
    assert pushed == ([2, 3] if rejected == 1 else [1, 2, None])
    assert _git(shared, "rev-parse", job_ref(job.job_id)).strip() == job.head_sha
    remote_log = _git(shared, "log", "--format=%(trailers:key=Tandem-Step,valueonly)",
                      job_ref(job.job_id), "--not", "main")
    assert [s for s in remote_log.splitlines() if s] == ["3", "2", "1"]


def test_policy_refuses_a_url_as_push_remote(tmp_path: Path) -> None:
    path = write_policy(tmp_path / "p.yaml", "sim://",
                        checkpoint={"push_refs": True,
                                    "push_remote": "https://user:tok@example.com/x.git"})
    with pytest.raises(PolicyError, match=r"p\.yaml:\d+: checkpoint\.push_remote"):
        load_policy(str(path))
    assert load_policy(str(path), overrides=["checkpoint.push_remote=shared"]).checkpoint \
        .push_remote == "shared"
