"""The steering channel: the job's control socket (real Unix socket), its answers, and
the Redis pub/sub route for jobs on workers (real redis-server)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator import control
from orchestrator.config import get_settings, use_settings
from orchestrator.errors import ConfigError, JobNotRunning
from orchestrator.events import EventLog


@pytest.fixture
def events(tmp_path: Path) -> Iterator[EventLog]:
    log = EventLog(tmp_path / "events.jsonl", "job-1")
    yield log
    log.close()


async def _send(job_id: str, message: str) -> dict[str, str]:
    return await asyncio.to_thread(control.send_steer, job_id, message)


async def test_steer_is_queued_when_nothing_streams(events: EventLog) -> None:
    inbox = control.SteerInbox()
    async with control.serve("job-1", inbox, events) as path:
        assert path.exists() and path.stat().st_mode & 0o777 == 0o600
        ack = await _send("job-1", "  use tabs  ")
    assert ack["status"] == control.QUEUED and "next model call" in ack["detail"]
    assert [s.message for s in inbox.take_pending()] == ["use tabs"]
    assert not path.exists()  # removed when the job ends
    logged = [json.loads(line) for line in events.path.read_text().splitlines()]
    assert [(e["type"], e.get("status")) for e in logged] == [
        ("steer.received", "queued"), ("steer.unused", None)]  # no model call took it


async def test_steer_reaches_the_in_flight_hook_at_once(events: EventLog) -> None:
    inbox = control.SteerInbox()
    got: list[control.Steer] = []
    inbox.attach(lambda steer: got.append(steer) or control.DELIVERED)
    async with control.serve("job-1", inbox, events):
        ack = await _send("job-1", "stop")
    assert ack["status"] == control.DELIVERED
    assert [s.message for s in got] == ["stop"] and not inbox.pending


async def test_bad_requests_get_an_error_answer(events: EventLog) -> None:
    async with control.serve("job-1", control.SteerInbox(), events) as path:
        def raw(line: bytes) -> dict[str, str]:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.connect(str(path))
                sock.sendall(line)
                return dict(json.loads(sock.makefile("rb").readline()))

        assert (await asyncio.to_thread(raw, b"not json\n"))["status"] == "error"
        assert (await asyncio.to_thread(raw, b'{"message": ""}\n'))["status"] == "error"


def test_no_job_process_is_a_clear_error() -> None:
    with pytest.raises(JobNotRunning, match="job nope is not running on this machine"):
        control.send_steer("nope", "hello")
    with pytest.raises(ConfigError, match="empty"):
        control.send_steer("nope", "   ")


def test_stale_socket_file_means_not_running() -> None:
    path = control.control_path("crashed")
    path.parent.mkdir(parents=True)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))  # bound, never listening: like a socket a dead job left
    with pytest.raises(JobNotRunning):
        control.send_steer("crashed", "hello")


def test_long_home_paths_fall_back_to_a_short_socket_path(tmp_path: Path) -> None:
    use_settings(home=tmp_path / ("deep" * 30))
    path = control.control_path("20250101-000000-abcdef")
    assert len(str(path)) < 100 and path == control.control_path("20250101-000000-abcdef")
    assert control.control_path("other") != path


async def test_steer_over_redis_for_a_job_on_another_machine(
    events: EventLog, redis_url: str, tmp_path: Path
) -> None:
    use_settings(redis_url=redis_url)
    inbox = control.SteerInbox()
    async with control.serve("job-1", inbox, events):
        use_settings(home=tmp_path / "elsewhere")  # no local socket: only Redis connects
        for _ in range(100):  # the job subscribes in the background: wait until it has
            try:
                ack = await asyncio.to_thread(control.send_steer, "job-1", "via redis")
                break
            except JobNotRunning:
                await asyncio.sleep(0.05)
        assert get_settings().redis_url == redis_url
    assert ack["status"] == control.QUEUED
    assert [s.message for s in inbox.take_pending()] == ["via redis"]
    with pytest.raises(JobNotRunning, match="no worker listening"):
        control.send_steer("job-1", "again")
