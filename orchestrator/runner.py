"""Run, resume and roll back one job: build its runtime, compile the graph with a durable
checkpointer, invoke it with ``durability="sync"``, and record the outcome.

A run always starts by making the worktree agree with the last graph checkpoint, so a job
killed at any point (``kill -9`` included) resumes exactly where its state says it was.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager, nullcontext
from pathlib import Path
from typing import Any, cast

from langgraph.types import Command

from orchestrator import control
from orchestrator.budget import new_usage
from orchestrator.config import get_settings, protect_environment
from orchestrator.errors import ConfigError, GitError, JobBusy, JobError, LeaseLost, StoreError
from orchestrator.events import EventLog
from orchestrator.gateway import ModelGateway
from orchestrator.graph import build_graph
from orchestrator.jobctx import JobRuntime, WorktreeFence, known_secret_values
from orchestrator.jobstore import JobRecord, job_lock, lock_job, unlock_job
from orchestrator.notify import notify_pause
from orchestrator.policy import Policy, load_policy
from orchestrator.router import compile_matchers
from orchestrator.state import JobState
from orchestrator.verify import CommandSpec
from orchestrator.workspace import Workspace
from orchestrator.workspace.git import IDENTITY, git_text

log = logging.getLogger(__name__)

Listener = Callable[[dict[str, Any]], None]


def slugify(text: str, max_len: int = 30) -> str:
    words = re.findall(r"[a-z0-9]+", text.lower())
    return "-".join(words)[:max_len].strip("-") or "job"


def job_policy(job: JobRecord) -> Policy:
    return load_policy(job.policy, repo=Path(job.repo), overrides=job.overrides)


def open_workspace(job: JobRecord, policy: Policy) -> Workspace:
    """The job's worktree (created on first use, found again on resume)."""
    return Workspace.open_or_create(
        Path(job.repo), job.job_id, slugify(job.task), base_ref=job.base_ref,
        base_sha=job.base_sha, home=get_settings().home,
        max_file_bytes=policy.checkpoint.max_file_bytes,
    )


def _verify_specs(job: JobRecord, policy: Policy) -> list[CommandSpec]:
    if job.test_cmd:
        return [CommandSpec(name="test", cmd=job.test_cmd, timeout_s=600)]
    return [CommandSpec(name=c.name, cmd=c.cmd, timeout_s=c.timeout_s)
            for c in policy.verify.commands]


def _uses_sim(policy: Policy) -> bool:
    return any(e.base_url.startswith("sim://") for t in policy.tiers.values()
               for e in t.candidates())


def check_runnable(policy: Policy, tape: str | None, sim_url: str | None = None) -> None:
    """Refuse a job that could only get filler text (models at sim:// and no script), or
    whose script does not load: said before the job creates its record and worktree."""
    if not _uses_sim(policy) or sim_url is not None:
        return
    if tape is None:
        raise ConfigError(
            f"policy {policy.name!r} points its models at the embedded simulator (sim://), "
            "which without a script (--tape FILE) answers with filler text: point the tiers "
            "at a real provider (docs/POLICIES.md), or try `tandem demo` for a scripted run")
    from orchestrator.sim.tape import load_tape

    load_tape(tape)  # SimConfigError: the file, the line or entry, what is wrong


@contextmanager
def embedded_sim(
    policy: Policy, tape: str | None, *, synthetic_ok: bool = False
) -> Iterator[str | None]:
    """Start the simulated provider in this process when the policy points at ``sim://``.

    Without a tape the simulator can only answer with filler text, which no job can use:
    that is refused unless ``synthetic_ok`` (probes such as ``tandem models check``)."""
    if not _uses_sim(policy):
        yield None
        return
    if not synthetic_ok:
        check_runnable(policy, tape)
    from orchestrator.sim import SimConfig, SimServer

    steer = any(e.steer_supported for t in policy.tiers.values() for e in t.candidates())
    # A request the tape does not script fails at once (the job pauses and says which),
    # instead of streaming filler up to the model's output limit.
    cfg = SimConfig(tape=Path(tape) if tape else None, steer_supported=steer,
                    unmatched="error")
    with SimServer(cfg).run_in_thread() as sim:
        yield sim.base_url


@asynccontextmanager
async def checkpointer() -> AsyncIterator[Any]:
    """The graph store: Redis when configured, else SQLite under the Tandem home."""
    settings = get_settings()
    if settings.redis_url:
        from orchestrator.store.redis_saver import AsyncRedisSaver

        async with AsyncRedisSaver(settings.redis_url) as redis_saver:
            yield redis_saver
        return
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    settings.home.mkdir(parents=True, exist_ok=True)
    path = settings.sqlite_path
    try:
        async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
            await saver.setup()
            # WAL (set by the saver) + NORMAL: a killed process loses nothing; only a power
            # loss can drop the last few graph checkpoints (git still has every step).
            await saver.conn.execute(f"PRAGMA synchronous={settings.sqlite_synchronous}")
            yield saver
    except sqlite3.DatabaseError as exc:  # damaged file, full disk, read-only folder
        raise StoreError(
            f"graph state {path}: {exc}: the jobs' steps are still on their branches (git "
            "log); free disk space if it is full, else move the file aside (`sqlite3 FILE "
            ".recover` may rescue it) and start the job again") from exc


def _config(job: JobRecord) -> dict[str, Any]:
    configurable: dict[str, Any] = {"thread_id": job.job_id}
    if job.resume_checkpoint_id:
        configurable["checkpoint_id"] = job.resume_checkpoint_id
    return {"configurable": configurable}


async def run_job(
    job: JobRecord, *, resume_value: Any = None, listeners: tuple[Listener, ...] = (),
    sim_url: str | None = None, saver: Any = None, forced_tier: str | None = None,
    fence: WorktreeFence | None = None,
) -> JobRecord:
    """Run (or resume) ``job`` until it finishes or pauses; returns the updated record.
    ``forced_tier`` fixes the tier of a new job's first step (the interactive chat);
    ``fence`` is a queue worker's lease on the job (``LeaseLost`` stops the run, with
    nothing written and the job left to the worker that holds it now)."""
    fd = lock_job(job) if fence is None else await _lock_when_free(job)
    try:
        return await _run_locked(job, resume_value=resume_value, listeners=listeners,
                                 sim_url=sim_url, saver=saver, forced_tier=forced_tier,
                                 fence=fence)
    finally:
        unlock_job(fd)


async def _lock_when_free(job: JobRecord) -> int:
    """A queue worker's lock: its authority is its lease, which moves on when a worker
    stalls; the stalled one stops at its next heartbeat and lets the lock go, so the new
    holder waits for it (and is cancelled, like any job, if it loses the lease itself)."""
    while True:
        try:
            return lock_job(job)
        except JobBusy:
            await asyncio.sleep(0.25)


async def _run_locked(
    job: JobRecord, *, resume_value: Any, listeners: tuple[Listener, ...], sim_url: str | None,
    saver: Any, forced_tier: str | None, fence: WorktreeFence | None,
) -> JobRecord:
    policy = job_policy(job)
    check_runnable(policy, job.tape, sim_url)
    protect_environment()  # the verification commands run the repository's code
    job.status = "running"
    job.pause_reason = None
    job.save()
    ws = open_workspace(job, policy)
    # Saved at once: a run killed before it ends still names its worktree and branch
    # (for `rollback`, `show` and `pr`).
    job.worktree, job.branch, job.base_sha = str(ws.path), ws.branch, ws.base_sha
    job.save()
    events = EventLog(job.events_path, job.job_id, known_secrets=known_secret_values(policy))
    for listener in listeners:
        events.subscribe(listener)
    async with AsyncExitStack() as stack:
        url = sim_url or stack.enter_context(
            embedded_sim(policy, job.tape) if sim_url is None else nullcontext(None))
        gateway = ModelGateway(policy, events, job_id=job.job_id, sim_url=url)
        gateway.listeners.extend(listeners)
        stack.push_async_callback(gateway.aclose)
        stack.callback(events.close)
        await stack.enter_async_context(control.serve(job.job_id, gateway.inbox, events))
        rt = JobRuntime(job=job, policy=policy, ws=ws, events=events, gateway=gateway,
                        verify_specs=_verify_specs(job, policy), fence=fence)
        _warm_up(rt)
        store = saver if saver is not None else await stack.enter_async_context(checkpointer())
        await _invoke(job, rt, store, resume_value, forced_tier)
        if job.status == "paused":
            await notify_pause(job, policy.approvals, events)
    job.save()
    return job


def _warm_up(rt: JobRuntime) -> None:
    """One-time costs (client construction, the policy's matchers, the linter's imports)
    before the first step."""
    rt.gateway.warm_up()
    compile_matchers(rt.policy)
    if rt.policy.gate.linter:
        from orchestrator.security.linter import warm_up

        warm_up()


async def _invoke(
    job: JobRecord, rt: JobRuntime, store: Any, resume_value: Any, forced_tier: str | None = None,
) -> None:
    graph = build_graph().compile(checkpointer=store)
    config = _config(job)
    snap = await graph.aget_state(config)  # type: ignore[arg-type]
    if not snap.values:
        inp: Any = {"job_id": job.job_id, "task": job.task, "usage": new_usage(),
                    "status": "running", "forced_tier": forced_tier}
        rt.events.emit("job.start", task=job.task, policy=rt.policy.name)
    elif not snap.tasks:  # finished (`next` alone hides tasks whose writes were saved)
        _record(job, snap)
        return
    else:
        _refuse_foreign_commits(job, rt.ws, snap.values.get("checkpoint_sha"), "resuming")
        rt.sync_worktree(cast(JobState, snap.values))
        # After a rollback the graph goes on from an earlier state, whose usage predates
        # the steps rolled back: what those cost was spent all the same, and the budget
        # counts it (the record holds the job's usage up to the rollback).
        rolled_back = dict(job.budget) if job.resume_checkpoint_id and job.budget else None
        rt.carried_usage = _paused_usage(snap) or rolled_back
        inp = Command(resume=resume_value) if snap.interrupts else None
        rt.events.emit("job.resume", node=[t.name for t in snap.tasks], resume=resume_value)
    job.resume_checkpoint_id = None
    try:
        async for update in graph.astream(inp, config, context=rt,  # type: ignore[call-overload]
                                          stream_mode="updates", durability="sync"):
            _note_checkpointed(job, update)
    except LeaseLost:
        raise  # another worker runs the job now: its record and events are not ours to end
    except asyncio.CancelledError:  # Ctrl-C or SIGTERM (a worker's cancel is its own)
        if rt.fence is None:
            await _mark_interrupted(job, rt, graph, config)
        raise
    except Exception as exc:
        job.status = "failed"
        job.error = rt.redact(f"{type(exc).__name__}: {exc}")
        rt.events.emit("job.failed", error=job.error)
        job.save()
        raise
    rt.retry_push()
    _record(job, await graph.aget_state({"configurable": {"thread_id": job.job_id}}))
    rt.events.emit("job." + job.status, reason=job.pause_reason)


def _note_checkpointed(job: JobRecord, update: dict[str, Any]) -> None:
    """Keep the record's steps current as each step is checkpointed (one small file write
    per step): a run killed mid-job still shows the steps it committed."""
    for node_update in update.values():
        if isinstance(node_update, dict) and node_update.get("steps_done"):
            job.steps = list(node_update["steps_done"])
            job.head_sha = node_update.get("checkpoint_sha", job.head_sha)
            job.save()


async def _mark_interrupted(job: JobRecord, rt: JobRuntime, graph: Any, config: Any) -> None:
    """Record an interrupted run as what it is: paused, with the steps it checkpointed."""
    try:
        _record(job, await graph.aget_state(config))
    except Exception:  # the record below still says what happened
        log.debug("job %s: could not read the graph state after the interrupt", job.job_id,
                  exc_info=True)
    job.status, job.pause_reason = "paused", "interrupted"
    job.save()
    rt.events.emit("job.interrupted", steps=len(job.steps))


def _paused_usage(snap: Any) -> dict[str, Any] | None:
    """What the job had spent when a node paused mid-way (a budget or model pause): the
    graph state holds the usage from before that node, its calls are in the payload."""
    for pending in snap.interrupts or ():
        payload = pending.value
        if isinstance(payload, dict) and isinstance(payload.get("usage"), dict):
            return dict(payload["usage"])
    return None


def _record(job: JobRecord, snap: Any) -> None:
    values = snap.values or {}
    job.plan = [s["intent"] for s in values.get("plan", [])]
    job.steps = list(values.get("steps_done", []))
    job.budget = _paused_usage(snap) or dict(values.get("usage", {}))
    job.head_sha = values.get("checkpoint_sha")
    job.pr_result = values.get("pr")
    if snap.interrupts:
        payload = snap.interrupts[0].value
        job.status = "paused"
        job.pause_reason = (f"{payload.get('kind')}: {payload.get('reason')}"
                            if isinstance(payload, dict) else str(payload))
    elif snap.tasks:
        job.status = "paused"
        job.pause_reason = "interrupted"
    else:
        status = values.get("status", "done")
        job.status = "done" if status in ("done", "running") else (
            "failed" if status == "failed" else "cancelled")
        if status not in ("done", "running"):
            job.error = "; ".join(values.get("escalations", [])) or status


async def _state_after_step(job: JobRecord, step: int, store: Any) -> Any:
    """The graph state right after step ``step`` was checkpointed (the newest such point
    when the step was done more than once). Only steps up to the one the job is at: a
    later step is one an earlier rollback took off, and `resume` makes it again."""
    graph = build_graph().compile(checkpointer=store)
    current = await graph.aget_state(_config(job))  # type: ignore[arg-type]
    at_step = int((current.values or {}).get("step_index", 0))
    if step > at_step:
        valid = f"0..{at_step}" if at_step else "0"
        raise JobError(f"job {job.job_id} is at step {at_step}: roll back to {valid}")
    async for snap in graph.aget_state_history({"configurable": {"thread_id": job.job_id}}):
        values = snap.values or {}
        if values.get("step_index") == step and snap.next in (("route",), ("pr",)):
            return snap
    raise JobError(f"job {job.job_id} has no graph checkpoint after step {step} (none is "
                   f"made before its plan is done): `tandem resume {job.job_id}` first")


def _foreign_commits(ws: Workspace, since: str) -> list[tuple[str, str]]:
    """(sha, subject) of the commits on the job branch after ``since`` that Tandem did
    not make (a user's commit into the job branch), newest first. Empty when ``since`` is
    not a local commit (a checkpoint still to be fetched from another machine)."""
    try:
        out = git_text(ws.path, "log", "--format=%H%x00%ce%x00%s%x00%(trailers:key="
                       "Tandem-Squashed-From,valueonly)%x1e", f"{since}..HEAD")
    except GitError:
        return []
    found = []
    for record in out.split("\x1e"):
        fields = record.strip("\n").split("\x00")
        if len(fields) < 4:
            continue
        sha, committer, subject, squashed = fields[:4]
        if committer != IDENTITY["GIT_COMMITTER_EMAIL"] and not squashed.strip():
            found.append((sha, subject))
    return found


def _refuse_foreign_commits(
    job: JobRecord, ws: Workspace, target: str | None, doing: str
) -> None:
    """Resuming or rolling back resets the job branch to a checkpoint: commits somebody
    else made on top of it would leave the branch without a word. Refused, naming them."""
    if not target:
        return
    foreign = _foreign_commits(ws, target)
    if not foreign:
        return
    if job.status == "running":  # set by this run: it never started
        job.status, job.pause_reason = "paused", "the job branch has commits not made by Tandem"
        job.save()
    shown = ", ".join(f"{sha[:12]} {subject[:50]!r}" for sha, subject in foreign[:3])
    more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
    raise JobError(
        f"job {job.job_id}: branch {ws.branch} has {len(foreign)} commit(s) not made by "
        f"Tandem after checkpoint {target[:12]} ({shown}{more}); {doing} would take them off "
        f"the branch: keep them on a branch of your own (`git branch KEEP {foreign[0][0][:12]}`"
        f"), then `git -C {ws.path} reset --hard {target[:12]}` and try again")


async def rollback_job(job: JobRecord, step: int) -> str:
    """Restore the worktree and the graph to just after step ``step``; returns the sha."""
    with job_lock(job):  # a running job is said to be running, whatever its record holds
        if not job.worktree:
            raise ConfigError(f"job {job.job_id} has no worktree yet: nothing to roll back "
                              f"(`tandem resume {job.job_id}` starts it)")
        return await _rollback_locked(job, step)


async def _rollback_locked(job: JobRecord, step: int) -> str:
    ws = open_workspace(job, job_policy(job))
    # The graph's own record of the step says which commit it checkpointed: the branch
    # may no longer show it (squashed for the PR, or taken off by an earlier rollback).
    async with checkpointer() as store:
        target = await _state_after_step(job, step, store)
    values = target.values or {}
    sha = values.get("checkpoint_sha") or ws.base_sha
    _refuse_foreign_commits(job, ws, sha, f"rolling back to step {step}")
    _warn_dropped(job, ws, sha)
    found = ws.worktree_tree()  # uncommitted changes: kept, not reset away unseen
    if found is not None:
        kept, ref = ws.keep_tree(found, job.job_id, f"rollback to step {step}")
        log.warning("job %s: the worktree had uncommitted changes; kept as commit %s (%s): "
                    "`git -C %s diff HEAD %s`", job.job_id, kept[:12], ref, ws.path, kept[:12])
    ws.restore(sha)
    job.resume_checkpoint_id = str(target.config["configurable"]["checkpoint_id"])
    job.status = "paused"
    job.pause_reason = f"rolled back to step {step}"
    job.head_sha = sha
    # The record follows the state the job goes on from: its steps, and no pull request
    # (one made before holds the steps taken off).
    job.steps = list(values.get("steps_done", []))
    job.pr_result = None
    job.save()
    return sha


def _warn_dropped(job: JobRecord, ws: Workspace, sha: str) -> None:
    """What the rollback takes off the branch (the commits after ``sha``), said where it
    can be found again."""
    for c in ws.list_checkpoints(since=sha):
        log.warning("job %s: rollback drops %s (step %s: %s)", job.job_id, c.sha[:12],
                    c.step, c.subject)
