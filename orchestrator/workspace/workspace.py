"""``Workspace``: one job's worktree, its edits and its checkpoints.

All reads and writes happen inside ``ws.path``; the user's repository is only asked to
add, list or remove the worktree. Destructive operations (restore) first check that git
sees ``ws.path`` as its own worktree root, so they can never fall through to an enclosing
repository.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from orchestrator.config import get_settings
from orchestrator.errors import WorkspaceError
from orchestrator.workspace import diffs, snapshot, worktree
from orchestrator.workspace import remote as remote_refs
from orchestrator.workspace.apply import DEFAULT_MAX_EDIT_BYTES, ApplyResult, prepare_edits
from orchestrator.workspace.commits import LOG_FORMAT, CheckpointInfo, parse_log
from orchestrator.workspace.edits import EditBlock
from orchestrator.workspace.git import IDENTITY, git_ok, git_text, run_git


class Workspace:
    """A job's git worktree on branch ``tandem/<slug>-<job_id>`` under the Tandem home."""

    def __init__(
        self, repo: Path, path: Path, branch: str, base_sha: str, max_file_bytes: int
    ) -> None:
        self.repo = repo
        self.path = path
        self.branch = branch
        self.base_sha = base_sha
        self.max_file_bytes = max_file_bytes
        self.max_edit_bytes = min(max_file_bytes, DEFAULT_MAX_EDIT_BYTES)

    @classmethod
    def open_or_create(
        cls,
        repo: Path,
        job_id: str,
        slug: str,
        base_ref: str = "HEAD",
        home: Path | None = None,
        max_file_bytes: int = snapshot.DEFAULT_MAX_FILE_BYTES,
    ) -> Workspace:
        """The job's workspace: found if it exists (a resumed job), else created.

        ``max_file_bytes`` is the checkpoint size cap: bigger files are left out with a
        warning.
        """
        repo = Path(os.path.realpath(repo))
        repo_common = worktree.common_dir(repo)
        job_id = worktree.check_job_id(job_id)
        branch = f"tandem/{worktree.slugify(slug)}-{job_id}"
        home = home if home is not None else get_settings().home
        path = Path(os.path.realpath(home / "worktrees" / job_id))
        if path.exists():
            worktree.attach_existing(path, repo_common, branch)
            base = worktree.read_base(path, repo, branch, base_ref)
        else:
            base = worktree.add_worktree(repo, path, branch, base_ref)
        return cls(repo, path, branch, base, max_file_bytes)

    def head(self) -> str:
        """The sha of the job branch tip."""
        return git_text(self.path, "rev-parse", "HEAD")

    def apply_edits(self, blocks: list[EditBlock]) -> ApplyResult:
        """Apply every block or none (raises UnsafePath / EditApplyError, writing nothing)."""
        return prepare_edits(self.path, blocks, self.max_edit_bytes).write()

    def diff(self, base: str | None = None) -> str:
        """Unified diff of the worktree (untracked non-ignored files included) against
        ``base`` (default: the branch tip)."""
        return diffs.worktree_diff(self.path, base or "HEAD", self.max_file_bytes)

    def changed_paths(self, base: str | None = None) -> list[str]:
        return diffs.changed_paths(self.path, base or "HEAD")

    def checkpoint(
        self,
        message: str,
        trailers: dict[str, str],
        changed_paths: list[str] | None = None,
        scan: bool = True,
        allow_empty: bool = False,
    ) -> CheckpointInfo:
        """Commit the step on the job branch; returns the head unchanged when nothing
        changed (unless ``allow_empty``).

        ``changed_paths`` are the paths the step's edits touched; ``scan`` also finds files
        that commands wrote (its cost is ``scan_s``, apart from ``commit_s``).
        """
        t0 = time.perf_counter()
        explicit = list(changed_paths or [])
        scanned = snapshot.scan_worktree(self.path) if scan else []
        seen = set(scanned)
        unseen = [p for p in explicit if p not in seen]
        ignored = snapshot.ignored_paths(self.path, unseen)
        t1 = time.perf_counter()
        wanted = [p for p in explicit if p not in ignored] + scanned
        sel = snapshot.select_paths(self.path, wanted, self.max_file_bytes)
        sel.warnings += [f"{p}: ignored by .gitignore; not included in the checkpoint"
                         for p in sorted(ignored)]
        info = snapshot.commit_paths(self.path, message, trailers, sel, allow_empty)
        t2 = time.perf_counter()
        info.skipped, info.warnings = sel.skipped, sel.warnings
        info.scan_s, info.commit_s, info.total_s = t1 - t0, t2 - t1, t2 - t0
        return info

    def restore(self, sha: str) -> None:
        """Reset the worktree (and the job branch) to ``sha``; removes untracked files.

        Only this job's commits are accepted: the base, or a descendant of it made by
        Tandem (a later checkpoint that a rollback took off the branch included).
        """
        self._guard()
        target = worktree.resolve_commit(self.path, sha)
        if not self._is_job_commit(target):
            raise WorkspaceError(f"{sha} is not a checkpoint of job branch {self.branch} "
                                 "(see `tandem jobs show` for its checkpoints)")
        git_text(self.path, "reset", "-q", "--hard", target)
        git_text(self.path, "clean", "-q", "-ffd")

    def push_checkpoint(self, remote: str, job_id: str, sha: str) -> None:
        """Force-push checkpoint ``sha`` to ``refs/tandem/jobs/<job_id>`` on ``remote``
        (raises ``CheckpointPushFailed``; nothing local changes)."""
        remote_refs.push_checkpoint(self.path, remote, job_id, sha)

    def ensure_commit(
        self, remote: str, job_id: str, sha: str, base_sha: str | None = None
    ) -> bool:
        """Fetch the job's ref from ``remote`` when ``sha`` is not here (True if fetched).

        ``base_sha`` is the job's base as its graph state records it: a worktree just
        created on this machine (no checkpoint yet) takes it over, so ``restore`` accepts
        the fetched checkpoints even when this clone's base ref has moved on.
        """
        fetched = remote_refs.ensure_commit(self.path, remote, job_id, sha)
        if base_sha and base_sha != self.base_sha:
            self._adopt_base(base_sha, sha)
        return fetched

    def _adopt_base(self, base_sha: str, sha: str) -> None:
        if self.head() != self.base_sha:
            raise WorkspaceError(f"worktree {self.path} has checkpoints on base "
                                 f"{self.base_sha[:10]} but the job started from "
                                 f"{base_sha[:10]}; remove the worktree to resume the job")
        if not git_ok(self.path, "merge-base", "--is-ancestor", base_sha, sha):
            raise WorkspaceError(f"checkpoint {sha[:10]} does not descend from the job's base "
                                 f"{base_sha[:10]} (check refs/tandem/jobs/ on the remote)")
        worktree.write_base(self.path, base_sha)
        self.base_sha = base_sha

    def rollback(self, step: int) -> str:
        """Restore to the newest checkpoint of ``step`` (0: the base); returns its sha."""
        if step == 0:
            sha = self.base_sha
        else:
            matches = [c.sha for c in self.list_checkpoints() if c.step == step]
            if not matches:
                steps = sorted({c.step for c in self.list_checkpoints() if c.step is not None})
                raise WorkspaceError(f"no checkpoint for step {step} on {self.branch} "
                                     f"(steps with checkpoints: {steps or 'none'})")
            sha = matches[0]
        self.restore(sha)
        return sha

    def list_checkpoints(self) -> list[CheckpointInfo]:
        """Checkpoints on the job branch since its base, newest first."""
        out = run_git(self.path, ["log", f"--format={LOG_FORMAT}", f"{self.base_sha}..HEAD"])
        return parse_log(out.decode("utf-8", "replace"))

    def remove(self, delete_branch: bool = False) -> None:
        """Remove the worktree (and prune); the branch stays unless ``delete_branch``."""
        worktree.remove_worktree(self.repo, self.path, self.branch, delete_branch)

    def _is_job_commit(self, sha: str) -> bool:
        if sha == self.base_sha:
            return True
        if not git_ok(self.path, "merge-base", "--is-ancestor", self.base_sha, sha):
            return False
        out = git_text(self.path, "log", "--format=%ce", f"{self.base_sha}..{sha}")
        return set(out.split()) == {IDENTITY["GIT_COMMITTER_EMAIL"]}

    def _guard(self) -> None:
        if not self.path.is_dir():
            raise WorkspaceError(f"worktree {self.path} is missing (resume the job to "
                                 "recreate it)")
        worktree.attach_existing(self.path, worktree.common_dir(self.repo), self.branch)
