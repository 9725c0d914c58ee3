"""The control socket against clients that misbehave (real Unix sockets): one that says
nothing, one that stalls in the middle of its line, one that sends megabytes without a
newline, too many at once, and clients still connected when the job ends. None of them
holds another client, the job, or memory. And steers that no model call took when the
job stops: kept for its next run, with their ids, or dropped when the job is done."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.base import Turn
from orchestrator import control
from orchestrator.events import EventLog, read_events
from orchestrator.gateway import ModelGateway
from orchestrator.policy import load_policy
from orchestrator.sim.server import ThreadedSim
from tests.fixtures_jobs import write_policy

JOB = "job-limits"


@pytest.fixture
def events(tmp_path: Path) -> Iterator[EventLog]:
    log = EventLog(tmp_path / "events.jsonl", JOB)
    yield log
    log.close()


def _connect(path: Path, timeout_s: float = 3.0) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(timeout_s)
    sock.connect(str(path))
    return sock


def _answer(sock: socket.socket) -> dict[str, Any]:
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return dict(json.loads(data))


def _steer(message: str) -> dict[str, str]:
    return control.send_steer(JOB, message, timeout_s=3)


async def test_idle_and_stalled_clients_neither_block_others_nor_stay(
    events: EventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that said nothing, or half a line, was waited on for ever."""
    monkeypatch.setattr(control, "_READ_TIMEOUT_S", 0.3)
    inbox = control.SteerInbox()
    async with control.serve(JOB, inbox, events) as path:
        idle = _connect(path)
        half = _connect(path)
        half.sendall(b'{"type": "steer", "message": "half')
        ack = await asyncio.to_thread(_steer, "use tabs")  # served meanwhile
        assert ack["status"] == control.QUEUED
        idle_answer, half_answer = await asyncio.gather(
            asyncio.to_thread(_answer, idle), asyncio.to_thread(_answer, half))
    idle.close()
    half.close()
    assert idle_answer["status"] == "error" and "within 0.3 s" in idle_answer["detail"]
    assert half_answer["status"] == "error"
    assert [s.message for s in inbox.pending] == ["use tabs"]  # the half line is not a steer


async def test_a_huge_line_gets_an_error_answer(events: EventLog) -> None:
    """Megabytes without a newline: the job stops reading at its limit, answers in one
    line and hangs up (the client was closed on without a word)."""
    inbox = control.SteerInbox()
    async with control.serve(JOB, inbox, events) as path:
        def flood() -> tuple[int, dict[str, Any]]:
            sock = _connect(path)
            sent = 0
            try:
                for _ in range(64 * 4):  # 16 MiB, far past what the job reads
                    sock.sendall(b"x" * 65536)
                    sent += 65536
            except OSError:
                pass  # the job hung up
            with sock:
                return sent, _answer(sock)

        sent, answer = await asyncio.to_thread(flood)
        ack = await asyncio.to_thread(_steer, "after the flood")
    assert answer["status"] == "error" and "longer than" in answer["detail"]
    assert sent < 16 * 1024 * 1024  # refused long before the end: nothing buffered it all
    assert ack["status"] == control.QUEUED


async def test_connections_over_the_cap_are_refused_in_one_line(
    events: EventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(control, "_MAX_CLIENTS", 2)
    async with control.serve(JOB, control.SteerInbox(), events) as path:
        held = [_connect(path), _connect(path)]
        await asyncio.sleep(0)  # the job's loop takes the two connections
        extra = _connect(path)
        refused = await asyncio.to_thread(_answer, extra)
        for sock in [*held, extra]:
            sock.close()
        for _ in range(100):  # the held ones are gone once the job has seen them close
            ack = await asyncio.to_thread(_steer, "now")
            if ack["status"] != "error":
                break
    assert refused["status"] == "error" and "2 control connections" in refused["detail"]
    assert ack["status"] == control.QUEUED


async def test_the_job_ends_with_clients_connected(events: EventLog) -> None:
    """An idle client was left waiting (its handler pending past the job's end), and on
    newer Pythons the job's end waited for it."""
    async with control.serve(JOB, control.SteerInbox(), events) as path:
        idle = _connect(path)
        half = _connect(path)
        half.sendall(b'{"message": "x')
        await asyncio.sleep(0.05)  # the job's loop takes both connections
    answers = [await asyncio.to_thread(_answer, s) for s in (idle, half)]
    idle.close()
    half.close()
    assert [a["status"] for a in answers] == [control.NOT_RUNNING] * 2


async def test_queued_steers_are_kept_for_the_next_run(events: EventLog) -> None:
    inbox = control.SteerInbox()
    async with control.serve(JOB, inbox, events):
        ack = await asyncio.to_thread(_steer, "use tabs")
    assert control.kept_steers_path(JOB).exists()
    [unused] = [e for e in read_events(events.path) if e["type"] == "steer.unused"]
    assert unused["id"] == ack["id"] and unused["kept"] is True

    resumed = control.SteerInbox()
    async with control.serve(JOB, resumed, events):
        assert [(s.id, s.message) for s in resumed.pending] == [(ack["id"], "use tabs")]
        events.emit("job.done")  # ... and no model call took it
    assert not control.kept_steers_path(JOB).exists()
    logged = read_events(events.path)
    assert [e["type"] for e in logged if e["type"].startswith("steer.")] == [
        "steer.received", "steer.unused", "steer.restored", "steer.unused"]
    assert logged[-1]["kept"] is False and "finished" in logged[-1]["reason"]

    async with control.serve(JOB, (fresh := control.SteerInbox()), events):
        pass
    assert not fresh.pending  # a done job's steers are not carried on


async def test_a_steer_delivered_to_a_call_cut_short_is_kept(
    tmp_path: Path, steer_sim: ThreadedSim, events: EventLog
) -> None:
    """Ctrl-C (the run cancelled) right after a steer reached the generation in flight:
    the steer, acknowledged as delivered, was gone with the call."""
    policy = load_policy(str(write_policy(tmp_path / "p.yaml", steer_sim.base_url,
                                          fast_extra={"steer_supported": True})))
    gateway = ModelGateway(policy, events, job_id=JOB)
    gateway.begin(None, step=1, steps_done=0)
    acks: list[asyncio.Task[dict[str, str]]] = []
    loop = asyncio.get_running_loop()
    async with control.serve(JOB, gateway.inbox, events):
        call = asyncio.ensure_future(gateway(
            tier="fast", phase="edit", instructions="be brief",
            turns=[Turn(role="user", content="please write a lot")]))

        def on_event(event: dict[str, Any]) -> None:
            if event["type"] == "model.progress" and not acks:
                acks.append(loop.create_task(asyncio.to_thread(_steer, "keep it short")))
            if event["type"] == "steer.received":
                call.cancel()  # the run is interrupted at once

        gateway.listeners.append(on_event)
        events.subscribe(on_event)
        with pytest.raises(asyncio.CancelledError):
            await call
        [ack] = [await a for a in acks]
    await gateway.aclose()
    assert ack["status"] == control.DELIVERED
    [unused] = [e for e in read_events(events.path) if e["type"] == "steer.unused"]
    assert unused["id"] == ack["id"] and unused["kept"] is True
    resumed = control.SteerInbox()
    assert [s.message for s in resumed.keep_at(control.kept_steers_path(JOB))] == [
        "keep it short"]
