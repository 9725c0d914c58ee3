"""``tandem models check``: can each tier's models be reached, with the key given?"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import click

from orchestrator.cli import emit_json
from orchestrator.errors import TandemError


async def _probe(entry: Any, sim_url: str | None) -> dict[str, Any]:
    from orchestrator.gateway import endpoint_config
    from orchestrator.models import Message, ModelRequest, complete, make_client

    out: dict[str, Any] = {"model": entry.model, "provider": entry.provider,
                           "base_url": entry.base_url}
    start = time.perf_counter()
    try:
        client = make_client(endpoint_config(entry, sim_url))
        try:
            done = await complete(client, ModelRequest(
                model=entry.model, messages=[Message(role="user", content="ping")],
                max_output_tokens=16))
        finally:
            await client.aclose()
    except TandemError as exc:
        return out | {"ok": False, "error": str(exc)}
    m = client.last_metrics
    return out | {"ok": True, "served_model": done.served_model,
                  "ttft_ms": round(m.ttft_ms, 1) if m and m.ttft_ms else None,
                  "round_trip_ms": round((time.perf_counter() - start) * 1000, 1)}


@click.group()
def models() -> None:
    """Model endpoints of a policy."""


@models.command()
@click.option("--policy", "-p", help="Policy name or path (default: the default policy).")
@click.option("--json", "json_out", is_flag=True, help="Print the results as JSON.")
def check(policy: str | None, json_out: bool) -> None:
    """Send a tiny request to every model of every tier (fallbacks included) and report
    whether it answered, which model served it and how fast; a failure says what to check
    (endpoint, key variable, model name). Tiers at sim:// are checked against an embedded
    simulator. Exit status 2 if any model failed."""
    from orchestrator.policy import load_policy
    from orchestrator.runner import embedded_sim

    pol = load_policy(policy)

    async def run(sim_url: str | None) -> list[dict[str, Any]]:
        results = []
        for tier_name, tier in pol.tiers.items():
            for entry in tier.candidates():
                results.append({"tier": tier_name, **await _probe(entry, sim_url)})
        return results

    with embedded_sim(pol, None, synthetic_ok=True) as sim_url:
        results = asyncio.run(run(sim_url))
    if json_out:
        emit_json(results)
    else:
        for r in results:
            status = (f"ok, served {r['served_model']}, TTFT {r['ttft_ms']} ms" if r["ok"]
                      else f"FAILED: {r['error']}")
            click.echo(f"{r['tier']:<6} {r['model']:<28} {status}")
    if not all(r["ok"] for r in results):
        raise SystemExit(2)
