"""``tandem bench NAME``: the benchmarks of orchestrator/bench/, one module each."""

from __future__ import annotations

import click

from orchestrator.cli import LazyGroup

BENCHES: dict[str, str] = {
    "transport": "orchestrator.bench.transport:cli",
    "checkpoint": "orchestrator.bench.checkpoint:cli",
    "routing": "orchestrator.bench.routing:cli",
    "e2e": "orchestrator.bench.e2e:cli",
    "queue": "orchestrator.bench.queue:cli",
    "steer": "orchestrator.bench.steer:cli",
}


@click.group(cls=LazyGroup, lazy=BENCHES)
def bench() -> None:
    """Benchmarks. Each prints a JSON object with --json; figures are recorded in
    docs/BENCHMARKS.md."""
