"""``tandem bench queue``: the Redis job queue and checkpoint saver, side by side.

- enqueue-to-start latency (submit -> a worker's ``started_ms``), median and p99;
- dispatch throughput of no-op jobs with 1 and 4 workers (in one process);
- checkpoint put / get-latest median: our AsyncRedisSaver against AsyncSqliteSaver.

Without ``--redis-url`` a throw-away ``redis-server`` (AOF on, fsync every second) is
started on a free loopback port.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from orchestrator.cli import emit_json
from orchestrator.cli.queue import redis_url_callback
from orchestrator.errors import ConfigError
from orchestrator.queue import JobContext, JobQueue, JobResult, Worker
from orchestrator.store.connection import async_client


async def noop(ctx: JobContext) -> JobResult:
    return JobResult()


@contextlib.contextmanager
def throwaway_redis() -> Iterator[str]:
    exe = shutil.which("redis-server")
    if exe is None:
        raise ConfigError("redis-server is not installed: install it or pass --redis-url")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="tandem-bench-redis-") as tmp:
        proc = subprocess.Popen(
            [exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", tmp, "--save", "",
             "--appendonly", "yes", "--appendfsync", "everysec"], stdout=subprocess.DEVNULL)
        try:
            for _ in range(200):
                with contextlib.suppress(OSError):
                    socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                    break
                time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run_workers(queue: JobQueue, n: int) -> tuple[list[Worker], list[asyncio.Task[None]]]:
    workers = [Worker(queue, noop, concurrency=4, heartbeat_s=2.0) for _ in range(n)]
    return workers, [asyncio.create_task(w.run()) for w in workers]


async def stop(workers: list[Worker], tasks: list[asyncio.Task[None]]) -> None:
    for w in workers:
        w.stop()
    await asyncio.gather(*tasks)


async def wait_done(queue: JobQueue, ids: list[str]) -> list[dict[str, Any]]:
    while True:
        rows = [await queue.status(j) for j in ids[-1:]]
        if rows[0]["state"] == "succeeded":
            rows = [await queue.status(j) for j in ids]
            if all(r["state"] == "succeeded" for r in rows):
                return rows
        await asyncio.sleep(0.01)


async def latency(url: str, jobs: int) -> dict[str, float]:
    queue = JobQueue(async_client(url), f"bench{uuid.uuid4().hex[:6]}")
    await queue.ensure_group()
    workers, tasks = await run_workers(queue, 1)
    await asyncio.sleep(0.3)
    ids = []
    for _ in range(jobs):
        ids.append(await queue.submit({"task": "noop"}))
        await asyncio.sleep(0.005)
    rows = await wait_done(queue, ids)
    await stop(workers, tasks)
    waits = [float(r["started_ms"] - r["created_ms"]) for r in rows]
    return {"median_ms": statistics.median(waits), "p99_ms": pct(waits, 0.99)}


async def throughput(url: str, jobs: int, n_workers: int) -> float:
    queue = JobQueue(async_client(url), f"bench{uuid.uuid4().hex[:6]}")
    ids = [await queue.submit({"task": "noop"}) for _ in range(jobs)]
    t0 = time.perf_counter()
    workers, tasks = await run_workers(queue, n_workers)
    await wait_done(queue, ids)
    elapsed_s = time.perf_counter() - t0
    await stop(workers, tasks)
    return jobs / elapsed_s


async def saver_times(saver: Any, n: int) -> dict[str, float]:
    from langgraph.checkpoint.base import empty_checkpoint

    thread = {"configurable": {"thread_id": f"b{uuid.uuid4().hex[:6]}", "checkpoint_ns": ""}}
    puts, gets = [], []
    version: Any = None
    for i in range(n):
        cp = empty_checkpoint()
        version = saver.get_next_version(version, None)
        cp["channel_values"] = {"messages": ["x" * 200] * 4, "step": i}
        cp["channel_versions"] = {"messages": version, "step": version}
        t0 = time.perf_counter()
        thread = await saver.aput(thread, cp, {"step": i, "source": "loop"},
                                  cp["channel_versions"])
        puts.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        await saver.aget_tuple({"configurable": {**thread["configurable"], "checkpoint_id": None}})
        gets.append((time.perf_counter() - t0) * 1000)
    return {"put_median_ms": statistics.median(puts), "get_median_ms": statistics.median(gets)}


async def savers(url: str, n: int) -> dict[str, Any]:
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    from orchestrator.store.redis_saver import AsyncRedisSaver

    redis_saver = AsyncRedisSaver(async_client(url), prefix=f"bench{uuid.uuid4().hex[:6]}")
    with tempfile.TemporaryDirectory() as tmp:
        async with AsyncSqliteSaver.from_conn_string(str(Path(tmp) / "s.db")) as sqlite:
            ours = await saver_times(redis_saver, n)
            theirs = await saver_times(sqlite, n)
    return {"redis": ours, "sqlite": theirs,
            "put_ratio_redis_over_sqlite": ours["put_median_ms"] / theirs["put_median_ms"],
            "get_ratio_redis_over_sqlite": ours["get_median_ms"] / theirs["get_median_ms"]}


async def measure(url: str, jobs: int, checkpoints: int) -> dict[str, Any]:
    one = await throughput(url, jobs, 1)
    four = await throughput(url, jobs, 4)
    return {
        "enqueue_to_start": await latency(url, min(jobs, 200)),
        "dispatch_jobs_per_s": {"workers_1": one, "workers_4": four, "ratio_4_over_1": four / one},
        "saver": await savers(url, checkpoints),
        "jobs": jobs,
        "checkpoints": checkpoints,
    }


@click.command()
@click.option("--redis-url", callback=redis_url_callback,
              help="Redis to measure (default: a throw-away local redis-server).")
@click.option("--jobs", default=500, show_default=True, type=click.IntRange(1),
              help="No-op jobs per throughput run.")
@click.option("--checkpoints", default=300, show_default=True, type=click.IntRange(1),
              help="Checkpoints per saver.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def cli(redis_url: str | None, jobs: int, checkpoints: int, as_json: bool) -> None:
    """Queue latency and throughput, and Redis vs SQLite saver timings, in one run."""
    with contextlib.ExitStack() as stack:
        url = redis_url or stack.enter_context(throwaway_redis())
        result = asyncio.run(measure(url, jobs, checkpoints))
    if as_json:
        emit_json(result)
        return
    e, d, s = result["enqueue_to_start"], result["dispatch_jobs_per_s"], result["saver"]
    click.echo(f"enqueue->start   median {e['median_ms']:.1f} ms, p99 {e['p99_ms']:.1f} ms")
    click.echo(f"dispatch         1 worker {d['workers_1']:.0f}/s, 4 workers "
               f"{d['workers_4']:.0f}/s")
    click.echo(f"saver put/get    redis {s['redis']['put_median_ms']:.2f}/"
               f"{s['redis']['get_median_ms']:.2f} ms, sqlite {s['sqlite']['put_median_ms']:.2f}/"
               f"{s['sqlite']['get_median_ms']:.2f} ms")
