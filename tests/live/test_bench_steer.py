"""`tandem bench steer` end to end with a few steers (figures are not asserted: speed
is the benchmark's business, the shape and the routes taken are the test's)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from orchestrator.bench.steer import cli


def test_bench_steer_measures_both_modes() -> None:
    args = ["--steers", "3", "--warmup", "1", "--cli-steers", "1", "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["profile_ttft_ms"] > 0
    assert out["websocket_steer"]["applied_via"] == {"response.steer": 5}  # + 1 by the CLI
    assert out["websocket_steer"]["via_cli_process_median_ms"] > 0
    assert out["http_reissue"]["applied_via"] == {"reissue": 4}
    for mode in ("websocket_steer", "http_reissue"):
        summary = out[mode]
        assert summary["steers"] == 3
        assert 0 < summary["min_ms"] <= summary["median_ms"] <= summary["p95_ms"]
