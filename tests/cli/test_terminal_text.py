"""What the CLI prints of model, test and provider text reaches the terminal without
its escape sequences (a title change, colours, a cleared screen)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from orchestrator.cli.progress import describe, next_step, receipts_table, stream_panel
from orchestrator.events import EventLog
from orchestrator.jobstore import JobRecord, new_job_id
from orchestrator.receipts import Receipt

ESC_TEXT = "ok\x1b]0;PWNED\x1b\\\x1b[41mred\u202e"


def test_event_lines_carry_no_escape() -> None:
    for event in ({"type": "escalate", "step": 1, "to": "deep", "reason": ESC_TEXT},
                  {"type": "edit.rejected", "error": ESC_TEXT},
                  {"type": "job.failed", "error": ESC_TEXT}):
        line = describe(event)
        assert line is not None and "\x1b" not in line and "\u202e" not in line
        assert "PWNED" in line  # shown, as inert text


def test_the_stream_panel_carries_no_escape() -> None:
    out = io.StringIO()
    Console(file=out, width=100, color_system=None).print(stream_panel(
        {"step": 1, "phase": "edit", "tier": "fast", "model": "m\x1b[2J",
         "text": f"line one\n{ESC_TEXT}", "tokens": 5, "elapsed_s": 0.1}))
    assert "\x1b" not in out.getvalue() and "line one" in out.getvalue()


def test_the_receipt_table_carries_no_escape(capsys: pytest.CaptureFixture[str]) -> None:
    job = JobRecord(job_id=new_job_id(), repo="/nonexistent", task="t", policy="default",
                    status="paused",
                    pause_reason="budget: budget cost_usd exceeded: 0.0069 of 0.006 "
                                 "(raise budgets.max_cost_usd to go on)")
    job.save()
    log = EventLog(job.events_path, job.job_id)
    log.receipt(Receipt(job_id=job.job_id, step=1, phase="edit", kind="model_call",
                        tier="fast", served_model=ESC_TEXT))
    log.close()
    receipts_table(job)
    out = capsys.readouterr().out
    assert "\x1b]0;" not in out and "PWNED" in out
    assert f"tandem resume {job.job_id} -s budgets.max_cost_usd=" in " ".join(out.split())


def test_a_budget_pause_says_which_limit_to_raise() -> None:
    job = JobRecord(job_id="j1", repo="/r", task="t", policy="default", status="paused",
                    pause_reason="budget: budget tokens.deep exceeded: 9000 of 8000 "
                                 "(raise budgets.max_tokens.deep to go on)")
    assert next_step(job) == "`tandem resume j1 -s budgets.max_tokens.deep=<a higher limit>`"
    job.pause_reason = "model: provider error"
    assert next_step(job) == "`tandem resume j1`"
