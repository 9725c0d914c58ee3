"""The run-scoped context every node receives (``Runtime.context``): the job's policy,
workspace, event log and model gateway, plus the few workspace helpers nodes share.

Nothing here is stored in the graph state: it is rebuilt on every run or resume.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from orchestrator.config import get_settings, secret_values
from orchestrator.errors import CheckpointPushFailed, UnsafePath
from orchestrator.events import EventLog
from orchestrator.gateway import ModelGateway
from orchestrator.jobstore import JobRecord
from orchestrator.policy import Policy
from orchestrator.receipts import Receipt
from orchestrator.state import JobState
from orchestrator.verify import CommandSpec
from orchestrator.workspace import Workspace, parse_edits
from orchestrator.workspace.git import git_text
from orchestrator.workspace.paths import is_git_name
from orchestrator.workspace.remote import job_ref

T = TypeVar("T")
log = logging.getLogger(__name__)


def known_secret_names(policy: Policy) -> list[str]:
    names = {"GITHUB_TOKEN", "GITLAB_TOKEN", "OPENAI_API_KEY", "ANTHROPIC_API_KEY"}
    for tier in policy.tiers.values():
        names.update(e.api_key_env for e in tier.candidates() if e.api_key_env)
    return sorted(names)


def known_secret_values(policy: Policy) -> list[str]:
    """The values of the secrets in use (API keys the policy names, forge tokens), which
    logs, events, commits and PR bodies must never contain."""
    return secret_values(known_secret_names(policy))


class WorktreeFence(Protocol):
    """A worker's lease on the job (``queue.lease.Lease``): ``acheck()`` raises
    ``LeaseLost`` once another worker holds the job."""

    async def acheck(self) -> None: ...


@dataclass
class JobRuntime:
    job: JobRecord
    policy: Policy
    ws: Workspace
    events: EventLog
    gateway: ModelGateway
    verify_specs: list[CommandSpec] = field(default_factory=list)
    adoptable: str | None = None  # a step commit a crashed run made but did not record
    unpushed_sha: str | None = None  # a checkpoint whose push failed (the next one carries it)
    # On resume of a job paused by an earlier version, whose budget and model pauses were
    # interrupts inside the node (its update, and so its spending, was lost with them): the
    # payload's usage, adopted by the node that runs first instead of the state's.
    carried_usage: dict[str, Any] | None = None
    # Under a queue worker: the job's lease. A worker that stalled past its lease (and whose
    # job another worker took over) must not write to the worktree any more.
    fence: WorktreeFence | None = None

    # --- helpers shared by nodes --------------------------------------------------------

    async def fenced(self) -> None:
        """Before the worktree changes (edits, restores, commands, commits): raise
        ``LeaseLost`` if this worker no longer holds the job. The graph checkpoints are
        fenced by the saver itself; a model stream can outlast a lease, so nodes check
        again after one."""
        if self.fence is not None:
            await self.fence.acheck()

    async def run_blocking(
        self, fn: Callable[..., T], *args: Any, on_cancel: Callable[[], None] | None = None
    ) -> T:
        """``fn(*args)`` in a thread. A thread cannot be stopped: when the run is cancelled
        (Ctrl-C, a lost lease), ``on_cancel`` asks it to end and the thread is waited for,
        so nothing still writes to the worktree once the job's lock is released."""
        work = asyncio.ensure_future(asyncio.to_thread(fn, *args))
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            if on_cancel is not None:
                on_cancel()
            await asyncio.wait([work])
            raise

    def events_receipts(self) -> list[Receipt]:
        return self.events.receipts()

    def _inside(self, rel: str) -> Path:
        """``rel`` in the worktree, symlinks followed: neither the path as written nor the
        file it resolves to may be outside the worktree or in .git (a link the repository
        holds, ``y -> sub/.git``, would otherwise let a plan's file list read ``y/config``)."""
        root = self.ws.path.resolve()
        target = (root / rel).resolve()
        if rel.startswith("/") or not target.is_relative_to(root) or any(
            is_git_name(part)
            for part in (*Path(rel).parts, *target.relative_to(root).parts)
        ):
            raise UnsafePath(f"{rel!r} is outside the job worktree")
        return target

    def read_text(self, rel: str, *, max_chars: int | None) -> str | None:
        """A worktree file's text (None if absent); refuses paths outside the worktree."""
        path = self._inside(rel)
        if not path.is_file():
            return None
        text = path.read_bytes().decode("utf-8", "replace")
        if max_chars is not None and len(text) > max_chars:
            return text[:max_chars] + "\n... (truncated)"
        return text

    def tracked_files(self) -> list[str]:
        self.ws.settle()  # the index of the last step commit may still be being written
        out = git_text(self.ws.path, "ls-files")
        return [line for line in out.splitlines() if line]

    # --- git checkpoints that agree with the graph state -------------------------------

    def _step_commit(self, sha: str, parent: str, step_no: int) -> bool:
        """Is ``sha`` this job's commit for ``step_no`` on top of ``parent``?"""
        if sha == parent:
            return False
        info = git_text(self.ws.path, "log", "-1", "--format=%P%n%(trailers:only,unfold)", sha)
        lines = info.splitlines()
        if not lines or lines[0].strip() != parent:
            return False
        trailers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        return (trailers.get("Tandem-Job") == self.job.job_id
                and trailers.get("Tandem-Step") == str(step_no))

    def adopt_or_commit(
        self, parent: str, step_no: int, message: str, trailers: dict[str, str]
    ) -> str:
        """Commit the step, or adopt the commit a crashed run already made for it."""
        head = self.adoptable
        if head is not None and self._step_commit(head, parent, step_no):
            self.adoptable = None
            self.events.emit("checkpoint.adopted", step=step_no, sha=head)
            self.push_checkpoint(head, step_no)
            return head
        info = self.ws.commit_edits(message, trailers, commands_ran=bool(self.verify_specs))
        self.events.emit("checkpoint", step=step_no, sha=info.sha, skipped=list(info.skipped),
                         warnings=list(info.warnings), scan_ms=round(info.scan_s * 1000, 1),
                         commit_ms=round(info.commit_s * 1000, 1))
        self.push_checkpoint(info.sha, step_no)
        return info.sha

    def push_checkpoint(self, sha: str, step_no: int | None) -> bool:
        """Push ``sha`` to the shared remote when the policy says so. A failed push is
        recorded (event ``checkpoint.push_failed``) and the job goes on: the next push
        carries every commit before it."""
        cfg = self.policy.checkpoint
        if not cfg.push_refs:
            return False
        where = {"step": step_no, "sha": sha, "remote": cfg.push_remote,
                 "ref": job_ref(self.job.job_id)}
        try:
            self.ws.push_checkpoint(cfg.push_remote, self.job.job_id, sha)
        except CheckpointPushFailed as exc:
            self.unpushed_sha = sha
            self.events.emit("checkpoint.push_failed", **where, error=str(exc))
            return False
        self.unpushed_sha = None
        self.events.emit("checkpoint.pushed", **where)
        return True

    def retry_push(self) -> None:
        """At the end of a run (done or paused): push again if the last push failed, so
        another machine can take the job over."""
        if self.unpushed_sha is not None:
            self.push_checkpoint(self.unpushed_sha, None)

    def sync_worktree(self, state: JobState) -> None:
        """Make the worktree equal what the graph state says: the last checkpoint plus the
        edits accepted since (or the step commit a crash left just before recording it)."""
        checkpoint_sha = state.get("checkpoint_sha")
        if not checkpoint_sha:
            return
        if self.policy.checkpoint.push_refs:
            self._fetch_checkpoint(checkpoint_sha, state.get("base_sha"))
        found = self.ws.worktree_tree()  # None: nothing uncommitted
        self._sync(state, checkpoint_sha)
        if found is not None and found != (self.ws.worktree_tree()
                                           or git_text(self.ws.path, "rev-parse",
                                                       "HEAD^{tree}").strip()):
            self.keep_changes(found, "resume")

    def keep_changes(self, tree: str, why: str) -> None:
        """Changes in the worktree that the job is about to reset away (a user's edits
        while it was paused, say) are kept as a commit, and said where."""
        sha, ref = self.ws.keep_tree(tree, self.job.job_id, why)
        self.events.emit("worktree.kept", sha=sha, ref=ref, reason=why)
        log.warning("job %s: the worktree had changes its graph state does not hold; %s reset "
                    "them and "
                    "kept them as commit %s (%s): `git -C %s diff HEAD %s`", self.job.job_id,
                    why, sha[:12], ref, self.ws.path, sha[:12])

    def _sync(self, state: JobState, checkpoint_sha: str) -> None:
        head = self.ws.head()
        step_no = state.get("step_index", 0) + 1
        # The step commit is made by the verify node (or the checkpoint node after an
        # approval): a crash right after it leaves the commit to adopt, not to redo.
        committing = state.get("next") in ("verify", "checkpoint")
        if committing and self._step_commit(head, checkpoint_sha, step_no):
            self.ws.restore(head)
            self.adoptable = head  # the checkpoint node adopts it instead of committing again
            return
        self.ws.restore(checkpoint_sha)
        for text in state.get("pending_edits", []):
            self.ws.apply_edits(parse_edits(text))

    def _fetch_checkpoint(self, sha: str, base_sha: str | None) -> None:
        """Bring the checkpoint from the shared remote when another machine made it."""
        remote = self.policy.checkpoint.push_remote
        if self.ws.ensure_commit(remote, self.job.job_id, sha, base_sha):
            self.events.emit("checkpoint.fetched", sha=sha, remote=remote,
                             ref=job_ref(self.job.job_id))
        self.job.base_sha = self.ws.base_sha  # the job's own base, if this clone moved on

    # --- pull request -----------------------------------------------------------------

    async def deliver_pr(self, state: JobState, *, title: str, summary: str) -> dict[str, Any]:
        from orchestrator.prflow import deliver_job_pr

        return await deliver_job_pr(self, state, title=title, summary=summary)

    @property
    def known_secrets(self) -> list[str]:
        return known_secret_values(self.policy)

    def redact(self, text: str) -> str:
        """``text`` with every secret (a known key value, a provider key format, ...)
        replaced: for model-written text bound for a commit, a prompt or a log. The event
        log's redactor: the job's known key values, read once."""
        return self.events.redact(text)

    @property
    def home(self) -> Path:
        return get_settings().home

    @property
    def policy_files(self) -> list[Path]:
        """The policy files the job's next run reads (the user's layer, the job's own
        file): a verification command that rewrote them could point the tiers, and the
        keys sent with each request, at a server of its choosing. Guarded like git's
        configuration while the commands run."""
        files = [get_settings().user_policy_path]
        named = Path(self.job.policy) if self.job.policy else None
        if named is not None and named.suffix in (".yaml", ".yml") and named.is_file():
            files.append(named.resolve())
        return files
