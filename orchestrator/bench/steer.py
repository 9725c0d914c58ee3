"""``tandem bench steer``: time from a steer to the first token of the redirected
generation, on the simulator with the fast model's profile.

For each steer a model call streams a long answer through the real gateway; once text
is flowing, the steer is sent through the job's control socket (the channel `tandem
steer` uses) and the clock runs until the gateway sees the first token of the
redirected generation. Two modes, measured side by side in one run:

- ``websocket_steer``: Responses over WebSocket with ``response.steer`` (in place);
- ``http_reissue``: Responses over HTTP SSE: abort the stream, re-issue with the steer.

The redirected generation has to wait for the model's first token (TTFT) either way;
the target is at most 100 ms beyond it (p95). A few more steers are sent by running the
`tandem steer` command itself, to show what a new process adds on top of the channel.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from agents.base import Turn
from orchestrator import control
from orchestrator.config import get_settings, use_settings
from orchestrator.events import EventLog
from orchestrator.gateway import ModelGateway
from orchestrator.models.types import Provider
from orchestrator.policy import Budgets, ModelEntry, Policy, Tier

FAST_MODEL = "gpt-5.3-codex-spark"
REDIRECTED_TEXT = "Understood: switching to the shorter approach now."
TARGET_OVERHEAD_MS = 100.0
NATIVE = "websocket_steer"
_MODES: dict[str, tuple[Provider, bool]] = {
    "websocket_steer": ("openai-ws", True), "http_reissue": ("openai-responses", False)}


def bench_policy(base_url: str) -> Policy:
    tiers = {mode: Tier(models=[ModelEntry(provider=provider, base_url=base_url,
                                           model=FAST_MODEL, steer_supported=steer)])
             for mode, (provider, steer) in _MODES.items()}
    first = next(iter(_MODES))
    return Policy(name="bench-steer", tiers=tiers, default_tier=first, plan_tier=first,
                  review_tier=first, budgets=Budgets(max_cost_usd=None, max_steps=10_000))


class _Clock:
    """Catches the moment text streams and the moment the redirected text starts."""

    def __init__(self) -> None:
        self.streaming = asyncio.Event()
        self.applied_s: float | None = None
        self.modes: Counter[str] = Counter()

    def on_event(self, event: dict[str, Any]) -> None:
        if event["type"] == "model.progress":
            self.streaming.set()
        elif event["type"] == "steer.applied":
            self.applied_s = time.perf_counter()
            self.modes[str(event["mode"])] += 1


def _send_in_process(job_id: str, message: str) -> dict[str, str]:
    return control.send_steer(job_id, message)


def _send_by_cli(job_id: str, message: str) -> dict[str, str]:
    """The whole `tandem steer` command: a new Python process, imports, the socket."""
    env = {**os.environ, "TANDEM_HOME": str(get_settings().home)}
    proc = subprocess.run([sys.executable, "-m", "orchestrator", "steer", job_id, message,
                           "--json"], env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise click.ClickException(f"tandem steer failed: {proc.stderr.strip()}")
    return dict(json.loads(proc.stdout))


Sender = Callable[[str, str], dict[str, str]]


async def _one_steer(
    gateway: ModelGateway, clock: _Clock, mode: str, i: int, send: Sender = _send_in_process
) -> float:
    clock.streaming.clear()
    clock.applied_s = None
    call = asyncio.ensure_future(gateway(
        tier=mode, phase="edit", instructions="bench", max_output_tokens=5000,
        turns=[Turn(role="user", content=f"write a long answer #{i}")]))
    await clock.streaming.wait()
    start_s = time.perf_counter()
    ack = await asyncio.to_thread(send, gateway.job_id, f"shorter please #{i}")
    text = await call
    if ack.get("status") != "delivered" or clock.applied_s is None or text != REDIRECTED_TEXT:
        raise click.ClickException(f"steer {i} ({mode}) was not applied: {ack}")
    return (clock.applied_s - start_s) * 1000


async def run_mode(
    base_url: str, mode: str, n_steers: int, warmup: int, n_cli: int = 0
) -> dict[str, Any]:
    clock = _Clock()
    job_id = f"bench-steer-{mode}"
    events = EventLog(Path(tempfile.mkdtemp(prefix="tandem-steer-")) / "events.jsonl", job_id)
    events.subscribe(clock.on_event)
    gateway = ModelGateway(bench_policy(base_url), events, job_id=job_id)
    gateway.listeners.append(clock.on_event)
    gateway.begin(None, step=1, steps_done=0)
    latencies: list[float] = []
    via_cli: list[float] = []
    try:
        async with control.serve(job_id, gateway.inbox, events):
            for i in range(warmup + n_steers):
                latency_ms = await _one_steer(gateway, clock, mode, i)
                if i >= warmup:
                    latencies.append(latency_ms)
            for i in range(n_cli):
                via_cli.append(await _one_steer(gateway, clock, mode, i, _send_by_cli))
    finally:
        await gateway.aclose()
        events.close()
    return {"latencies_ms": latencies, "cli_ms": via_cli, "applied_via": dict(clock.modes)}


def _summary(latencies_ms: list[float], ttft_ms: float) -> dict[str, Any]:
    ordered = sorted(latencies_ms)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    median = statistics.median(ordered)
    return {"steers": len(ordered), "median_ms": round(median, 1), "p95_ms": round(p95, 1),
            "min_ms": round(ordered[0], 1), "max_ms": round(ordered[-1], 1),
            "overhead_median_ms": round(median - ttft_ms, 1),
            "overhead_p95_ms": round(p95 - ttft_ms, 1),
            "meets_target": p95 - ttft_ms <= TARGET_OVERHEAD_MS}


async def run_bench(
    base_url: str, n_steers: int, warmup: int, ttft_ms: float, n_cli: int
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode in _MODES:
        raw = await run_mode(base_url, mode, n_steers, warmup, n_cli if mode == NATIVE else 0)
        out[mode] = {**_summary(raw["latencies_ms"], ttft_ms), "applied_via": raw["applied_via"]}
        if raw["cli_ms"]:
            out[mode]["via_cli_process_median_ms"] = round(statistics.median(raw["cli_ms"]), 1)
    return out


@click.command("steer")
@click.option("--steers", "n_steers", default=30, show_default=True, type=click.IntRange(1),
              help="Timed steers per mode (at least 30 for the record).")
@click.option("--warmup", default=2, show_default=True, type=click.IntRange(0),
              help="Untimed steers per mode first.")
@click.option("--cli-steers", "n_cli", default=5, show_default=True, type=click.IntRange(0),
              help="Extra WebSocket steers sent by running the `tandem steer` command itself "
              "(a new process each: adds interpreter start-up; reported apart).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def cli(n_steers: int, warmup: int, n_cli: int, as_json: bool) -> None:
    """Measure steer-to-first-redirected-token latency: in place over the WebSocket
    (`response.steer`) and by abort and re-issue over HTTP SSE, on the simulated
    provider (own process) with the fast model's speed profile. No keys, no network;
    about 30 s for 30 steers per mode."""
    from orchestrator.cli import emit_json
    from orchestrator.sim import SimConfig, SimServer
    from orchestrator.sim.config import TapeEntry, TapeMatch

    tape = [TapeEntry(match=TapeMatch(contains=["STEERING:"]), text=REDIRECTED_TEXT)]
    config = SimConfig(tape=tape, steer_supported=True)
    profile = config.profile(FAST_MODEL)
    assert profile is not None
    with tempfile.TemporaryDirectory(prefix="tandem-bench-") as home:
        use_settings(home=Path(home))
        with SimServer.subprocess(config) as sim:
            modes = asyncio.run(run_bench(sim.base_url, n_steers, warmup, profile.ttft_ms,
                                          n_cli))
    result = {"model": FAST_MODEL, "profile_ttft_ms": profile.ttft_ms,
              "profile_tokens_per_s": profile.tokens_per_s, "profile_jitter": profile.jitter,
              "target_ms": f"<= {TARGET_OVERHEAD_MS:g} + TTFT", **modes}
    if as_json:
        emit_json(result)
        return
    for key, value in result.items():
        click.echo(f"{key}: {value}")
