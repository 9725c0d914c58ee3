"""``tandem chat REPO``: an interactive session on one repository.

Each typed task runs as a job (own worktree and branch, starting from the previous
task's branch, checkpoints as in unattended runs) on a background thread, while this
thread shows the streamed text and watches the keyboard. Ctrl-C during a job asks for a
redirect and sends it through the job's control socket, exactly as ``tandem steer``
does. On a terminal the keyboard is read in cbreak mode with signals off, so Ctrl-C
reaches only the chat, never the job's git or test processes.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import termios
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from orchestrator.control import send_steer
from orchestrator.errors import TandemError
from orchestrator.jobstore import JobRecord, new_job_id
from orchestrator.workspace.worktree import check_repo_root

PROMPT = "tandem> "
REDIRECT_PROMPT = "redirect> "
_CTRL_C = b"\x03"
HELP = ("type a task, or: /undo (roll back the last checkpoint), /deep or /fast (tier of "
        "the next task's first step), /quit. Ctrl-C while a task runs: redirect it.")


class StreamPrinter:
    """Prints a job's events for a person: step headers, the model's text as it streams
    (only what is new since the last update), outcomes. Thread-safe; can be held."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.held = False
        self._shown = ""
        self._lock = threading.Lock()

    def on_event(self, event: dict[str, Any]) -> None:
        with self._lock:
            if self.held:
                return
            text = self._render(event)
            if text:
                self.out.write(text)
                self.out.flush()

    def _render(self, event: dict[str, Any]) -> str | None:
        kind = event.get("type")
        if kind == "model.start":
            self._shown = ""
            return (f"\n-- {event.get('phase')} · step {event.get('step') or '-'} · "
                    f"{event.get('tier')} {event.get('model')}\n")
        if kind == "model.progress" and not event.get("tail"):
            return self._new_text(str(event.get("text") or ""))
        return _OUTCOMES.get(str(kind), lambda e: None)(event)

    def _new_text(self, text: str) -> str:
        if text.startswith(self._shown):
            new, self._shown = text[len(self._shown):], text
            return new
        self._shown = text
        return "\n[redirected]\n" + text


def _steer_line(e: dict[str, Any]) -> str:
    return f"\n[steer {e.get('mode')} · {e.get('latency_ms')} ms to the first token]\n"


_OUTCOMES: dict[str, Any] = {
    "plan": lambda e: "\nplan: " + "; ".join(s["intent"] for s in e.get("steps", [])) + "\n",
    "step.start": lambda e: f"\nstep {e.get('step')} -> {e.get('tier')}: {e.get('intent')}\n",
    "steer.applied": _steer_line,
    "steer.unused": lambda e: f"\n[steer not used: {e.get('reason')}]\n",
    "escalate": lambda e: f"\nescalate -> {e.get('to')}: {e.get('reason')}\n",
    "edit.rejected": lambda e: f"\nedit rejected: {str(e.get('error'))[:200]}\n",
    "checkpoint": lambda e: f"\ncheckpoint step {e.get('step')}: {str(e.get('sha'))[:12]}\n",
}


class ChatSession:
    """The read-eval loop; one job per task."""

    def __init__(
        self, repo: Path, *, policy: str | None = None, test_cmd: str | None = None,
        pr: str = "none", tape: str | None = None, out: TextIO | None = None,
    ) -> None:
        self.repo = repo.resolve()
        self.policy, self.test_cmd, self.pr, self.tape = policy, test_cmd, pr, tape
        self.out = out or sys.stdout
        self.printer = StreamPrinter(self.out)
        self.jobs: list[JobRecord] = []  # tasks whose branches chain, oldest first
        self.forced_tier: str | None = None

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def loop(self) -> None:
        self.repo = check_repo_root(self.repo, tool="tandem chat")
        self.say(f"tandem chat on {self.repo} — {HELP}")
        while True:
            try:
                line = input(PROMPT).strip()
            except EOFError:
                break
            except KeyboardInterrupt:
                self.say("")
                continue
            if line in ("/quit", "/exit"):
                break
            try:
                self.handle(line)
            except TandemError as exc:
                self.say(f"error: {exc}")
        self.say("bye")

    def handle(self, line: str) -> None:
        if not line:
            return
        if line == "/undo":
            self.say(self.undo())
        elif line in ("/deep", "/fast"):
            self.forced_tier = line[1:]
            self.say(f"the next task's first step goes to the {self.forced_tier} tier")
        elif line == "/help":
            self.say(HELP)
        elif line.startswith("/"):
            self.say(f"unknown command {line.split()[0]}: {HELP}")
        else:
            self.run_task(line)

    # --- one task ------------------------------------------------------------------------

    def run_task(self, task: str) -> None:
        base = self.jobs[-1].branch if self.jobs and self.jobs[-1].branch else "HEAD"
        job = JobRecord(job_id=new_job_id(), repo=str(self.repo), task=task,
                        policy=self.policy, test_cmd=self.test_cmd, base_ref=base or "HEAD",
                        pr=self.pr, tape=self.tape)
        job.save()
        forced, self.forced_tier = self.forced_tier, None
        result: dict[str, Any] = {}
        thread = threading.Thread(target=self._run, args=(job, forced, result), daemon=True)
        self.say(f"job {job.job_id}")
        thread.start()
        self._watch(job, thread)
        thread.join()
        if "error" in result:
            self.say(f"\njob {job.job_id} failed: {result['error']}")
            return
        done: JobRecord = result["job"]
        self.jobs.append(done)
        why = f" ({done.pause_reason})" if done.pause_reason else ""
        self.say(f"\njob {done.job_id}: {done.status}{why}, {len(done.steps)} step(s) "
                 f"on {done.branch}")

    def _run(self, job: JobRecord, forced: str | None, result: dict[str, Any]) -> None:
        import asyncio

        from orchestrator.runner import run_job

        try:
            result["job"] = asyncio.run(run_job(job, listeners=(self.printer.on_event,),
                                                forced_tier=forced))
        except Exception as exc:  # reported to the person; the session goes on
            result["error"] = f"{type(exc).__name__}: {exc}"

    def _watch(self, job: JobRecord, thread: threading.Thread) -> None:
        """Wait for the job, turning each Ctrl-C into a redirect."""
        fd = _stdin_fd()
        if fd is None or not os.isatty(fd):
            while thread.is_alive():
                try:
                    thread.join(0.1)
                except KeyboardInterrupt:
                    self.redirect(job)
            return
        while thread.is_alive():
            with _cbreak(fd):
                while thread.is_alive():
                    ready, _, _ = select.select([fd], [], [], 0.1)
                    if ready and os.read(fd, 1) == _CTRL_C:
                        break
            if thread.is_alive():
                self.redirect(job)

    def redirect(self, job: JobRecord) -> None:
        self.printer.held = True
        try:
            message = input("\n" + REDIRECT_PROMPT).strip()
        except (EOFError, KeyboardInterrupt):
            message = ""
        finally:
            self.printer.held = False
        if not message:
            self.say("(no redirect: carrying on)")
            return
        try:
            ack = send_steer(job.job_id, message)
        except TandemError as exc:
            self.say(f"could not steer: {exc}")
            return
        self.say(f"[{ack.get('detail')}]")

    # --- undo --------------------------------------------------------------------------

    def undo(self) -> str:
        """Roll the newest checkpoint back (across tasks: the last task's first)."""
        from orchestrator.runner import job_policy, open_workspace

        while self.jobs:
            job = self.jobs[-1]
            ws = open_workspace(job, job_policy(job))
            checkpoints = ws.list_checkpoints()
            if not checkpoints:
                self.jobs.pop()
                continue
            target = checkpoints[1].sha if len(checkpoints) > 1 else ws.base_sha
            ws.restore(target)
            job.head_sha = target
            job.save()
            if len(checkpoints) == 1:
                self.jobs.pop()
            return (f"undone: {checkpoints[0].subject!r}; {job.branch} is back at "
                    f"{target[:12]}")
        return "nothing to undo"


def _stdin_fd() -> int | None:
    try:
        return sys.stdin.fileno()
    except (OSError, ValueError):  # replaced stdin (embedding, tests)
        return None


@contextlib.contextmanager
def _cbreak(fd: int) -> Iterator[None]:
    """Keys one at a time, no echo, and Ctrl-C as a byte instead of a signal."""
    old = termios.tcgetattr(fd)
    new = termios.tcgetattr(fd)
    new[3] &= ~(termios.ICANON | termios.ECHO | termios.ISIG)
    new[6][termios.VMIN], new[6][termios.VTIME] = 1, 0
    termios.tcsetattr(fd, termios.TCSANOW, new)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)
