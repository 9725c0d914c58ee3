"""``tandem policy`` and ``tandem bench routing`` through the real CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_helpers import run_cli


def test_check_ok_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "policy", "check", "strict", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["ok"] and data["name"] == "strict"
    assert "gate.risky-code" in data["gate_rules"]


def test_check_bad_file_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("extends: default\ngate_rules:\n  - id: x\n    tier: turbo\n")
    code, out, err = run_cli(capsys, "policy", "check", str(bad))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"{bad}:4: gate_rules.x.tier: unknown tier 'turbo'" in err


def test_schema_is_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run_cli(capsys, "policy", "schema")
    assert code == 0 and json.loads(out)["title"] == "Tandem policy"
    target = tmp_path / "schema.json"
    run_cli(capsys, "policy", "schema", "-o", str(target))
    assert json.loads(target.read_text())["properties"]["tiers"]


def test_explain_shows_route_and_gate(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    diff = tmp_path / "d.diff"
    diff.write_text("--- a/app/views.py\n+++ b/app/views.py\n@@ -1 +1,2 @@\n x = 1\n"
                    "+return redirect(request.GET['next'])\n")
    code, out, _ = run_cli(capsys, "policy", "explain", "--diff", str(diff),
                           "--task", "fix the open redirect after login", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["route"]["rule_id"] == "route.security-intent"
    assert data["gate"]["action"] == "escalate-redo"
    assert any(r.startswith("gate.risky-code:") for r in data["gate"]["reasons"])
    code, out, _ = run_cli(capsys, "policy", "explain", "--diff", str(diff), "--no-linter")
    assert code == 0 and "gate: tier=deep action=escalate-redo rule=gate.risky-code" in out


def test_explain_missing_diff_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "policy", "explain", "--diff", "/nonexistent.diff")
    assert code == 2 and "cannot read the diff" in err


def _item(item_id: str, diff: str, security: bool, language: str = "Python") -> dict:
    files = [ln.split(" b/")[-1] for ln in diff.splitlines() if ln.startswith("diff --git")]
    return {"item_id": item_id, "source": "x", "repo": "o/r", "language": language,
            "task_text": "", "diff": diff, "files": files, "n_files": len(files),
            "security": security, "cwe": []}


def test_bench_routing_reports_metrics_and_baselines(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def one(path: str, line: str) -> str:
        head = f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n"
        return head + f"@@ -1 +1,2 @@\n x\n+{line}\n"

    items = [
        _item("s1", one("a.py", "os.system(cmd)"), True),
        _item("s2", one("b.js", "el.innerHTML = v;"), True, "JavaScript"),
        _item("n1", one("c.py", "total = a + b"), False),
        _item("m1", one("d.py", "y = 1") + one("e.py", "z = 2"), False),
    ]
    data = tmp_path / "items.jsonl"
    data.write_text("".join(json.dumps(i) + "\n" for i in items))
    code, out, _ = run_cli(capsys, "bench", "routing", "--data", str(data), "--json")
    assert code == 0
    result = json.loads(out)
    overall = result["gate"]["overall"]
    assert overall["security_recall"] == 1.0
    assert overall["false_escalation_rate"] == 0.0
    assert overall["multi_file_recall"] == 1.0
    assert result["gate"]["language:JavaScript"]["security_recall"] == 1.0
    assert result["baselines"]["deep-only"]["overall"]["false_escalation_rate"] == 1.0
    assert result["baselines"]["fast-only"]["overall"]["security_recall"] == 0.0
    assert result["baselines"]["file-count-only"]["overall"]["multi_file_recall"] == 1.0
    assert result["timing"]["gate_median_ms_no_linter"] is not None


def test_bench_routing_bad_data_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text('{"diff": "x"}\n')
    code, _, err = run_cli(capsys, "bench", "routing", "--data", str(data))
    assert code == 2 and f"{data}:1: not a routing item" in err
