"""``Workspace``: one job's worktree, its edits and its checkpoints.

All reads and writes happen inside ``ws.path``; the user's repository is only asked to
add, list or remove the worktree. Destructive operations (restore) first check that git
sees ``ws.path`` as its own worktree root, so they can never fall through to an enclosing
repository.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from orchestrator.config import get_settings
from orchestrator.errors import GitError, WorkspaceError
from orchestrator.workspace import diffs, snapshot, stepcommit, worktree
from orchestrator.workspace import remote as remote_refs
from orchestrator.workspace.apply import DEFAULT_MAX_EDIT_BYTES, ApplyResult, prepare_edits
from orchestrator.workspace.blobs import BlobRules
from orchestrator.workspace.commits import LOG_FORMAT, CheckpointInfo, parse_log, step_of
from orchestrator.workspace.edits import EditBlock
from orchestrator.workspace.git import (
    IDENTITY,
    git_ok,
    git_text,
    run_git,
    split_z,
)
from orchestrator.workspace.gitguard import GitFilesGuard, guarded_files
from orchestrator.workspace.gitlinks import refuse_in_submodules
from orchestrator.workspace.pending import PendingChanges
from orchestrator.workspace.treebuild import ObjectStore


class Workspace:
    """A job's git worktree on branch ``tandem/<slug>-<job_id>`` under the Tandem home."""

    def __init__(
        self, repo: Path, path: Path, branch: str, base_sha: str, max_file_bytes: int,
        objects_dir: Path,
    ) -> None:
        self.repo = repo
        self.path = path
        self.branch = branch
        self.base_sha = base_sha
        self.max_file_bytes = max_file_bytes
        self.max_edit_bytes = min(max_file_bytes, DEFAULT_MAX_EDIT_BYTES)
        # The branch tip as this object last set it (None: ask git), and the edits made
        # since the worktree last equalled a commit (for the in-process diff).
        self._head: str | None = None
        self._head_tree: str | None = None  # its tree, when this object wrote it
        self._pending = PendingChanges()
        self._objects = objects_dir  # where checkpoint commit objects are written
        # Job commits this object made, or checked once (restore skips the checks).
        self._checked: set[str] = set()
        # The index update of the last step commit, still running (see ``settle``).
        self._indexing: Future[None] | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._blob_rules = BlobRules(path)  # which files git converts (.gitattributes)
        self._git_files: list[Path] | None = None  # see ``guard_git_files``

    @classmethod
    def open_or_create(
        cls,
        repo: Path,
        job_id: str,
        slug: str,
        base_ref: str = "HEAD",
        home: Path | None = None,
        max_file_bytes: int = snapshot.DEFAULT_MAX_FILE_BYTES,
        *,
        base_sha: str | None = None,
    ) -> Workspace:
        """The job's workspace: found if it exists (a resumed job), else created.

        ``max_file_bytes`` is the checkpoint size cap: bigger files are left out with a
        warning. ``base_sha`` is the job's base as its record keeps it (a resumed job): a
        job branch that was deleted is made again from it, not from ``base_ref`` (which
        may have moved on since).
        """
        repo = Path(os.path.realpath(repo))
        repo_common = worktree.common_dir(repo)
        job_id = worktree.check_job_id(job_id)
        branch = f"tandem/{worktree.slugify(slug)}-{job_id}"
        home = home if home is not None else get_settings().home
        path = Path(os.path.realpath(home / "worktrees" / job_id))
        objects = repo_common / "objects"
        if path.exists():
            worktree.attach_existing(path, repo_common, branch)
            base = worktree.read_base(path, repo, branch, base_ref, base_sha)
            return cls(repo, path, branch, base, max_file_bytes, objects)
        base = worktree.add_worktree(repo, path, branch, base_ref, base_sha)
        ws = cls(repo, path, branch, base, max_file_bytes, objects)
        ws._head = base  # a new worktree is a checkout of its base, nothing else
        ws._checked.add(base)
        ws._pending.mark_clean(base)
        return ws

    def head(self) -> str:
        """The sha of the job branch tip."""
        return git_text(self.path, "rev-parse", "HEAD")

    def apply_edits(self, blocks: list[EditBlock]) -> ApplyResult:
        """Apply every block or none (raises UnsafePath / EditApplyError, writing nothing)."""
        plan = prepare_edits(self.path, blocks, self.max_edit_bytes)
        head, tree = (self._head, self._head_tree) if self._head else (self.head(), None)
        refuse_in_submodules(self.path, self._objects, head, tree, list(plan.files))
        for rel, state in plan.files.items():
            self._pending.record(self.path, rel, state.original)
        result = plan.write()
        contents = plan.contents()
        for rel, content in contents.items():
            self._pending.wrote(rel, content)
        written = [rel for rel, content in contents.items() if content is not None]
        if written:
            self._blob_rules.prefetch(written, self._executor())
        return result

    def diff(self, base: str | None = None) -> str:
        """Unified diff of the worktree (untracked non-ignored files included) against
        ``base`` (default: the branch tip)."""
        self.settle()
        return diffs.worktree_diff(self.path, base or "HEAD", self.max_file_bytes)

    def edits_diff(self, base: str) -> str:
        """The diff of what ``apply_edits`` changed since the worktree equalled ``base``.

        Rendered in-process (no git process) when this object made or restored ``base``
        itself and the edits are plain text; otherwise it is ``diff(base)``. Files that
        something else wrote (a command) are not edits: ``diff`` shows those.
        """
        if self._pending.knows(base):
            text = self._pending.diff(self.path)
            if text is not None:
                return text
        return self.diff(base)

    def changed_paths(self, base: str | None = None) -> list[str]:
        self.settle()
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
        self.settle()
        explicit = list(changed_paths or [])
        staged: set[str] = set()
        if scan and self._head is not None and self._pending.knows(self._head):
            # The edited files are known: stage them while git scans for the others.
            explicit += self._pending.paths()
            scanned, staged = self._scan_while_staging(explicit)
        else:
            scanned = snapshot.scan_worktree(self.path) if scan else []
        seen = set(scanned)
        unseen = [p for p in explicit if p not in seen]
        ignored = snapshot.ignored_paths(self.path, unseen)
        t1 = time.perf_counter()
        wanted = [p for p in explicit if p not in ignored] + scanned
        sel = snapshot.select_paths(self.path, wanted, self.max_file_bytes)
        sel.warnings += [f"{p}: ignored by .gitignore; not included in the checkpoint"
                         for p in sorted(ignored)]
        sel.stage = [p for p in sel.stage if p not in staged]
        sel.remove += sorted(ignored & staged)  # staged ahead, but .gitignore excludes it
        parent = self._head if allow_empty else None
        info = snapshot.commit_paths(self.path, message, trailers, sel, allow_empty, parent,
                                     self._objects)
        t2 = time.perf_counter()
        info.skipped, info.warnings = sel.skipped, sel.warnings
        self._head, self._head_tree = info.sha, None
        self._checked.add(info.sha)
        # Everything changed is now in the commit, unless a path was left out (or the
        # worktree was not scanned): then only git can say what differs.
        complete = scan and not sel.skipped and not ignored
        self._pending.mark_clean(info.sha if complete else None)
        info.scan_s, info.commit_s, info.total_s = t1 - t0, t2 - t1, t2 - t0
        return info

    def commit_edits(
        self, message: str, trailers: dict[str, str], commands_ran: bool = True
    ) -> CheckpointInfo:
        """Commit the step: exactly what ``apply_edits`` wrote since the last checkpoint
        (an empty commit when nothing), in O(change). When ``commands_ran`` since the
        edits, one ``git status`` finds what they changed besides: it is put back and
        reported in ``warnings`` (see ``stepcommit``).

        When the edits are not known (the worktree was not restored by this object), or
        the repository uses SHA-256 objects, it is ``checkpoint(scan=True)``.
        """
        head = self._head
        if head is None or len(head) != 40 or not self._pending.knows(head):
            return self.checkpoint(message, trailers, scan=True, allow_empty=True)
        t0 = time.perf_counter()
        self.settle()
        store = ObjectStore(self._objects)
        parent_tree = self._head_tree or store.tree_of(head)
        written = self._pending.written()
        self._pending.mark_clean(None)  # until the commit is made and the branch moved
        made = stepcommit.commit_step(self.path, store, self._objects, head, parent_tree,
                                      written, message, trailers, scan=commands_ran,
                                      rules=self._blob_rules)
        self._head, self._head_tree = made.sha, made.tree
        self._checked.add(made.sha)
        if made.others:  # rare: a command changed files besides the edits
            stepcommit.stage_paths(self.path, made.paths)
            made.warnings += stepcommit.put_back_others(self.path, made.sha, made.others)
        elif made.paths:
            self._indexing = self._executor().submit(stepcommit.stage_paths, self.path,
                                                     made.paths)
        self._pending.mark_clean(made.sha)
        info = CheckpointInfo(made.sha, step_of(trailers), message.split("\n", 1)[0],
                              trailers, parent=head, time=int(time.time()))
        info.warnings = made.warnings
        info.commit_s = info.total_s = time.perf_counter() - t0
        return info

    def guard_git_files(self, also: Sequence[Path] = ()) -> GitFilesGuard:
        """A copy of git's configuration files for this worktree (``gitguard``), and of
        the files in ``also``, taken before commands of the repository run in it;
        ``restore_changes()`` afterwards."""
        if self._git_files is None:  # found once, while the files are still git's own
            self._git_files = guarded_files(self.path, worktree.admin_dir(self.path),
                                            self._objects.parent)
        return GitFilesGuard([*self._git_files, *also])

    def settle(self) -> None:
        """Wait for the index update a step commit left running (raises its error). Run
        before anything reads or writes this worktree's index."""
        job, self._indexing = self._indexing, None
        if job is not None:
            job.result()

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tandem-index")
        return self._pool

    def _scan_while_staging(self, known: list[str]) -> tuple[list[str], set[str]]:
        """``git status`` and ``update-index`` of the ``known`` paths side by side (two
        processes at once instead of one after the other); returns the scan and the
        paths staged."""
        sel = snapshot.select_paths(self.path, known, self.max_file_bytes)
        with ThreadPoolExecutor(max_workers=1) as pool:
            scan = pool.submit(snapshot.scan_entries, self.path, True)
            snapshot.stage(self.path, snapshot.Selection(stage=sel.stage))
            try:
                entries = scan.result()
            except GitError:
                # The staging rewrote the split index's shared part under the scan (it
                # removes the old one at once): read again, now that nothing writes.
                entries = snapshot.scan_entries(self.path)
        staged = set(sel.stage)
        excluded = self._ignored_among_staged(staged, {p: xy for xy, p in entries})
        if excluded:
            snapshot.stage(self.path, snapshot.Selection(remove=sorted(excluded)))
        return [p for _xy, p in entries if p not in excluded], staged - excluded

    def _ignored_among_staged(self, staged: set[str], status: dict[str, str]) -> set[str]:
        """Staged paths that were untracked and that .gitignore excludes (the scan may
        have read the index before or after the staging, so both views are read)."""
        untracked = {p for p in staged if p in status and status[p][0] in "?A"}
        absent = sorted(p for p in staged if p not in status)  # unchanged, or ignored
        if absent:
            at_head = set(split_z(run_git(self.path, ["ls-tree", "-z", "--name-only", "HEAD",
                                                      "--", *absent])))
            untracked |= set(absent) - at_head
        return snapshot.ignore_rules_match(self.path, sorted(untracked))

    def restore(self, sha: str) -> None:
        """Reset the worktree (and the job branch) to ``sha``; removes untracked files.

        Only this job's commits are accepted: the base, or a descendant of it made by
        Tandem (a later checkpoint that a rollback took off the branch included). Nested
        git repositories stay (one ``-f``, as git cleans by default): their history and
        files are nowhere else, and neither checkpoints nor kept trees can hold them.
        """
        if sha in self._checked and (self.path / ".git").is_file():
            target = sha  # made or checked by this object, in its own worktree
        else:
            self._guard()
            target = worktree.resolve_commit(self.path, sha)
            if not self._is_job_commit(target):
                raise WorkspaceError(f"{sha} is not a checkpoint of job branch {self.branch} "
                                     f"(see `tandem show {self.path.name}` for its checkpoints)")
        self.settle()
        self._head = None
        self._pending.mark_clean(None)
        git_text(self.path, "reset", "-q", "--hard", target)
        git_text(self.path, "clean", "-q", "-fd")
        self._head, self._head_tree = target, None
        self._pending.mark_clean(target)
        self._checked.add(target)

    def worktree_tree(self) -> str | None:
        """The tree of the worktree as it is (untracked files included, ignored ones and
        nested git repositories not), or None when it equals HEAD. Reads only."""
        self.settle()
        return snapshot.worktree_tree(self.path)

    def keep_tree(self, tree: str, job_id: str, why: str) -> tuple[str, str]:
        """Keep ``tree`` (changes found in the worktree) as a commit on top of HEAD under
        ``refs/tandem/kept/<job_id>/<time>``, before they are reset away; returns
        (sha, ref)."""
        sha = git_text(self.path, "commit-tree", tree, "-p", "HEAD", "-m",
                       f"tandem: worktree changes kept before {why}").strip()
        ref = f"refs/tandem/kept/{job_id}/{time.strftime('%Y%m%d-%H%M%S')}-{sha[:8]}"
        git_text(self.path, "update-ref", ref, sha)
        return sha, ref

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

    def list_checkpoints(self, since: str | None = None) -> list[CheckpointInfo]:
        """Checkpoints on the job branch after ``since`` (its base by default), newest
        first."""
        out = run_git(self.path, ["log", f"--format={LOG_FORMAT}",
                                  f"{since or self.base_sha}..HEAD"])
        return parse_log(out.decode("utf-8", "replace"))

    def remove(self, delete_branch: bool = False) -> None:
        """Remove the worktree (and git's record of it); the branch stays unless
        ``delete_branch``."""
        self.settle()
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
