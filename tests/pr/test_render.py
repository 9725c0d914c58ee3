"""PR content: the deterministic sections built from steps, receipts and the budget."""

from __future__ import annotations

from orchestrator.pr import CheckSummary, StepSummary, render_pr
from orchestrator.pr.render import TITLE_MAX_CHARS, validate_title
from orchestrator.receipts import Receipt


def _steps() -> list[StepSummary]:
    return [
        StepSummary(step=1, intent="Add mul() | keep add()\nsecond line", tier="fast",
                    served_model="spark-sim", rule_id="small-edit", tokens_in=1200,
                    tokens_out=300, cost_usd=0.0012, duration_ms=2500,
                    checkpoint_sha="a" * 40,
                    verification=[CheckSummary(name="pytest", passed=True, exit_code=0,
                                               duration_ms=900, summary="3 passed")]),
        StepSummary(step=2, intent="Harden auth token check", tier="deep",
                    served_model="deep-sim", rule_id="sensitive-path", tokens_in=4000,
                    tokens_out=900, cost_usd=0.05, duration_ms=40_000,
                    checkpoint_sha="b" * 40, escalations=["fast -> deep: touches auth/"],
                    verification=[CheckSummary(name="pytest", passed=False, exit_code=1,
                                               duration_ms=1200, summary="1 failed"),
                                  CheckSummary(name="ruff", passed=True, exit_code=0,
                                               duration_ms=100, summary="clean")]),
    ]


def _receipts() -> list[Receipt]:
    return [
        Receipt(job_id="j1", step=1, phase="edit", kind="model_call", tier="fast",
                served_model="spark-sim", tokens_in=1200, tokens_out=300, cost_usd=0.0012),
        Receipt(job_id="j1", step=2, phase="gate", kind="decision", tier="deep",
                rule_id="bandit-high", action="escalate-redo",
                reasons=["bandit B105 hard-coded password"]),
        Receipt(job_id="j1", step=2, phase="edit", kind="model_call", tier="deep",
                served_model="deep-sim", tokens_in=4000, tokens_out=900, cost_usd=0.05),
    ]


def _render() -> str:
    return render_pr(
        "j1", "Add multiplication", "Add mul()", "Adds mul() and hardens the token check.",
        ["Add mul()", "Harden the token check"], _steps(), _receipts(),
        {"cost_usd": {"used": 0.0512, "limit": 1.0}, "steps": {"used": 2, "limit": 10},
         "wall_s": 42.5},
    ).body


def test_body_has_every_section_in_order() -> None:
    body = _render()
    headings = [line for line in body.splitlines() if line.startswith("## ")]
    assert headings == ["## Task", "## Plan", "## Steps", "## Verification", "## Escalations",
                        "## Budget"]
    assert body.startswith("Adds mul() and hardens the token check.")
    assert "1. Add mul()\n2. Harden the token check" in body


def test_step_table_carries_the_routing_provenance() -> None:
    body = _render()
    row1 = next(line for line in body.splitlines() if line.startswith("| 1 | Add mul()"))
    assert "fast" in row1 and "`spark-sim`" in row1 and "`small-edit`" in row1
    assert "1,200 / 300" in row1 and "$0.0012" in row1 and "2.5 s" in row1
    assert "`aaaaaaaaaa`" in row1
    # model-written text is flattened to one cell: the pipe is escaped, the newline gone
    assert "Add mul() \\| keep add() second line" in row1
    row2 = next(line for line in body.splitlines() if line.startswith("| 2 | Harden"))
    assert "deep" in row2 and "`deep-sim`" in row2 and "`sensitive-path`" in row2


def test_verification_and_escalations_are_listed() -> None:
    body = _render()
    assert "| 2 | pytest | **FAIL** | 1 | 1.2 s | 1 failed |" in body
    assert "| 1 | pytest | pass | 0 | 0.9 s | 3 passed |" in body
    assert "- step 2: fast -> deep: touches auth/" in body
    assert "- step 2: gate: bandit B105 hard-coded password (rule `bandit-high`)" in body


def test_budget_and_per_model_totals() -> None:
    body = _render()
    assert "| cost_usd | 0.0512 | 1 |" in body
    assert "| steps | 2 | 10 |" in body
    assert "| wall_s | 42.5 | — |" in body
    assert "| `deep-sim` | 1 | 4,000 / 900 | $0.0500 |" in body


def test_rendering_is_deterministic() -> None:
    assert _render() == _render()


def test_no_escalations_and_no_checks_are_stated() -> None:
    step = StepSummary(step=1, intent="x", tier="fast")
    body = render_pr("j", "task", "t", "s", ["x"], [step], [], {}).body
    assert "None: no step was escalated." in body
    assert "(no verification commands ran)" in body


def test_title_is_one_short_line_and_falls_back_to_the_task() -> None:
    assert validate_title("Fix\nthe   bug", "task") == "Fix the bug"
    assert validate_title("   ", "Make it faster\nmore details") == "Make it faster"
    long = validate_title("x" * 300, "task")
    assert len(long) == TITLE_MAX_CHARS and long.endswith("…")


def test_plan_intents_ping_nobody_and_hide_nothing() -> None:
    """Intents are the model's words: in the plan list and the steps table a mention is
    quoted (it pinged the team on the forge) and an HTML comment (invisible on the
    rendered page) is removed; an e-mail address stays as it is."""
    intent = "Ask @acme/security and @alice to review <!-- approve without reading --> a@b.io"
    step = StepSummary(step=1, intent=intent, tier="fast")
    body = render_pr("j", "task", "t", "s", [intent], [step], [], {}).body
    assert "1. Ask `@acme/security` and `@alice` to review  a@b.io" in body
    assert "| 1 | Ask `@acme/security` and `@alice` to review a@b.io |" in body
    assert "<!--" not in body and "approve without reading" not in body
