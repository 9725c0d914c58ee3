"""A step's commit: exactly what its edits wrote, made without asking git to look.

The edits went through ``Workspace.apply_edits``, so their paths and contents are known:
the blobs, the trees on their paths and the commit object are written in-process
(``treebuild``), then two git processes run side by side: ``update-ref`` moves the
branch (atomically, against the parent) and ``git status`` looks for anything else that
changed. The index of the edited paths is brought up to date afterwards, off the step's
path (``Workspace`` waits for it before git next reads or writes the index).

Nothing else goes into the commit. A file a command (the verification) changed after the
edit is put back to what the edit wrote, which is what the gate judged; files a command
created, changed or deleted elsewhere are put back as the commit has them. Both are
reported, so the worktree equals the commit after every step and nothing unjudged is ever
committed.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.workspace import snapshot
from orchestrator.workspace.blobs import BlobRules, hash_with_git
from orchestrator.workspace.commits import format_message
from orchestrator.workspace.git import git_text, run_git
from orchestrator.workspace.treebuild import Changes, ObjectStore, build_tree, entry_of


@dataclass
class StepCommit:
    """The commit made, the paths it changed, what was put back or left out (one line
    each), and the status entries of other paths that a command changed."""

    sha: str
    tree: str
    paths: list[str]
    warnings: list[str] = field(default_factory=list)
    others: list[tuple[str, str]] = field(default_factory=list)


def commit_step(
    root: Path, store: ObjectStore, objects_dir: Path, parent: str, parent_tree: str,
    written: dict[str, bytes | None], message: str, trailers: dict[str, str], scan: bool,
    rules: BlobRules,
) -> StepCommit:
    """Commit ``written`` (path -> content, None: deleted) on top of ``parent`` and move
    the branch. ``scan``: a command ran since the edits, so ``git status`` looks for what
    it changed (the one part whose cost grows with the repository).

    The index is not updated here: ``stage_paths`` does it (the caller may run it in the
    background); ``put_back_others`` undoes ``others``, after it."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        # The scan reads the worktree and the index, neither of which the commit changes
        # (paths of the edits are told apart below): it runs while the objects are written.
        scanning = pool.submit(snapshot.scan_entries, root, True) if scan else None
        warnings = _put_back_edits(root, written)
        sha, tree, paths, left_out = _write_commit(root, store, objects_dir, parent,
                                                   parent_tree, written, message, trailers,
                                                   rules)
        git_text(root, "update-ref", "-m", "tandem checkpoint", "HEAD", sha, parent)
        entries = scanning.result() if scanning is not None else []
    warnings += left_out
    mine = set(written)
    others = [(xy, p) for xy, p in entries if p not in mine]
    return StepCommit(sha, tree, paths, warnings, others)


def _write_commit(
    root: Path, store: ObjectStore, objects_dir: Path, parent: str, parent_tree: str,
    written: dict[str, bytes | None], message: str, trailers: dict[str, str],
    rules: BlobRules,
) -> tuple[str, str, list[str], list[str]]:
    """Blobs, trees and the commit object; returns the commit, its tree, the paths it
    changed and warnings for new files that .gitignore excludes (left out)."""
    created = [rel for rel, data in written.items() if data is not None
               and entry_of(store, parent_tree, os.fsencode(rel)) is None]
    ignored = snapshot.ignore_rules_match(root, created) if created else set()
    present = [rel for rel, data in written.items() if data is not None and rel not in ignored]
    converted = rules.converted(present)
    by_git = hash_with_git(root, sorted(converted)) if converted else {}
    changes: Changes = {}
    for rel, data in written.items():
        if rel in ignored:
            continue
        if data is None:
            changes[os.fsencode(rel)] = None
        else:
            blob = by_git[rel] if rel in by_git else store.write(b"blob", data)
            changes[os.fsencode(rel)] = (None, blob)
    tree = build_tree(store, parent_tree, changes)
    sha = snapshot.write_commit(objects_dir, tree, parent, format_message(message, trailers))
    paths = sorted(rel for rel in written if rel not in ignored)
    return sha, tree, paths, [f"{p}: ignored by .gitignore; not included in the checkpoint"
                              for p in sorted(ignored)]


def stage_paths(root: Path, paths: list[str]) -> None:
    """Bring the index of ``paths`` up to the worktree (the commit's content)."""
    snapshot.stage(root, snapshot.Selection(stage=paths))


def _put_back_edits(root: Path, written: dict[str, bytes | None]) -> list[str]:
    """Files a command changed after the edit get the edit's content back."""
    warnings = []
    for rel, data in written.items():
        path = root / rel
        try:
            now: bytes | None = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            now = None
        if now == data:
            continue
        if data is None:
            path.unlink()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        warnings.append(f"{rel}: changed by a command after the edit; the edited version "
                        "is committed (the one the gate checked)")
    return warnings


def put_back_others(root: Path, sha: str, entries: list[tuple[str, str]]) -> list[str]:
    """Undo what commands did outside the edits (the index must be up to date): tracked
    files back to commit ``sha``, untracked ones removed."""
    untracked = sorted(p for xy, p in entries if xy == "??")
    tracked = sorted(p for xy, p in entries if xy != "??")
    if tracked:
        run_git(root, ["checkout", "-q", sha, "--pathspec-from-file=-",
                       "--pathspec-file-nul"],
                stdin=b"".join(os.fsencode(p) + b"\0" for p in tracked))
    for rel in untracked:
        target = root / rel
        if target.is_symlink() or target.is_file():
            target.unlink()
    return [f"{p}: changed by a command, not by an edit; not committed, put back as the "
            "checkpoint has it" for p in [*tracked, *untracked]]
