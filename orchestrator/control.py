"""The steering channel: how ``tandem steer JOB "message"`` reaches a running job.

A running job listens on a Unix domain socket in its job directory (``control.sock``;
a short path under the temp dir when that one would be too long for ``AF_UNIX``). A
client sends one JSON line ``{"type": "steer", "message": ...}`` and gets one JSON line
back: ``delivered`` (an in-flight generation is being redirected), ``queued`` (applies to
the job's next model call) or ``not-running``. A job that runs on a worker of the shared
Redis queue also listens on a pub/sub channel (``keys.steer_channel``) and answers on the
reply channel the sender named.

The job process learns about a steer as soon as the socket (or pub/sub) read returns:
the server's handler runs on the job's own event loop and hands the message to the
``SteerInbox`` synchronously, which interrupts the in-flight stream at once (no polling).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import secrets
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator import keys
from orchestrator.config import get_settings
from orchestrator.errors import ConfigError, JobNotRunning
from orchestrator.events import EventLog

DELIVERED = "delivered"
QUEUED = "queued"
NOT_RUNNING = "not-running"
_MAX_LINE_BYTES = 64 * 1024
_MAX_MESSAGE_CHARS = 4000
_REDIS_POLL_S = 0.2
_UNIX_PATH_MAX = 100  # sun_path is 108 bytes on Linux, 104 on macOS


@dataclass
class Steer:
    """One steering message, as received by the job."""

    message: str
    source: str = "cli"
    received_s: float = field(default_factory=time.perf_counter)


SteerHook = Callable[[Steer], str]


class SteerInbox:
    """Steers of one job process. While a generation streams, its hook takes each steer
    at once; otherwise steers wait here for the next model call."""

    def __init__(self) -> None:
        self.pending: list[Steer] = []
        self._hook: SteerHook | None = None

    def attach(self, hook: SteerHook) -> None:
        self._hook = hook

    def detach(self) -> None:
        self._hook = None

    def post(self, steer: Steer) -> str:
        """Hand ``steer`` to the in-flight generation, else queue it; returns which."""
        if self._hook is not None:
            return self._hook(steer)
        self.pending.append(steer)
        return QUEUED

    def requeue(self, steers: list[Steer]) -> None:
        """Put back steers a failed model call took, ahead of those queued since."""
        self.pending[:0] = steers

    def take_pending(self) -> list[Steer]:
        taken, self.pending = self.pending, []
        return taken


def steering_turn(message: str) -> str:
    """The user turn that carries a steer to the model (also sent as ``response.steer``)."""
    return f"STEERING: {message}"


def clean_message(message: str) -> str:
    text = message.strip()
    if not text:
        raise ConfigError("the steering message is empty: say what the model should do instead")
    if len(text) > _MAX_MESSAGE_CHARS:
        raise ConfigError(f"the steering message has {len(text)} characters; keep it under "
                          f"{_MAX_MESSAGE_CHARS}")
    return text


# --- where the socket lives -------------------------------------------------------------


def control_path(job_id: str) -> Path:
    """The job's control socket (the same answer in the job and in ``tandem steer``)."""
    path = get_settings().jobs_dir / job_id / "control.sock"
    if len(os.fsencode(path)) <= _UNIX_PATH_MAX:
        return path
    digest = hashlib.sha256(os.fsencode(path)).hexdigest()[:20]
    return Path(tempfile.gettempdir()) / f"tandem-{digest}.sock"


# --- the job side -----------------------------------------------------------------------


def _ack(status: str, detail: str) -> dict[str, str]:
    return {"status": status, "detail": detail}


def _describe(status: str) -> str:
    if status == DELIVERED:
        return "delivered to the in-flight generation"
    return "queued for the job's next model call"


def handle_line(line: bytes, inbox: SteerInbox, events: EventLog, source: str) -> dict[str, str]:
    """Apply one request line; returns the ack (never raises on bad input)."""
    try:
        request = json.loads(line)
        message = clean_message(str(request["message"]))
    except (ValueError, KeyError, TypeError, ConfigError) as exc:
        return _ack("error", f"bad steering request: {exc}")
    status = inbox.post(Steer(message=message, source=source))
    events.emit("steer.received", message=message, source=source, status=status)
    return _ack(status, _describe(status))


async def _serve_client(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, inbox: SteerInbox,
    events: EventLog,
) -> None:
    try:
        line = await reader.readline()
        reply = handle_line(line, inbox, events, "socket") if line else _ack("error", "empty")
        writer.write(json.dumps(reply).encode() + b"\n")
        await writer.drain()
    except (ConnectionError, asyncio.LimitOverrunError, ValueError):
        pass  # a client that went away or sent a huge line: nothing to answer
    finally:
        writer.close()


@contextlib.asynccontextmanager
async def serve(job_id: str, inbox: SteerInbox, events: EventLog) -> AsyncIterator[Path]:
    """Listen for steers on the job's control socket (and Redis when configured)."""
    path = control_path(job_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)  # left by a crashed run
    server = await asyncio.start_unix_server(
        lambda r, w: _serve_client(r, w, inbox, events), path=str(path), limit=_MAX_LINE_BYTES)
    os.chmod(path, 0o600)
    redis_task, stop = None, asyncio.Event()
    if get_settings().redis_url:
        redis_task = asyncio.ensure_future(_redis_steers(job_id, inbox, events, stop))
    try:
        yield path
    finally:
        if redis_task is not None:
            stop.set()  # not cancel(): redis-py's pub/sub does not always honour it
            await redis_task
        server.close()
        await server.wait_closed()
        path.unlink(missing_ok=True)
        # Acknowledged as queued, yet the job ended (done, paused, failed) without another
        # model call: say so, rather than drop them without a word.
        for steer in inbox.pending:
            events.emit("steer.unused", message=steer.message, source=steer.source,
                        reason="the job made no model call after it")


async def _redis_steers(
    job_id: str, inbox: SteerInbox, events: EventLog, stop: asyncio.Event
) -> None:
    import redis.asyncio as aioredis
    from redis.exceptions import RedisError

    client = aioredis.Redis.from_url(str(get_settings().redis_url))
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    try:
        await pubsub.subscribe(keys.steer_channel(keys.DEFAULT_PREFIX, job_id))
        while not stop.is_set():
            # returns as soon as a message arrives; the timeout only bounds the shutdown
            msg = await pubsub.get_message(timeout=_REDIS_POLL_S)
            if msg and msg.get("type") == "message":
                reply = handle_line(msg["data"], inbox, events, "redis")
                if reply_to := _reply_channel(msg["data"]):
                    await client.publish(reply_to, json.dumps(reply))
    except (RedisError, OSError) as exc:
        events.emit("steer.channel_lost", error=f"{type(exc).__name__}: {exc}")
    finally:
        await pubsub.aclose()
        await client.aclose()


def _reply_channel(data: bytes) -> str | None:
    try:
        value = json.loads(data).get("reply_to")
    except (ValueError, AttributeError):
        return None
    prefix = keys.steer_reply_channel(keys.DEFAULT_PREFIX, "")
    return value if isinstance(value, str) and value.startswith(prefix) else None


# --- the sender side ----------------------------------------------------------------------


def send_steer(job_id: str, message: str, *, timeout_s: float = 5.0) -> dict[str, str]:
    """Send ``message`` to job ``job_id``; returns the ack. Tries the local control
    socket first, then the shared Redis (when configured); raises ``JobNotRunning``."""
    text = clean_message(message)
    line = json.dumps({"type": "steer", "message": text}).encode() + b"\n"
    path = control_path(job_id)
    try:
        return _via_socket(path, line, timeout_s)
    except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError):
        pass
    except TimeoutError as exc:
        raise JobNotRunning(f"job {job_id} did not take the connection on {path} within "
                            f"{timeout_s:g} s: it is stopped (Ctrl-Z?) or busy; the steer "
                            "was not sent") from exc
    except OSError as exc:
        raise JobNotRunning(f"could not reach job {job_id} on {path}: "
                            f"{exc.strerror or exc}") from exc
    if get_settings().redis_url:
        return _via_redis(job_id, text, timeout_s)
    raise JobNotRunning(f"job {job_id} is not running on this machine (no listener on {path}); "
                        "check `tandem jobs`, or set TANDEM_REDIS_URL for jobs on workers")


def _via_socket(path: Path, line: bytes, timeout_s: float) -> dict[str, str]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        sock.connect(str(path))
        sock.sendall(line)  # a line this short fits the socket's buffer: sent once here
        data = b""
        try:
            while not data.endswith(b"\n"):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        except TimeoutError:  # the job holds the line and takes it when it runs again
            return _ack("sent", f"sent; the job did not answer within {timeout_s:g} s "
                                "(stopped or busy): it takes the steer when it reads it")
        except ConnectionError:
            data = b""
    try:
        return dict(json.loads(data))
    except ValueError as exc:
        raise JobNotRunning(f"the job's control socket {path} closed without an answer: "
                            "the job is probably ending") from exc


def _via_redis(job_id: str, text: str, timeout_s: float) -> dict[str, str]:
    import redis
    from redis.exceptions import RedisError

    url = str(get_settings().redis_url)
    reply_to = keys.steer_reply_channel(keys.DEFAULT_PREFIX, secrets.token_hex(8))
    body = json.dumps({"type": "steer", "message": text, "reply_to": reply_to})
    try:
        client = redis.Redis.from_url(url, socket_timeout=timeout_s)
        with client, client.pubsub() as pubsub:
            pubsub.subscribe(reply_to)
            pubsub.get_message(timeout=timeout_s)  # the subscribe confirmation
            if client.publish(keys.steer_channel(keys.DEFAULT_PREFIX, job_id), body) == 0:
                raise JobNotRunning(f"job {job_id} is not running: no local process and no "
                                    "worker listening on the shared Redis")
            return _await_reply(pubsub, timeout_s)
    except RedisError as exc:
        raise JobNotRunning(f"could not reach Redis to steer job {job_id}: {exc} "
                            "(check TANDEM_REDIS_URL)") from exc


def _await_reply(pubsub: Any, timeout_s: float) -> dict[str, str]:
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        msg = pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
        if msg and msg.get("type") == "message":
            return dict(json.loads(msg["data"]))
    return _ack("sent", "published to the job's worker (no answer yet)")
