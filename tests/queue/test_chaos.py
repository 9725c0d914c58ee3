"""Chaos: 3 worker processes, 30 graph jobs, a worker killed with SIGKILL every few
seconds and restarted. Every job must finish exactly once with every step committed
exactly once. Kill-to-resume times are printed (measured, not asserted)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis.asyncio as aredis

from orchestrator import keys
from orchestrator.queue import JobQueue

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from chaos_graph import STEPS  # noqa: E402

JOBS = 30
WORKERS = 3
KILL_EVERY_S = (2.0, 4.0)
MAX_KILLS = 6


def make_repo(path: Path) -> None:
    path.mkdir(parents=True)
    for args in (["init", "-q", "-b", "main"], ["config", "user.email", "t@example.com"],
                 ["config", "user.name", "T"], ["commit", "-q", "--allow-empty", "-m", "init"]):
        subprocess.run(["git", *args], cwd=path, check=True, capture_output=True)


def start_worker(redis_url: str, prefix: str, home: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(HERE), "TANDEM_HOME": str(home),
           "TANDEM_LOG_LEVEL": "ERROR"}
    code = "import sys; from orchestrator.cli import main; main(sys.argv[1:])"
    return subprocess.Popen(
        [sys.executable, "-c", code, "worker", "--concurrency", "3", "--heartbeat-s", "0.5",
         "--handler", "chaos_graph:handle", "--redis-url", redis_url, "--prefix", prefix],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


async def running_jobs_of(queue: JobQueue, pid: int) -> list[str]:
    out = []
    for job in await queue.list_jobs(limit=JOBS):
        if job["state"] == "running" and f"-{pid}-" in job.get("worker", ""):
            out.append(job["id"])
    return out


async def starts(queue: JobQueue, job_id: str) -> list[tuple[float, str]]:
    """(time, worker id) of each ``job.started`` of the job, in order."""
    stream = keys.job_events(queue.prefix, job_id)
    found = []
    for _, fields in await queue.client.xrange(stream):
        event = json.loads(fields[b"event"])
        if event["type"] == "job.started":
            found.append((float(event["ts"]), event["worker"]))
    return found


@pytest.mark.slow
@pytest.mark.timeout(150)
async def test_killed_workers_lose_nothing_and_repeat_nothing(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    client = aredis.Redis.from_url(redis_url)
    queue = JobQueue(client, prefix)
    repos = [tmp_path / f"repo{i}" for i in range(JOBS)]
    for repo in repos:
        make_repo(repo)
    ids = [await queue.submit({"repo": str(r), "task": "chaos"}) for r in repos]
    procs = [start_worker(redis_url, prefix, tmp_path / "home") for _ in range(WORKERS)]
    kills: list[tuple[float, int, str]] = []  # (time, victim's pid, job read as running)
    n_kills = 0
    rng = random.Random(7)
    deadline = time.monotonic() + 110
    next_kill = time.monotonic() + rng.uniform(*KILL_EVERY_S) + 2.0
    try:
        while time.monotonic() < deadline:
            states = [(await queue.status(j))["state"] for j in ids]
            if all(s in ("succeeded", "failed", "dead", "cancelled") for s in states):
                break
            if len(kills) < MAX_KILLS and time.monotonic() >= next_kill:
                victim = rng.randrange(WORKERS)
                running = await running_jobs_of(queue, procs[victim].pid)
                if running:
                    procs[victim].send_signal(signal.SIGKILL)
                    n_kills += 1
                    t_kill = time.time()
                    procs[victim].wait()
                    kills += [(t_kill, procs[victim].pid, j) for j in running]
                    procs[victim] = start_worker(redis_url, prefix, tmp_path / "home")
                next_kill = time.monotonic() + rng.uniform(*KILL_EVERY_S)
            await asyncio.sleep(0.2)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGKILL)
            proc.wait()

    statuses = [await queue.status(j) for j in ids]
    assert [s["state"] for s in statuses] == ["succeeded"] * JOBS, statuses
    assert all(s["completions"] == 1 for s in statuses)
    for job_id, repo in zip(ids, repos, strict=True):
        log = subprocess.run(["git", "log", "--format=%s"], cwd=repo, check=True,
                             capture_output=True, text=True).stdout.split("\n")
        wanted = [f"{job_id} step {n}" for n in range(STEPS, 0, -1)] + ["init"]
        assert [line for line in log if line] == wanted
    for status in statuses:
        assert status["result"]["steps"] == list(range(1, STEPS + 1))
    assert kills, "no worker was killed while running a job"
    # A job read as running on the victim just before the kill was interrupted by it
    # unless, in the moment between that read and the signal, it finished (jobs started
    # together on one worker finish together) or another worker took it over (the
    # victim had stalled past its lease). Every interrupted job must be started again.
    finished_ms = {j: s["finished_ms"] for j, s in zip(ids, statuses, strict=True)}
    waits, interrupted = [], 0
    for t_kill, pid, job_id in kills:
        started = await starts(queue, job_id)
        holder = [w for t, w in started if t < t_kill][-1:]
        if finished_ms[job_id] <= t_kill * 1000 or f"-{pid}-" not in "".join(holder):
            continue
        interrupted += 1
        after = [t - t_kill for t, _ in started if t > t_kill]
        assert after, f"job {job_id} was interrupted at {t_kill} and never resumed: {started}"
        waits.append(after[0])
    assert waits, f"no kill interrupted a running job: {kills}"
    print(f"\nchaos: {n_kills} SIGKILLs interrupted {interrupted} running jobs "
          f"({len(kills) - interrupted} more had just finished or moved); "
          f"kill-to-resume median {statistics.median(waits):.2f}s, max {max(waits):.2f}s; "
          f"restarts per job: {sum(s['attempts'] for s in statuses) - JOBS}")
    await client.aclose()
