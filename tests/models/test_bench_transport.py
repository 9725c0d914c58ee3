"""`tandem bench transport` runs end to end (tiny sizes) and reports every figure, on
plain TCP and over TLS; without trustme the TLS leg says it was skipped."""

from __future__ import annotations

import asyncio
import json
import sys

import pytest
from click.testing import CliRunner

from orchestrator.bench.transport import cli, round_trips, tls_round_trips

RTT_KEYS = ("ws_rtt_overhead_ms", "http_pooled_rtt_overhead_ms",
            "http_new_conn_rtt_overhead_ms", "ws_over_http_new_conn", "ws_over_http_pooled")


def test_bench_transport_json_has_every_figure() -> None:
    result = CliRunner().invoke(
        cli, ["--json", "--requests", "3", "--tokens", "50", "--repeats", "1"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    for key in ("ws_rtt_overhead_ms", "http_new_conn_rtt_overhead_ms",
                "http_pooled_rtt_overhead_ms", "ours_cpu_us_per_token",
                "openai_sdk_cpu_us_per_token", "ws_over_http_new_conn", "ws_over_http_pooled",
                "ours_over_openai_sdk_cpu"):
        assert isinstance(data[key], float) and data[key] > 0, key
    assert data["stream_tokens"] == 50
    assert set(data["targets_met"]) == {
        "ws_rtt <= 0.2 x http_new_conn", "ws_rtt <= 0.5 x http_pooled",
        "ours_cpu <= 1/3 x openai_sdk"}
    assert data["rtt_block"] == 25
    tls = data["tls"]
    for figures, where in ((data["interleaved"], "interleaved"), (tls, "tls"),
                           (tls["interleaved"], "tls.interleaved")):
        for key in RTT_KEYS:
            assert isinstance(figures[key], float) and figures[key] > 0, f"{where}.{key}"
        assert set(figures["targets_met"]) == {
            "ws_rtt <= 0.2 x http_new_conn", "ws_rtt <= 0.5 x http_pooled"}, where


@pytest.mark.parametrize("block", [1, 3])
def test_round_trips_make_the_same_number_of_requests_per_transport(block: int) -> None:
    from orchestrator.sim import SimConfig, SimServer

    with SimServer(SimConfig()).run_in_thread() as sim:
        samples = asyncio.run(round_trips(sim.base_url, 7, block=block))
        # 10 warm-up requests each, then the 7 measured
        answered = len(sim.requests)
    assert {name: len(v) for name, v in samples.items()} == {
        "ws": 7, "http_pooled": 7, "http_new_conn": 7}
    assert answered == 3 * 17


def test_tls_leg_without_trustme_is_skipped_with_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "trustme", None)  # import trustme raises ImportError
    result = tls_round_trips(3)
    assert list(result) == ["skipped"] and "trustme" in result["skipped"]
