"""Job handler of the chaos test: a real multi-node LangGraph graph on the fenced Redis
saver, where each node makes one git commit in the job's own repository.

Like Tandem's runner, a node first resets the repository to the commit recorded in the
graph state, so a step that crashed after committing (but before its checkpoint) is
redone cleanly instead of applied twice. Before touching the repository a node checks
that its worker still holds the job's lease: a worker that stalled past its lease (its
job taken over by another) must not move the repository under the new holder. A check
is not enough on its own (the worker can stall between the check and the git command),
so, like Tandem's runner, a worker holds the repository with a lock while it runs the
job, and one that took the job over waits for the stalled one to stop.
"""

from __future__ import annotations

import asyncio
import fcntl
import operator
import os
import subprocess
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph

from orchestrator.queue import JobContext, JobResult
from orchestrator.queue.lease import Lease

STEPS = 6
STEP_SLEEP_S = 0.4


class State(TypedDict, total=False):
    sha: str
    steps: Annotated[list[int], operator.add]


def git(repo: str, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout.strip()


def commit_step(repo: str, job_id: str, n: int, sha: str, lease: Lease) -> str:
    lease.check()  # raises LeaseLost once another worker holds the job
    git(repo, "reset", "-q", "--hard", sha)
    Path(repo, f"step{n}.txt").write_text(f"{job_id} step {n}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"{job_id} step {n}")
    return git(repo, "rev-parse", "HEAD")


def make_node(n: int, repo: str, job_id: str, lease: Lease) -> Any:
    async def node(state: State) -> State:
        work = asyncio.ensure_future(
            asyncio.to_thread(commit_step, repo, job_id, n, state["sha"], lease))
        try:
            sha = await asyncio.shield(work)
        except asyncio.CancelledError:  # lease lost: the git commands finish before we go
            await asyncio.wait([work])
            raise
        await asyncio.sleep(STEP_SLEEP_S)
        return {"sha": sha, "steps": [n]}

    return node


async def hold_repo(repo: str) -> int:
    """The repository for this worker alone, as Tandem's job lock does for a worktree: a
    worker that stalled past its lease may still be between its lease check and a git
    command; the worker that took the job over waits until the stalled one has stopped."""
    fd = os.open(Path(repo, ".git", "chaos.lock"), os.O_RDWR | os.O_CREAT, 0o644)
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            await asyncio.sleep(0.1)


def build(repo: str, job_id: str, lease: Lease) -> StateGraph:
    graph = StateGraph(State)
    prev = START
    for n in range(1, STEPS + 1):
        graph.add_node(f"step{n}", make_node(n, repo, job_id, lease))
        graph.add_edge(prev, f"step{n}")
        prev = f"step{n}"
    graph.add_edge(prev, END)
    return graph


async def handle(ctx: JobContext) -> JobResult:
    fd = await hold_repo(ctx.spec["repo"])
    try:
        return await _run(ctx)
    finally:
        os.close(fd)


async def _run(ctx: JobContext) -> JobResult:
    repo = ctx.spec["repo"]
    graph = build(repo, ctx.job_id, ctx.lease).compile(checkpointer=ctx.checkpointer())
    config: Any = {"configurable": {"thread_id": ctx.job_id}}
    snap = await graph.aget_state(config)
    inp: Any = None
    if not snap.values:
        inp = {"sha": await asyncio.to_thread(git, repo, "rev-parse", "HEAD"), "steps": []}
    elif not snap.next:
        return JobResult(output={"steps": snap.values["steps"]})
    final = await graph.ainvoke(inp, config, durability="sync")
    return JobResult(output={"steps": final["steps"], "sha": final["sha"]})
