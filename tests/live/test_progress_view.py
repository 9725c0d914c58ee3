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
