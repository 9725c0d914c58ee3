"""The steering channel: how ``tandem steer JOB "message"`` reaches a running job.

A running job listens on a Unix domain socket in its job directory (``control.sock``; a
short path in a private folder under the temp dir when that one would be too long for
``AF_UNIX``). A client sends one JSON line ``{"type": "steer", "message": ...}`` and gets
one JSON line back: ``delivered`` (an in-flight generation is being redirected),
``queued`` (applies to the job's next model call) or ``not-running``, with the steer's
id. A job that runs on a worker of the shared Redis queue also listens on a pub/sub
channel (``keys.steer_channel``) and answers on the reply channel the sender named.

A connection has ``_READ_TIMEOUT_S`` to send its line, of at most ``_MAX_LINE_BYTES``, and
at most ``_MAX_CLIENTS`` are served at once; anything else gets a one-line error answer
and is closed (an idle or flooding client never holds the job or its memory).

A steer no model call has taken yet when the job stops (paused, failed, interrupted) is
kept in the job directory (``steers.json``) and goes with the first model call of the
job's next run (``tandem resume``, ``tandem approve``).

The job process learns about a steer as soon as the socket (or pub/sub) read returns:
the server's handler runs on the job's own event loop and hands the message to the
``SteerInbox`` synchronously, which interrupts the in-flight stream at once (no polling).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import secrets
import socket
import stat
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator import keys
from orchestrator.config import get_settings
from orchestrator.errors import ConfigError, JobNotRunning
from orchestrator.events import EventLog

log = logging.getLogger(__name__)

DELIVERED = "delivered"
QUEUED = "queued"
NOT_RUNNING = "not-running"
_MAX_LINE_BYTES = 64 * 1024
_MAX_MESSAGE_CHARS = 4000
_REDIS_POLL_S = 0.2
_REDIS_DRAIN_S = 2.0  # to read steers sent while the job stops
_READ_TIMEOUT_S = 5.0  # to send the request line (a sender sends it at once)
_MAX_CLIENTS = 16
_UNIX_PATH_MAX = 100  # sun_path is 108 bytes on Linux, 104 on macOS


@dataclass
class Steer:
    """One steering message, as received by the job."""

    message: str
    source: str = "cli"
    received_s: float = field(default_factory=time.perf_counter)
    id: str = field(default_factory=lambda: "steer-" + secrets.token_hex(4))


SteerHook = Callable[[Steer], str]


class SteerInbox:
    """Steers of one job process. While a generation streams, its hook takes each steer
    at once; otherwise steers wait here for the next model call.

    ``taken``: steers of the model call in flight, until it completes (``settle``) or
    fails (``requeue``). With a store (``keep_at``), queued and taken steers are written
    there at each change, so that a run that stops (or dies) before a call completes with
    them leaves them for the job's next run."""

    def __init__(self) -> None:
        self.pending: list[Steer] = []
        self.taken: list[Steer] = []
        self._hook: SteerHook | None = None
        self._store: Path | None = None

    def attach(self, hook: SteerHook) -> None:
        self._hook = hook

    def detach(self) -> None:
        self._hook = None

    def post(self, steer: Steer) -> str:
        """Hand ``steer`` to the in-flight generation, else queue it; returns which."""
        if self._hook is not None:
            status = self._hook(steer)
            self.taken.append(steer)
        else:
            self.pending.append(steer)
            status = QUEUED
        self._save()
        return status

    def requeue(self, steers: list[Steer]) -> None:
        """Put back steers a failed model call took, ahead of those queued since."""
        self.pending[:0] = steers
        self.taken = []
        self._save()

    def take_pending(self) -> list[Steer]:
        """The queued steers, for the model call that starts now."""
        taken, self.pending = self.pending, []
        self.taken.extend(taken)
        self._save()
        return taken

    def settle(self) -> None:
        """The model call in flight completed: its steers are used."""
        self.taken = []
        self._save()

    @property
    def unused(self) -> list[Steer]:
        """Steers that no completed model call has used."""
        return [*self.taken, *self.pending]

    # --- kept between runs ------------------------------------------------------------

    def keep_at(self, store: Path) -> list[Steer]:
        """Keep the unused steers in ``store`` from now on; returns those an earlier run
        left there, queued again ahead of any queued here."""
        self._store = store
        restored = _load_steers(store)
        self.pending[:0] = restored
        self._save()
        return restored

    def release(self, *, keep: bool) -> None:
        """Stop keeping steers; ``keep``: leave the unused ones in the store for the next
        run (otherwise it is removed)."""
        if self._store is not None:
            if keep:
                self._save()
            else:
                self._store.unlink(missing_ok=True)
        self._store = None

    def _save(self) -> None:
        if self._store is None:
            return
        steers = self.unused
        if not steers:
            with contextlib.suppress(OSError):
                self._store.unlink(missing_ok=True)
            return
        body = json.dumps([{"id": s.id, "message": s.message, "source": s.source}
                           for s in steers], ensure_ascii=False)
        tmp = self._store.with_suffix(".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(body)
            os.replace(tmp, self._store)
        except OSError as exc:  # the steer still goes with this run's next call
            log.warning("could not keep the job's steers in %s: %s", self._store, exc)


def _load_steers(path: Path) -> list[Steer]:
    """The steers kept in ``path`` (none when it is missing or unreadable)."""
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
        return [Steer(message=clean_message(str(i["message"])), source=str(i["source"]),
                      id=str(i["id"])) for i in items]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, TypeError, ConfigError):
        return []  # a damaged file: nothing in it can be trusted to be a steer


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
    """The job's control socket (the same answer in the job and in ``tandem steer``).

    When the job directory's path is too long for ``AF_UNIX``, the socket goes in a folder
    of this user's own under the temp dir (``tandem-<uid>``, mode 0700): a shared temp dir
    would let another local user bind the name first and take the steers, or leave a file
    there the job cannot remove."""
    path = get_settings().jobs_dir / job_id / "control.sock"
    if len(os.fsencode(path)) <= _UNIX_PATH_MAX:
        return path
    digest = hashlib.sha256(os.fsencode(path)).hexdigest()[:20]
    return _private_temp_dir() / f"{digest}.sock"


def _private_temp_dir() -> Path:
    """``<temp dir>/tandem-<uid>``, created 0700 if missing; ``ConfigError`` when it is not
    a folder of this user's that nobody else can enter."""
    folder = Path(tempfile.gettempdir()) / f"tandem-{os.getuid()}"
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700)
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise ConfigError(
            f"{folder} (for control sockets of jobs whose directory path is too long) is not "
            "a folder of this user's that only it can enter: remove it, or set a shorter "
            "TANDEM_HOME"
        )
    return folder


def kept_steers_path(job_id: str) -> Path:
    """Where steers no model call took wait for the job's next run."""
    return get_settings().jobs_dir / job_id / "steers.json"


# --- the job side -----------------------------------------------------------------------


def _ack(status: str, detail: str, steer_id: str | None = None) -> dict[str, str]:
    return {"status": status, "detail": detail, **({"id": steer_id} if steer_id else {})}


def _line(reply: dict[str, str]) -> bytes:
    return json.dumps(reply).encode() + b"\n"


def _describe(status: str) -> str:
    if status == DELIVERED:
        return "delivered to the in-flight generation"
    return "queued for the job's next model call"


def handle_line(line: bytes, inbox: SteerInbox, events: EventLog, source: str) -> dict[str, str]:
    """Apply one request line; returns the ack (never raises on bad input)."""
    if len(line) > _MAX_LINE_BYTES:
        return _ack("error", f"bad steering request: longer than {_MAX_LINE_BYTES} bytes")
    try:
        request = json.loads(line)
        message = clean_message(str(request["message"]))
    except (ValueError, KeyError, TypeError, AttributeError, ConfigError) as exc:
        return _ack("error", f"bad steering request: {exc}")
    steer = Steer(message=message, source=source)
    status = inbox.post(steer)
    events.emit("steer.received", id=steer.id, message=message, source=source, status=status)
    return _ack(status, _describe(status), steer.id)


async def _read_request(
    reader: asyncio.StreamReader, inbox: SteerInbox, events: EventLog
) -> dict[str, str]:
    try:
        async with asyncio.timeout(_READ_TIMEOUT_S):
            line = await reader.readline()
    except TimeoutError:
        return _ack("error", f"no complete request line within {_READ_TIMEOUT_S:g} s")
    except ValueError:  # the line outgrew the reader's limit (its buffer stops there)
        return _ack("error", f"request line longer than {_MAX_LINE_BYTES} bytes")
    return handle_line(line, inbox, events, "socket") if line else _ack("error", "empty")


async def _serve_client(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, inbox: SteerInbox,
    events: EventLog, clients: dict[asyncio.Task[None], asyncio.StreamWriter],
) -> None:
    try:
        if len(clients) > _MAX_CLIENTS:  # this connection's task is counted
            reply = _ack("error", f"the job serves {_MAX_CLIENTS} control connections "
                                  "already; try again")
        else:
            try:
                reply = await _read_request(reader, inbox, events)
            except asyncio.CancelledError:  # the job is ending
                writer.write(_line(_ack(NOT_RUNNING, "the job is ending; nothing was taken")))
                raise
        writer.write(_line(reply))
        async with asyncio.timeout(_READ_TIMEOUT_S):  # a client that does not read
            await writer.drain()
    except (ConnectionError, TimeoutError):
        pass  # a client that went away or does not read its answer
    finally:
        writer.close()


def _track(
    clients: dict[asyncio.Task[None], asyncio.StreamWriter], writer: asyncio.StreamWriter,
    handler: Coroutine[Any, Any, None],
) -> None:
    """Run one connection's handler as a task the server can end with the job."""
    task = asyncio.ensure_future(handler)
    clients[task] = writer
    task.add_done_callback(lambda t: clients.pop(t, None))


@contextlib.asynccontextmanager
async def serve(job_id: str, inbox: SteerInbox, events: EventLog) -> AsyncIterator[Path]:
    """Listen for steers on the job's control socket (and Redis when configured)."""
    path = control_path(job_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)  # left by a crashed run
    store = kept_steers_path(job_id)
    store.parent.mkdir(parents=True, exist_ok=True)
    for steer in inbox.keep_at(store):
        events.emit("steer.restored", id=steer.id, message=steer.message, source=steer.source)
    done: list[bool] = []
    events.subscribe(lambda e: done.append(True) if e.get("type") == "job.done" else None)
    clients: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
    server = await asyncio.start_unix_server(
        lambda r, w: _track(clients, w, _serve_client(r, w, inbox, events, clients)),
        path=str(path), limit=_MAX_LINE_BYTES)
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
        # Connections still open (idle, or half a line) end with the job, answered: left
        # to run, they held the server open (and a steer they took then went nowhere).
        writers = list(clients.values())
        for task in list(clients):
            task.cancel()
        await asyncio.gather(*list(clients), return_exceptions=True)
        for writer in writers:
            writer.close()
        await server.wait_closed()
        path.unlink(missing_ok=True)
        _report_unused(inbox, events, kept=not done)
        inbox.release(keep=not done)


def _report_unused(inbox: SteerInbox, events: EventLog, *, kept: bool) -> None:
    """Acknowledged, yet no model call used them before the job ended: say so, rather
    than drop them without a word, and keep them unless the job is done."""
    reason = ("the job stopped before a model call took it: kept for the job's next run "
              "(`tandem resume` or `tandem approve`)" if kept
              else "the job finished without another model call")
    for steer in inbox.unused:
        events.emit("steer.unused", id=steer.id, message=steer.message, source=steer.source,
                    reason=reason, kept=kept)


async def _redis_steers(
    job_id: str, inbox: SteerInbox, events: EventLog, stop: asyncio.Event
) -> None:
    import redis.asyncio as aioredis
    from redis.exceptions import RedisError

    client = aioredis.Redis.from_url(str(get_settings().redis_url))
    pubsub = client.pubsub(ignore_subscribe_messages=True)

    async def take(msg: dict[str, Any] | None) -> None:
        if msg and msg.get("type") == "message":
            reply = handle_line(msg["data"], inbox, events, "redis")
            if reply_to := _reply_channel(msg["data"]):
                await client.publish(reply_to, json.dumps(reply))

    try:
        await pubsub.subscribe(keys.steer_channel(keys.DEFAULT_PREFIX, job_id))
        while not stop.is_set():
            # returns as soon as a message arrives; the timeout only bounds the shutdown
            await take(await pubsub.get_message(timeout=_REDIS_POLL_S))
        # A steer published before the unsubscribe took effect was counted as received by
        # its sender: it is read (and kept for the next run) up to the unsubscribe's answer.
        await pubsub.unsubscribe()
        async with asyncio.timeout(_REDIS_DRAIN_S):
            while pubsub.subscribed:
                await take(await pubsub.get_message(timeout=_REDIS_POLL_S))
    except TimeoutError:
        events.emit("steer.channel_lost", error="the steering channel did not confirm the "
                                                "unsubscribe; a steer sent just now may be lost")
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
            while not data.endswith(b"\n") and len(data) <= _MAX_LINE_BYTES:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        except TimeoutError:  # the job holds the line and takes it when it runs again
            return _ack("sent", f"sent; the job did not answer within {timeout_s:g} s "
                                "(stopped or busy): it takes the steer when it reads it")
        except ConnectionError:
            data = b""
    if not data:
        raise JobNotRunning(f"the job's control socket {path} closed without an answer: "
                            "the job is probably ending")
    try:
        answer = json.loads(data) if len(data) <= _MAX_LINE_BYTES else None
    except ValueError:
        answer = None
    if not (isinstance(answer, dict) and isinstance(answer.get("status"), str)):
        raise JobNotRunning(f"{path} answered something that is not a steering answer: is "
                            "it the job's control socket? the steer may not have been taken")
    return {str(k): str(v) for k, v in answer.items()}


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
