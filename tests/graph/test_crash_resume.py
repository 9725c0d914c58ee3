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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from orchestrator.cli.jobs import create_demo_repo
from orchestrator.demo import DEMO_TASK, DEMO_TEST_CMD, TAPE_PATH
from orchestrator.sim import ModelProfile, SimConfig, SimServer
from tests.fixtures_jobs import DEEP, FAST, write_policy

# (event type to count, how many of them, delay after the last one in seconds):
# "*" counts every event (kills between and inside nodes); "model.start" with a delay
# lands inside a model stream (the profiles below make each stream last 40-200 ms).
KILL_POINTS = [("*", n, 0.0) for n in range(2, 58, 4)] + [
    ("model.start", k, 0.015) for k in range(1, 9)
]
# Under `fast-review` the auth step's fast draft gets a deep review (the 4th model call:
# plan, step 1, step 2's draft, the review): kills inside the review's stream, right
# after its answer (before or while the corrections are applied and gated again), and
# after the reviewed step's verification. "receipt:review" counts the review's receipts.
REVIEW_KILL_POINTS = [("model.start", 4, d) for d in (0.0, 0.015, 0.04)] + [
    ("receipt:review", 1, d) for d in (0.0, 0.004)] + [("verify", 2, 0.0)]


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


def _counts(kind: str, event: dict) -> bool:
    if kind.startswith("receipt:"):
        return event["type"] == "receipt" and event["receipt"]["phase"] == kind[8:]
    return kind in ("*", event["type"])


def _run_and_kill(env: dict[str, str], args: list[str], home: Path, kind: str, at: int,
                  delay_s: float) -> str:
    """Start a job, kill -9 it after its ``at``-th event of ``kind``; returns the job id."""
    proc = _tandem(*args, env=env)
    deadline = time.monotonic() + 60
    job_id = None
    while time.monotonic() < deadline and proc.poll() is None:
        logs = list((home / "jobs").glob("*/events.jsonl")) if (home / "jobs").exists() else []
        if logs:
            job_id = logs[0].parent.name
            events = _events(logs[0])
            if sum(1 for e in events if _counts(kind, e)) >= at:
                time.sleep(delay_s)
                proc.send_signal(signal.SIGKILL)
                break
        time.sleep(0.002)
    _, err = proc.communicate(timeout=30)
    if job_id is None:
        raise AssertionError(f"the job did not start (exit {proc.returncode}): {err.decode()}")
    return job_id


def _crash_and_resume(tmp_path: Path, i: int, point: tuple[str, int, float],
                      policy: Path) -> str:
    """One kill point; returns "completed", "between" or "mid-stream"."""
    kind, at, delay_s = point
    home = tmp_path / f"home{i}"
    env = {**os.environ, "TANDEM_HOME": str(home)}
    repo = create_demo_repo(tmp_path / f"shop{i}")
    args = ["run", str(repo), DEMO_TASK, "--policy", str(policy), "--test", DEMO_TEST_CMD,
            "--json"]
    job_id = _run_and_kill(env, args, home, kind, at, delay_s)
    log = home / "jobs" / job_id / "events.jsonl"
    before = _events(log)
    if any(e["type"] == "job.done" for e in before):
        return "completed"
    done_steps = {e["receipt"]["step"] for e in before if e["type"] == "receipt"
                  and e["receipt"]["phase"] == "checkpoint"}
    resumed = subprocess.run([sys.executable, "-m", "orchestrator", "resume", job_id, "--json"],
                             env=env, capture_output=True, text=True, timeout=120)
    where = f"kill point {point}"
    assert resumed.returncode == 0, f"{where}: resume failed: {resumed.stderr}"
    summary = json.loads(resumed.stdout)
    assert summary["status"] == "done", f"{where}: {summary['status']}"
    after = _events(log)[len(before):]
    repeated = [e for e in after if e["type"] == "receipt"
                and e["receipt"]["kind"] == "model_call" and e["receipt"]["step"] in done_steps]
    assert not repeated, f"{where}: completed steps {done_steps} called a model again"
    worktree = summary["worktree"]
    steps = _git(worktree, "log", "--format=%(trailers:key=Tandem-Step,valueonly)",
                 f"{summary['base_sha']}..HEAD").split()
    if steps != ["3", "2", "1"]:
        kinds = [e["type"] for e in after]
        raise AssertionError(f"{where}: step commits {steps}; events before the kill "
                             f"{[e['type'] for e in before][-6:]}; after {kinds}")
    assert _git(worktree, "status", "--porcelain") == "", f"{where}: worktree not clean"
    # the auth step ends as deep made it (a redo, or the review's corrections), crash or not
    assert "hmac.compare_digest" in _git(worktree, "show", "HEAD:shop/auth.py"), where
    assert "key_from_headers(headers)" in _git(worktree, "show", "HEAD:shop/api.py"), where
    assert _git(worktree, "rev-parse", "HEAD").strip() == summary["head_sha"]
    mid_stream = before[-1]["type"] == "model.start"
    return "mid-stream" if mid_stream else "between"


def _crash_at_each(tmp_path: Path, points: list[tuple[str, int, float]],
                   **policy: str) -> list[str]:
    """Every kill point on its own job (two at a time), on the demo tape; the outcomes."""
    profiles = [ModelProfile(name=FAST, ttft_ms=0, tokens_per_s=3000, jitter=0),
                ModelProfile(name=DEEP, ttft_ms=0, tokens_per_s=2000, jitter=0)]
    with SimServer(SimConfig(models=profiles, tape=TAPE_PATH)).run_in_thread() as sim:
        path = write_policy(tmp_path / "policy.yaml", sim.base_url, **policy)
        with ThreadPoolExecutor(max_workers=2) as pool:
            return list(pool.map(lambda ip: _crash_and_resume(tmp_path, ip[0], ip[1], path),
                                 enumerate(points)))


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_kill_minus_nine_anywhere_then_resume(tmp_path: Path) -> None:
    outcomes = _crash_at_each(tmp_path, KILL_POINTS)
    resumed = [o for o in outcomes if o != "completed"]
    print(f"kill points: {len(KILL_POINTS)}, resumed: {len(resumed)}, "
          f"mid-stream: {outcomes.count('mid-stream')}")
    assert len(resumed) >= 20
    assert outcomes.count("mid-stream") >= 5


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_kill_minus_nine_around_a_deep_review_then_resume(tmp_path: Path) -> None:
    outcomes = _crash_at_each(tmp_path, REVIEW_KILL_POINTS, extends="fast-review")
    print(f"review kill points: {len(REVIEW_KILL_POINTS)}, outcomes: {outcomes}")
    assert "completed" not in outcomes  # every kill landed before the job's end
    assert outcomes.count("mid-stream") >= 2
