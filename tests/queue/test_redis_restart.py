"""Redis restarted mid-job: the worker reconnects with backoff and the job finishes once;
an unreachable Redis is one clear CLI error naming the URL."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aredis

from orchestrator.cli import main
from orchestrator.errors import RedisUnavailable
from orchestrator.queue import JobContext, JobQueue, JobResult, Worker


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OwnRedis:
    """A redis-server of this test's own (AOF on), which it can stop and start again."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [str(shutil.which("redis-server")), "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.workdir), "--appendonly", "yes", "--appendfsync", "always",
             "--save", ""],
            stdout=subprocess.DEVNULL)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    if server.proc and server.proc.poll() is None:
        server.stop()


async def test_job_survives_a_redis_restart(own_redis: OwnRedis) -> None:
    runs: list[int] = []

    async def slow(ctx: JobContext) -> JobResult:
        runs.append(ctx.attempt)
        await asyncio.sleep(1.5)
        return JobResult(output={"attempt": ctx.attempt})

    client = aredis.Redis.from_url(own_redis.url)
    queue = JobQueue(client, "rr")
    worker = Worker(queue, slow, heartbeat_s=0.3)
    task = asyncio.create_task(worker.run())
    job_id = await queue.submit({"task": "x"})
    while not runs:
        await asyncio.sleep(0.05)
    own_redis.stop()
    await asyncio.sleep(1.0)  # the worker keeps retrying meanwhile
    own_redis.start()
    status: dict = {}
    for _ in range(300):
        with contextlib.suppress(RedisUnavailable):  # this client's stale connections
            status = await queue.status(job_id)
        if status.get("state") == "succeeded":
            break
        await asyncio.sleep(0.05)
    worker.stop()
    await asyncio.wait_for(task, 10)
    await client.aclose()
    assert status["state"] == "succeeded"
    assert status["completions"] == 1


def test_cli_names_the_unreachable_redis(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    with pytest.raises(SystemExit) as exit_info:
        main(["cancel", "somejob", "--redis-url", url])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"Redis is unreachable at redis://:***@127.0.0.1:{url.split(':')[-1]}" in err
    assert "hunter2" not in err and "Traceback" not in err
