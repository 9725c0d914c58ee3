"""The steering channel: the job's control socket (real Unix socket), its answers, and
the Redis pub/sub route for jobs on workers (real redis-server)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


@pytest.fixture
def short_tmp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A temp dir of its own, short enough for socket paths."""
    folder = Path(tempfile.mkdtemp(prefix="tt"))
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_long_home_paths_fall_back_to_a_short_socket_path(
    tmp_path: Path, short_tmp: Path
) -> None:
    use_settings(home=tmp_path / ("deep" * 30))
    path = control.control_path("20250101-000000-abcdef")
    assert len(str(path)) < 100 and path == control.control_path("20250101-000000-abcdef")
    assert control.control_path("other") != path
    # In a folder of this user's that nobody else can enter, not in the shared temp dir.
    assert path.parent == short_tmp / f"tandem-{os.getuid()}"
    assert path.parent.stat().st_mode & 0o777 == 0o700


def test_a_socket_folder_others_can_enter_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another local user who made the fallback folder first (or left it open) could bind
    the job's socket name and read its steers: refused, saying what to do."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    use_settings(home=tmp_path / ("deep" * 30))
    folder = tmp_path / f"tandem-{os.getuid()}"
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)
    with pytest.raises(ConfigError, match=r"only it can enter: remove it"):
        control.control_path("job-1")
    folder.rmdir()
    folder.symlink_to(tmp_path)  # a link to somewhere else is not the folder either
    with pytest.raises(ConfigError, match=r"tandem-\d+ \(for control sockets"):
        control.control_path("job-1")


@pytest.mark.parametrize("answer", [b"x" * 200_000, b"[1, 2]\n", b'{"detail": "no status"}\n'])
def test_a_socket_answering_nonsense_is_a_clear_error(tmp_path: Path, answer: bytes) -> None:
    """Whatever sits on the socket path, its answer is read up to one line's limit and
    must be a steering answer; it was read without bound and returned as it came."""
    path = control.control_path("job-odd")
    path.parent.mkdir(parents=True, exist_ok=True)

    def serve_one(listener: socket.socket) -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(4096)
            with contextlib.suppress(OSError):
                conn.sendall(answer)

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(path))
        listener.listen()
        server = threading.Thread(target=serve_one, args=(listener,))
        server.start()
        with pytest.raises(JobNotRunning, match="not a steering answer"):
            control.send_steer("job-odd", "use tabs", timeout_s=2)
        server.join()


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


async def test_a_redis_steer_sent_as_the_job_stops_is_kept(
    events: EventLog, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A steer published while the job's listener is stopping was received by the channel
    (its sender counted a listener) but never read: it was lost without a word. It is now
    read up to the unsubscribe's answer, answered, and kept for the job's next run."""
    import redis
    import redis.asyncio.client as aio_client

    from orchestrator import keys

    use_settings(redis_url=redis_url)
    sender = redis.Redis.from_url(redis_url)
    replies = sender.pubsub()
    reply_to = keys.steer_reply_channel(keys.DEFAULT_PREFIX, "test")
    replies.subscribe(reply_to)
    body = json.dumps({"type": "steer", "message": "use tabs", "reply_to": reply_to})
    original = aio_client.PubSub.subscribe
    stop = asyncio.Event()

    async def subscribe_then_send(self: Any, *args: Any, **kw: Any) -> Any:
        result = await original(self, *args, **kw)
        await self.get_message(timeout=1)  # the subscribe confirmation
        # Sent, and received by the channel, just as the job stops listening.
        assert sender.publish(keys.steer_channel(keys.DEFAULT_PREFIX, "job-r"), body) == 1
        stop.set()
        return result

    monkeypatch.setattr(aio_client.PubSub, "subscribe", subscribe_then_send)
    inbox = control.SteerInbox()
    await control._redis_steers("job-r", inbox, events, stop)
    assert [s.message for s in inbox.take_pending()] == ["use tabs"]
    answers = [m for _ in range(20) if (m := replies.get_message(timeout=0.1))
               and m["type"] == "message"]
    assert json.loads(answers[0]["data"])["status"] == control.QUEUED
    replies.close()
    sender.close()
