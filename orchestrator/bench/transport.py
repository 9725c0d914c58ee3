"""``tandem bench transport``: round-trip overhead and client CPU per token, on loopback.

The simulated provider runs in its own process with a zero-TTFT, unpaced model, so every
millisecond measured is transport and client overhead:

- round trip: median time from ``stream()`` to ``Completed`` of one-token requests over
  the persistent WebSocket, pooled HTTP SSE, and HTTP SSE with a new TCP connection per
  request (``Connection: close`` on an already-built client). Each transport makes its
  requests in blocks of consecutive ones (as an agent loop makes them), the transports
  taking turns block by block in a rotating order, so a slow spell of the machine hits
  all of them. ``interleaved`` repeats the measurement one request per transport in turn
  (the earlier method): there each request starts after the others' requests, with the
  simulator's process woken from a wait, which on a virtual machine adds a wake-up that
  a provider's busy server does not have (see docs/BENCHMARKS.md).
- the same round trips over TLS (``tls``): a second simulator serves https/wss with a
  throwaway private CA (``trustme``, the dev extra) that the clients trust through
  ``ca_file``. Real providers are only reachable this way, and there a new connection also
  pays a TLS handshake. Without trustme (or with ``--no-tls``) ``tls`` says why it was
  skipped.
- CPU per token: ``time.process_time()`` of this process while it consumes the same long
  stream with our clients and with the official ``openai`` SDK (Responses over HTTP SSE
  and over its WebSocket connection). Plain TCP only.
"""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

import click

from orchestrator.errors import SimConfigError
from orchestrator.models import (
    Completed,
    EndpointConfig,
    Message,
    ModelClient,
    ModelRequest,
    TextDelta,
    make_client,
)

MODEL = "sim-bench"


def _request(tokens: int) -> ModelRequest:
    return ModelRequest(
        model=MODEL, messages=[Message(role="user", content="bench")], max_output_tokens=tokens
    )


async def _round_trip_ms(client: ModelClient, request: ModelRequest) -> float:
    start = time.perf_counter()
    done = None
    async for event in client.stream(request):
        done = event
    assert isinstance(done, Completed), f"bench request did not complete: {done!r}"
    return (time.perf_counter() - start) * 1000


BLOCK = 25  # consecutive requests per transport in a turn


async def round_trips(
    base_url: str, n_requests: int, ca_file: str | None = None, block: int = BLOCK,
) -> dict[str, list[float]]:
    """``n_requests`` one-token round trips per transport, in turns of ``block``
    consecutive requests, the transports' order rotated every turn (``block`` 1: one
    request each in a fixed order, the interleaved method)."""
    clients = {
        "ws": make_client(EndpointConfig(
            provider="openai-ws", base_url=base_url, ca_file=ca_file)),
        "http_pooled": make_client(EndpointConfig(
            provider="openai-responses", base_url=base_url, ca_file=ca_file)),
        "http_new_conn": make_client(EndpointConfig(
            provider="openai-responses", base_url=base_url, ca_file=ca_file,
            extra_headers={"connection": "close"})),
    }
    request = _request(1)
    samples: dict[str, list[float]] = {name: [] for name in clients}
    try:
        for _ in range(10):  # warm-up: connections, code paths
            for client in clients.values():
                await _round_trip_ms(client, request)
        names = list(clients)
        turn = 0
        while len(samples["ws"]) < n_requests:
            k = turn % len(names) if block > 1 else 0
            for name in names[k:] + names[:k]:
                for _ in range(min(block, n_requests - len(samples[name]))):
                    samples[name].append(await _round_trip_ms(clients[name], request))
            turn += 1
    finally:
        for client in clients.values():
            await client.aclose()
    return samples


async def _cpu_us_per_token(consume: Callable[[], Awaitable[int]], tokens: int) -> float:
    start = time.process_time()
    got = await consume()
    used_s = time.process_time() - start
    if got != tokens:
        raise click.ClickException(f"expected {tokens} tokens, consumed {got}")
    return used_s / tokens * 1e6


def _ours(client: ModelClient, tokens: int) -> Callable[[], Awaitable[int]]:
    async def consume() -> int:
        n = 0
        async for event in client.stream(_request(tokens)):
            if type(event) is TextDelta:
                n += 1
        return n

    return consume


def _sdk_http(sdk: Any, tokens: int) -> Callable[[], Awaitable[int]]:
    async def consume() -> int:
        n = 0
        stream = await sdk.responses.create(
            model=MODEL, input="bench", max_output_tokens=tokens, stream=True)
        async for event in stream:
            if event.type == "response.output_text.delta":
                n += 1
        return n

    return consume


def _sdk_ws(sdk: Any, tokens: int) -> Callable[[], Awaitable[int]]:
    async def consume() -> int:
        n = 0
        async with sdk.responses.connect() as conn:
            await conn.response.create(model=MODEL, input="bench", max_output_tokens=tokens)
            async for event in conn:
                if event.type == "response.output_text.delta":
                    n += 1
                elif event.type in ("response.completed", "response.failed", "error"):
                    break
        return n

    return consume


async def cpu_per_token(base_url: str, tokens: int, repeats: int) -> dict[str, float | None]:
    """Median client CPU µs per streamed token for each consumer of the same stream."""
    ws = make_client(EndpointConfig(provider="openai-ws", base_url=base_url))
    http = make_client(EndpointConfig(provider="openai-responses", base_url=base_url))
    consumers: dict[str, Callable[[], Awaitable[int]]] = {
        "ours_ws": _ours(ws, tokens), "ours_http": _ours(http, tokens),
    }
    sdk = _openai_sdk(base_url)
    if sdk is not None:
        consumers["sdk_http"] = _sdk_http(sdk, tokens)
        consumers["sdk_ws"] = _sdk_ws(sdk, tokens)
    results: dict[str, list[float]] = {name: [] for name in consumers}
    try:
        for _ in range(repeats):
            for name, consume in consumers.items():
                results[name].append(await _cpu_us_per_token(consume, tokens))
    finally:
        await ws.aclose()
        await http.aclose()
        if sdk is not None:
            await sdk.close()
    out: dict[str, float | None] = {"sdk_http": None, "sdk_ws": None}
    out.update({name: statistics.median(v) for name, v in results.items()})
    return out


def _openai_sdk(base_url: str) -> Any:
    try:
        from openai import AsyncOpenAI
    except ImportError:
        return None
    return AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0)


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


RTT_TARGETS = {  # name -> (ratio key, limit)
    "ws_rtt <= 0.2 x http_new_conn": ("ws_over_http_new_conn", 0.2),
    "ws_rtt <= 0.5 x http_pooled": ("ws_over_http_pooled", 0.5),
}


def summarise_rtt(rtt: dict[str, list[float]]) -> dict[str, Any]:
    """Median round trip per transport and the WebSocket's ratios to the HTTP ones."""
    med = {name: statistics.median(v) for name, v in rtt.items()}
    return {
        "ws_rtt_overhead_ms": round(med["ws"], 3),
        "http_pooled_rtt_overhead_ms": round(med["http_pooled"], 3),
        "http_new_conn_rtt_overhead_ms": round(med["http_new_conn"], 3),
        "ws_over_http_new_conn": _ratio(med["ws"], med["http_new_conn"]),
        "ws_over_http_pooled": _ratio(med["ws"], med["http_pooled"]),
    }


def rtt_targets(figures: dict[str, Any]) -> dict[str, bool | None]:
    return {name: _le(figures[key], limit) for name, (key, limit) in RTT_TARGETS.items()}


def summarise(rtt: dict[str, list[float]], cpu: dict[str, float | None],
              n_requests: int, tokens: int) -> dict[str, Any]:
    sdk_best = min((v for v in (cpu["sdk_http"], cpu["sdk_ws"]) if v is not None), default=None)
    result: dict[str, Any] = {
        "requests_per_transport": n_requests,
        **summarise_rtt(rtt),
        "stream_tokens": tokens,
        "ours_cpu_us_per_token": _round(cpu["ours_ws"]),
        "ours_http_cpu_us_per_token": _round(cpu["ours_http"]),
        "openai_sdk_cpu_us_per_token": _round(sdk_best),
        "openai_sdk_http_cpu_us_per_token": _round(cpu["sdk_http"]),
        "openai_sdk_ws_cpu_us_per_token": _round(cpu["sdk_ws"]),
        "ours_over_openai_sdk_cpu": _ratio(cpu["ours_ws"], sdk_best),
        "ours_http_over_openai_sdk_http_cpu": _ratio(cpu["ours_http"], cpu["sdk_http"]),
    }
    result["targets_met"] = {
        **rtt_targets(result),
        "ours_cpu <= 1/3 x openai_sdk": _le(result["ours_over_openai_sdk_cpu"], 1 / 3),
    }
    result["machine"] = {
        "cpus": os.cpu_count(), "python": platform.python_version(),
        "platform": platform.platform(), "transport": "loopback",
        "sdk_note": "openai_sdk_cpu_us_per_token is the lower of the SDK's HTTP SSE and "
                    "WebSocket figures",
    }
    return result


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _le(value: float | None, limit: float) -> bool | None:
    return None if value is None else value <= limit


def _interleaved(rtt: dict[str, list[float]]) -> dict[str, Any]:
    figures = summarise_rtt(rtt)
    figures["targets_met"] = rtt_targets(figures)
    return figures


async def run_bench(
    base_url: str, n_requests: int, tokens: int, repeats: int, block: int = BLOCK,
) -> dict[str, Any]:
    rtt = await round_trips(base_url, n_requests, block=block)
    interleaved = await round_trips(base_url, n_requests, block=1)
    cpu = await cpu_per_token(base_url, tokens, repeats)
    result = summarise(rtt, cpu, n_requests, tokens)
    result["rtt_block"] = block
    result["interleaved"] = _interleaved(interleaved)
    return result


def tls_round_trips(n_requests: int, block: int = BLOCK) -> dict[str, Any]:
    """The round trips again against a simulator serving TLS (its own subprocess), the
    clients trusting its throwaway CA through ``ca_file``, in blocks and interleaved;
    ``skipped`` when it cannot run."""
    from orchestrator.sim import SimConfig, SimServer
    from orchestrator.sim.tls import make_local_certs

    with tempfile.TemporaryDirectory(prefix="tandem-bench-tls-") as work:
        try:
            ca_file, cert, key = make_local_certs(work)
        except SimConfigError as exc:  # trustme is not installed
            return {"skipped": str(exc)}
        with SimServer.subprocess(SimConfig(), tls_cert=cert, tls_key=key) as sim:
            rtt = asyncio.run(round_trips(sim.base_url, n_requests, str(ca_file), block))
            interleaved = asyncio.run(round_trips(sim.base_url, n_requests, str(ca_file), 1))
    figures = _interleaved(rtt)
    figures["interleaved"] = _interleaved(interleaved)
    return figures


@click.command("transport")
@click.option("--requests", "n_requests", default=300, show_default=True, type=click.IntRange(1),
              help="One-token round trips per transport (at least 200 for the record).")
@click.option("--tokens", default=20_000, show_default=True, type=click.IntRange(1),
              help="Length of the stream used for CPU per token.")
@click.option("--repeats", default=3, show_default=True, type=click.IntRange(1),
              help="CPU measurements per consumer (the median is reported).")
@click.option("--block", default=BLOCK, show_default=True, type=click.IntRange(2),
              help="Consecutive requests per transport in a turn (the `interleaved` "
              "figures are always one request per transport in turn).")
@click.option("--no-tls", "no_tls", is_flag=True,
              help="Skip the round trips over TLS (the `tls` object says so).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def cli(
    n_requests: int, tokens: int, repeats: int, block: int, no_tls: bool, as_json: bool,
) -> None:
    """Measure model-transport overhead on loopback: WebSocket vs HTTP SSE round trips
    on plain TCP and over TLS (the `tls` object), and client CPU per streamed token
    against the official openai SDK (plain TCP).

    Round trips run in turns of --block consecutive requests per transport (the
    headline figures), then one request per transport in turn (`interleaved`).

    Starts the simulated provider in a separate process (zero TTFT, unpaced), so no
    keys and no network are needed; the TLS round trips use a second one serving TLS
    with a throwaway local CA (needs the dev extra's trustme; skipped without it). Takes
    about a minute on 2 cores.
    """
    from orchestrator.cli import emit_json
    from orchestrator.sim import SimConfig, SimServer

    with SimServer.subprocess(SimConfig()) as sim:
        result = asyncio.run(run_bench(sim.base_url, n_requests, tokens, repeats, block))
    if no_tls:
        result["tls"] = {"skipped": "--no-tls"}
    else:
        result["tls"] = tls_round_trips(n_requests, block)
    if as_json:
        emit_json(result)
        return
    for key, value in result.items():
        click.echo(f"{key}: {value}")
    sys.stdout.flush()
