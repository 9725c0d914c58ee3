"""A first run killed with SIGKILL before it ends: the job record already names the
worktree, the branch, the base and the steps checkpointed, so `show`, `rollback` and
`resume` work on it. The real `tandem` process, the demo's scripted answers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.demo import DEMO_TASK, DEMO_TEST_CMD
from orchestrator.jobstore import jobs_root, load_job
from orchestrator.sim.server import ThreadedSim
from tests.fixtures_jobs import write_policy


def _tandem(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], env=dict(os.environ),
                          capture_output=True, text=True, timeout=120)


def _git(cwd: str, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


def _started_step(log: Path, step: int) -> bool:
    lines = log.read_text().splitlines(keepends=True) if log.exists() else []
    return any(e["type"] == "step.start" and e.get("step") == step
               for e in (json.loads(line) for line in lines if line.endswith("\n")))


def _run_killed_at(step: int, args: list[str]) -> str:
    """Start a job; kill -9 it once ``step`` starts (the steps before it are checkpointed);
    the job id."""
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", *args],
                            env=dict(os.environ), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        logs = list(jobs_root().glob("*/events.jsonl")) if jobs_root().exists() else []
        if logs and _started_step(logs[0], step):
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=30)
            return logs[0].parent.name
        time.sleep(0.002)
    proc.kill()
    _, err = proc.communicate(timeout=30)
    raise AssertionError(f"the job never reached step {step} (exit {proc.returncode}): "
                         f"{err.decode()}")


@pytest.mark.parametrize("killed_in", [1, 2])
def test_a_killed_first_run_can_be_shown_rolled_back_and_resumed(
    tmp_path: Path, demo_repo: Path, demo_sim: ThreadedSim, killed_in: int
) -> None:
    policy = write_policy(tmp_path / "p.yaml", demo_sim.base_url)
    job_id = _run_killed_at(killed_in, ["run", str(demo_repo), DEMO_TASK, "-p", str(policy),
                                        "--test", DEMO_TEST_CMD, "--json"])
    job = load_job(job_id)
    assert job.worktree and job.branch and job.base_sha
    done = killed_in - 1  # the steps checkpointed before the kill
    assert [s["step"] for s in job.steps][:done] == list(range(1, done + 1))
    target = job.steps[done - 1]["checkpoint_sha"] if done else job.base_sha
    shown = json.loads(_tandem("show", job_id, "--json").stdout)
    assert (shown["worktree"], shown["branch"]) == (job.worktree, job.branch)

    out = _tandem("rollback", job_id, "--to", str(done))
    assert out.returncode == 0, out.stderr
    assert _git(job.worktree, "rev-parse", "HEAD") == target
    resumed = _tandem("resume", job_id, "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["status"] == "done"
    steps = _git(job.worktree, "log", "--format=%(trailers:key=Tandem-Step,valueonly)",
                 f"{job.base_sha}..HEAD").split()
    assert steps == ["3", "2", "1"]
    assert _git(job.worktree, "rev-parse", f"HEAD~{3 - done}") == target
