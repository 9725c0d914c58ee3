"""Live progress (a rich Live panel of the streaming model on a terminal, plain lines
elsewhere), the receipt table, and following a job's event log."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import click
from rich.console import Console, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from orchestrator.events import iter_events
from orchestrator.jobstore import JobRecord, running_pid
from orchestrator.security.text import printable

_TERMINAL = {"job.done", "job.paused", "job.failed", "job.cancelled"}


_STREAM_LINES = 12


class Progress:
    """Shows a job's events on stderr (stdout stays for results): one line per
    meaningful event, and the streaming model in a live panel (step, tier, model,
    tokens/s, the tail of its text) when stderr is a terminal.

    ``follow``: the events come from the job's log, where progress is recorded as
    ``tail`` events; in-process views get full progress events and skip those.
    """

    def __init__(
        self, *, enabled: bool = True, live: bool | None = None, follow: bool = False
    ) -> None:
        self.enabled = enabled
        self.console = Console(stderr=True, highlight=False)
        self.live_view = self.console.is_terminal if live is None else live
        self.follow = follow
        self._last_progress = 0.0
        self._live: Live | None = None

    def on_event(self, event: dict[str, Any]) -> None:
        if not self.enabled:
            return
        kind = event.get("type")
        if kind == "model.progress":
            self._progress(event)
            return
        if kind == "receipt" or kind in _TERMINAL:
            self._stop_live()
        line = describe(event)
        if line is not None:
            self.console.print(line)

    def _progress(self, event: dict[str, Any]) -> None:
        if event.get("tail") and not self.follow:
            return
        if self.live_view:
            if self._live is None:
                self._live = Live(console=self.console, auto_refresh=False, transient=True)
                self._live.start()
            self._live.update(stream_panel(event), refresh=True)
            return
        now = time.monotonic()
        if now - self._last_progress >= 1.0:
            self._last_progress = now
            self.console.print(describe(event))

    def _stop_live(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def close(self) -> None:
        self._stop_live()


def stream_panel(event: dict[str, Any]) -> RenderableType:
    """The live panel of one streaming generation."""
    try:
        tokens = int(event.get("tokens") or 0)
        elapsed_s = float(event.get("elapsed_s") or 0.0)
    except (TypeError, ValueError):
        tokens, elapsed_s = 0, 0.0
    speed = f" · {tokens / elapsed_s:.0f} tok/s" if elapsed_s > 0 else ""
    lines = str(event.get("text") or "").splitlines()[-_STREAM_LINES:]
    title = Text(printable(f"step {event.get('step') or '-'} · {event.get('phase')} · "
                           f"{event.get('tier')} {event.get('model')}"))
    return Panel(Text(printable("\n".join(lines), "\n\t")), title=title, title_align="left",
                 subtitle=f"{tokens} tokens{speed}", subtitle_align="right")


def describe(event: dict[str, Any]) -> str | None:
    """One human line for an event, or None for events not worth a line (unknown kinds
    included). An event without the fields its kind has (a log written by another
    version) gets its type alone, never an error that stops the view."""
    try:
        return _describe(event)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        return f"  {escape(str(event.get('type')))}"


def _x(value: Any) -> str:
    """``value`` as literal text in a markup line: brackets in a model's, a test's or a
    user's text (``[/tmp/x]``) are not tags, terminal escapes and bidi overrides in it
    are not sent to the terminal, and never an error."""
    return escape(printable(str(value), "\n\t"))


def _describe(event: dict[str, Any]) -> str | None:
    t = event.get("type")
    step = _x(event.get("step"))
    if t == "plan":
        steps = event.get("steps", [])
        return f"[bold]plan[/]: {len(steps)} steps" + "".join(
            f"\n  {i}. {_x(s['intent'])}" for i, s in enumerate(steps, 1))
    if t == "step.start":
        return (f"[bold]step {step}[/] → {_x(event.get('tier'))} ({_x(event.get('rule'))}): "
                f"{_x(event.get('intent'))}")
    if t == "model.progress":
        return (f"  … {_x(event.get('tier'))} {_x(event.get('model'))}: "
                f"{_x(event.get('tokens'))} tokens")
    if t in ("steer.received", "steer.applied", "steer.unused", "steer.restored",
             "notify.sent", "notify.failed"):
        return _describe_live(event)
    if t == "receipt":
        return _describe_receipt(event["receipt"])
    if t == "escalate":
        return (f"  [yellow]escalate[/] step {step} → {_x(event.get('to'))}: "
                f"{_x(event.get('reason'))}")
    if t == "verify":
        return _describe_verify(event)
    if t == "edit.rejected":
        return f"  [yellow]edit rejected[/]: {_x(str(event.get('error'))[:160])}"
    if t in ("job.paused", "job.failed"):
        return f"[red]{t}[/]: {_x(event.get('reason') or event.get('error'))}"
    if t == "checkpoint" and event.get("warnings"):
        return "  [yellow]checkpoint warnings[/]: " + _x("; ".join(event["warnings"])[:300])
    if t == "pr":
        where = event.get("bundle_dir") or event.get("url") or event.get("kind")
        return f"[bold]pull request[/]: {_x(where)}"
    return None


def _describe_verify(event: dict[str, Any]) -> str:
    results = event.get("results", [])
    ok = all(r.get("passed") for r in results)
    line = "  verify: " + ("[green]passed[/]" if ok else "[red]failed[/] " + _x("; ".join(
        r.get("summary", "") for r in results if not r.get("passed"))))
    if event.get("git_files_restored"):
        line += ("\n  [yellow]the commands changed git's configuration; put back[/]: "
                 + _x(", ".join(event["git_files_restored"])[:300]))
    return line


def _describe_live(event: dict[str, Any]) -> str:
    t = event.get("type")
    if t == "steer.received":
        return f"  [cyan]steer[/] ({_x(event.get('status'))}): {_x(event.get('message'))}"
    if t == "steer.applied":
        return (f"  [cyan]steered[/] via {_x(event.get('mode'))}: first token "
                f"{_x(event.get('latency_ms'))} ms after the steer")
    if t == "steer.unused":
        return (f"  [yellow]steer not used[/] ({_x(event.get('id'))}): "
                f"{_x(event.get('reason'))}: {_x(event.get('message'))}")
    if t == "steer.restored":
        return (f"  [cyan]steer kept from the last run[/] ({_x(event.get('id'))}), for the "
                f"next model call: {_x(event.get('message'))}")
    colour = "green" if t == "notify.sent" else "yellow"
    what = event.get("host") or event.get("command")
    return (f"  [{colour}]{t}[/] via {_x(event.get('via'))} {_x(what or '')} "
            f"{_x(event.get('error') or '')}")


def _describe_receipt(r: dict[str, Any]) -> str | None:
    if r["kind"] == "model_call":
        tps = r.get("tokens_per_s")
        speed = f", {tps:.0f} tok/s" if tps else ""
        return (f"  {_x(r['phase'])}: {_x(r.get('tier'))} {_x(r.get('served_model'))} "
                f"{_x(r.get('tokens_out'))} tokens{speed}")
    if r["phase"] == "gate":
        reasons = "; ".join(r.get("reasons", []))[:160]
        return f"  gate: {_x(r.get('action'))} ({_x(r.get('rule_id'))}) {_x(reasons)}"
    if r["phase"] == "checkpoint":
        return f"  checkpoint {_x(str(r.get('checkpoint_sha'))[:12])}"
    return None


_RAISE = re.compile(r"\(raise (budgets\.max_[\w.]+) to go on\)")


def next_step(job: JobRecord) -> str:
    """What to type to go on with a paused job: a budget pause names the limit to raise
    (resuming as it is would stop at the same limit again)."""
    reason = job.pause_reason or ""
    if reason.startswith("approval"):
        return f"`tandem approve {job.job_id}` or `tandem reject {job.job_id} --reason ...`"
    if reason.startswith("budget") and (m := _RAISE.search(reason)):
        return f"`tandem resume {job.job_id} -s {m.group(1)}=<a higher limit>`"
    return f"`tandem resume {job.job_id}`"


def receipts_table(job: JobRecord) -> None:
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=160)
    table = Table(title=f"job {job.job_id}: {job.status}", show_lines=False)
    for col in ("step", "phase", "tier", "rule", "action", "model", "tok in/out", "cost $",
                "tok/s", "checkpoint"):
        table.add_column(col)
    receipts = job.receipts
    for r in receipts:
        # Cells are literal text: a served model's name or a rule id with brackets is
        # not markup.
        table.add_row(*(Text(printable(cell)) for cell in (
            str(r.step or "-"), r.phase, r.tier or "-", r.rule_id or "-", r.action or "-",
            r.served_model or "-",
            f"{r.tokens_in}/{r.tokens_out}" if r.kind == "model_call" else "-",
            f"{r.cost_usd:.4f}" if r.kind == "model_call" else "-",
            f"{r.tokens_per_s:.0f}" if r.tokens_per_s else "-",
            (r.checkpoint_sha or "")[:10] or "-",
        )))
    console.print(table)
    for s in job.steps:
        for e in s.get("escalations", []):
            console.print(f"step {_x(s['step'])} escalation: {_x(e)}")
    if job.pause_reason and job.status == "paused":
        console.print(f"[yellow]paused[/]: {_x(job.pause_reason)} — {_x(next_step(job))}")
    if job.error:
        console.print(f"[red]error[/]: {_x(job.error)}")
    if job.pr_result:
        where = job.pr_result.get("bundle_dir") or job.pr_result.get("url")
        if where:
            console.print(f"pull request: {_x(where)}")
        else:  # --pr none: the work stays on the job branch
            console.print(f"pull request: none (--pr none); the work is on branch "
                          f"{_x(job.branch)}: `tandem pr {job.job_id} --pr github` (or "
                          "gitlab, bundle) delivers it")
    calls = [r for r in receipts if r.kind == "model_call"]
    cost = job.budget.get("cost_usd") or sum(r.cost_usd for r in calls)
    tokens = dict(job.budget.get("tokens") or {})
    if not tokens:  # a run that was interrupted before the graph saved its usage
        for r in calls:
            tokens[r.tier or "?"] = tokens.get(r.tier or "?", 0) + r.tokens_in + r.tokens_out
    shown = ", ".join(f"{tier} {n:,}" for tier, n in tokens.items()) or "none"
    console.print(f"cost: ${cost:.4f}  tokens: {shown}")


def follow_events(job: JobRecord, *, json_out: bool, poll_s: float = 0.2,
                  grace_s: float = 1.0) -> None:
    """Print the job's events as they are appended, until no process runs the job.

    The log holds every run of the job (a resume appends to it), so an end event is the
    end only when no run follows it: the view goes on while a process holds the job's
    run lock. A job that is not running stops the view at once when its log ends with an
    end event, or after ``grace_s`` (a run just started takes its lock in that time;
    a run killed outright left no end event)."""
    seen = 0
    progress = Progress(follow=True)
    idle_since: float | None = None
    while True:
        events = list(iter_events(job.events_path))
        for event in events[seen:]:
            if json_out:
                click.echo(json.dumps(event, default=str))
            else:
                progress.on_event(event)
        seen = len(events)
        if running_pid(job) is not None:
            idle_since = None
        else:
            now = time.monotonic()
            idle_since = now if idle_since is None else idle_since
            ended = bool(events) and events[-1].get("type") in _TERMINAL
            if ended or now - idle_since >= grace_s:
                progress.close()
                return
        time.sleep(poll_s)
