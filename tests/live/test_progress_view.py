"""The live view: a rich panel of the streaming model on a terminal, plain lines
elsewhere, and which progress events each kind of view takes."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from orchestrator.cli.progress import Progress

START = {"type": "model.start", "step": 2, "phase": "edit", "tier": "fast", "model": "spark"}


def _progress(text: str, *, tail: bool = False, tokens: int = 500) -> dict[str, Any]:
    event = {"type": "model.progress", "step": 2, "phase": "edit", "tier": "fast",
             "model": "spark", "tokens": tokens, "elapsed_s": 0.5, "text": text}
    return {**event, "tail": True} if tail else event


def _view(*, live: bool, follow: bool = False) -> tuple[Progress, io.StringIO]:
    progress = Progress(live=live, follow=follow)
    buf = io.StringIO()
    progress.console = Console(file=buf, force_terminal=live, width=100, highlight=False,
                               color_system=None)
    return progress, buf


def test_terminal_shows_a_live_panel_of_the_stream() -> None:
    progress, buf = _view(live=True)
    progress.on_event(START)
    progress.on_event(_progress("line one\nline two\ndef slugify(text):"))
    progress.on_event({"type": "steer.applied", "mode": "response.steer", "latency_ms": 71.5})
    progress.close()
    out = buf.getvalue()
    assert "step 2 · edit · fast spark" in out
    assert "500 tokens · 1000 tok/s" in out and "def slugify(text):" in out
    assert "steered via response.steer: first token 71.5 ms after the steer" in out


def test_pipes_get_plain_lines_and_in_process_views_skip_logged_tails() -> None:
    progress, buf = _view(live=False)
    progress.on_event(_progress("from the log", tail=True))
    assert buf.getvalue() == ""
    progress.on_event(_progress("full text"))
    assert buf.getvalue().strip() == "… fast spark: 500 tokens"


def test_a_follower_of_the_log_shows_the_tail_events() -> None:
    progress, buf = _view(live=True, follow=True)
    progress.on_event(_progress("tail of the text", tail=True))
    progress.close()
    assert "tail of the text" in buf.getvalue()


def test_unused_and_restored_steers_get_a_line() -> None:
    """steer.unused (a steer no model call took before the job stopped) showed nothing."""
    progress, buf = _view(live=False)
    progress.on_event({"type": "steer.unused", "id": "steer-1a2b3c4d", "message": "use tabs",
                       "kept": True, "reason": "kept for the job's next run"})
    progress.on_event({"type": "steer.restored", "id": "steer-1a2b3c4d",
                       "message": "use tabs"})
    lines = buf.getvalue().splitlines()
    assert lines == [
        "  steer not used (steer-1a2b3c4d): kept for the job's next run: use tabs",
        "  steer kept from the last run (steer-1a2b3c4d), for the next model call: use tabs"]


def test_odd_events_never_stop_the_view() -> None:
    """Text with brackets (a test's output, a model's plan, a steer) was read as markup:
    `[/tmp/x]` raised MarkupError out of the view; an event without its fields (a log of
    another version) raised KeyError. Unknown kinds show nothing."""
    progress, buf = _view(live=True)
    progress.on_event({"type": "something.new", "x": 1})
    progress.on_event({"type": "verify", "results": [
        {"passed": False, "summary": "FAILED [/tmp/x] [bold]not bold"}]})
    progress.on_event({"type": "plan", "steps": [{"intent": "fix [/] and [red]x"}]})
    progress.on_event({"type": "steer.received", "status": "queued", "message": "[/b] hi"})
    progress.on_event({"type": "receipt"})
    progress.on_event({"type": "plan", "steps": [{"no": "intent"}]})
    progress.on_event({"type": "model.progress", "step": 1, "tokens": "many",
                       "model": "[/m]", "text": "x"})
    progress.close()
    out = buf.getvalue()
    assert "FAILED [/tmp/x] [bold]not bold" in out
    assert "1. fix [/] and [red]x" in out and "(queued): [/b] hi" in out
    assert "  receipt" in out and "something.new" not in out
