"""Crash and resume: the job process is killed with SIGKILL at many points (between nodes,
mid-node and mid-stream) and resumed with `tandem resume`. Every time the job completes,
no completed step's model call is repeated, no commit is duplicated, and the worktree
equals the last checkpoint.

Kill points are chosen from the job's own event log: the run is killed as soon as its
N-th event is written (optionally after a short delay, to land inside a model stream or
a test run), for N spread over the whole job.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.cli.jobs import create_demo_repo
from orchestrator.demo import DEMO_TASK, DEMO_TEST_CMD
from tests.graph.conftest import write_policy

# (event index to kill at, delay after it in seconds)
KILL_POINTS = [(n, 0.0) for n in range(2, 60, 4)] + [(n, 0.03) for n in range(3, 60, 6)]


def _tandem(*args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "orchestrator", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _events(path: Path) -> list[dict]:
    if not path.exists():
        return []
    lines = path.read_text().splitlines(keepends=True)
    return [json.loads(line) for line in lines if line.endswith("\n")]


def _git(cwd: str, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout


def _run_and_kill(env: dict[str, str], args: list[str], home: Path, at: int,
                  delay_s: float) -> tuple[str | None, int]:
    """Start a job, kill -9 it after its ``at``-th event; returns (job id, events seen)."""
    proc = _tandem(*args, env=env)
    deadline = time.monotonic() + 60
    job_id = None
    count = 0
    while time.monotonic() < deadline and proc.poll() is None:
        logs = list((home / "jobs").glob("*/events.jsonl")) if (home / "jobs").exists() else []
        if logs:
            job_id = logs[0].parent.name
            count = len(_events(logs[0]))
            if count >= at:
                time.sleep(delay_s)
                proc.send_signal(signal.SIGKILL)
                break
        time.sleep(0.002)
    _, err = proc.communicate(timeout=30)
    if job_id is None:
        raise AssertionError(f"the job did not start (exit {proc.returncode}): {err.decode()}")
    return job_id, count


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_kill_minus_nine_anywhere_then_resume(tmp_path: Path, demo_sim) -> None:
    policy = write_policy(tmp_path / "policy.yaml", demo_sim.base_url)
    checked = 0
    completed_before_kill = 0
    for i, (at, delay_s) in enumerate(KILL_POINTS):
        home = tmp_path / f"home{i}"
        env = {**os.environ, "TANDEM_HOME": str(home)}
        repo = create_demo_repo(tmp_path / f"shop{i}")
        args = ["run", str(repo), DEMO_TASK, "--policy", str(policy), "--test", DEMO_TEST_CMD,
                "--json"]
        job_id, seen = _run_and_kill(env, args, home, at, delay_s)
        assert job_id is not None, f"kill point {at}: the job never started"
        log = home / "jobs" / job_id / "events.jsonl"
        before = _events(log)
        done_steps = {e["receipt"]["step"] for e in before if e["type"] == "receipt"
                      and e["receipt"]["phase"] == "checkpoint"}
        if any(e["type"] == "job.done" for e in before):
            completed_before_kill += 1
            continue
        resumed = subprocess.run([sys.executable, "-m", "orchestrator", "resume", job_id,
                                  "--json"], env=env, capture_output=True, text=True,
                                 timeout=120)
        assert resumed.returncode == 0, f"kill point {at}: resume failed: {resumed.stderr}"
        summary = json.loads(resumed.stdout)
        assert summary["status"] == "done", f"kill point {at}: {summary['status']}"
        after = _events(log)[len(before):]
        repeated = [e for e in after if e["type"] == "receipt"
                    and e["receipt"]["kind"] == "model_call"
                    and e["receipt"]["step"] in done_steps]
        assert not repeated, f"kill point {at}: completed steps {done_steps} called again"
        worktree = summary["worktree"]
        log_lines = _git(worktree, "log", "--format=%(trailers:key=Tandem-Step,valueonly)",
                         f"{summary['base_sha']}..HEAD").split()
        assert log_lines == ["3", "2", "1"], f"kill point {at}: step commits {log_lines}"
        assert _git(worktree, "status", "--porcelain") == ""
        assert _git(worktree, "rev-parse", "HEAD").strip() == summary["head_sha"]
        checked += 1
        print(f"kill point {at}+{delay_s}s after {seen} events: resumed, "
              f"{len(after)} events after the kill")
    assert checked >= 20, f"only {checked} kill points landed before the job ended"
    assert completed_before_kill < len(KILL_POINTS)
