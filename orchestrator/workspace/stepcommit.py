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
import shutil
import stat
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
    """Files a command changed after the edit get the edit's content back.

    Nothing is followed on the way: a command (the model's own tests) may have swapped an
    edited file, or a folder above it, for a symlink to a file outside the worktree (the
    repository's git config, say), and writing the edit "back" through it would put the
    model's text there. Links and files standing where a folder or the edited file belong
    are removed, and the file is written in place (``O_NOFOLLOW``, relative to folder
    descriptors opened without following links)."""
    warnings = []
    for rel, data in written.items():
        parts = rel.split("/")
        if _read_in_place(root, parts) == ("ok", data):
            continue
        _write_in_place(root, parts, data)
        warnings.append(f"{rel}: changed by a command after the edit; the edited version "
                        "is committed (the one the gate checked)")
    return warnings


_NOFOLLOW_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


def _open_folder(root: Path, names: list[str], *, make: bool) -> int | str:
    """A descriptor of the folder ``root/names...``, every step opened without following
    a link. When something else stands on the way (a link, a file) or a folder is
    missing: with ``make``, it is replaced (the link itself, never its target) or made;
    without, "other" or "absent" is returned."""
    fd = os.open(root, _NOFOLLOW_DIR)
    try:
        for name in names:
            try:
                nxt = os.open(name, _NOFOLLOW_DIR, dir_fd=fd)
            except OSError as exc:  # absent, a link (ELOOP) or a file (ENOTDIR)
                absent = isinstance(exc, FileNotFoundError)
                if not make:
                    os.close(fd)
                    return "absent" if absent else "other"
                if not absent:
                    os.unlink(name, dir_fd=fd)
                os.mkdir(name, dir_fd=fd)
                nxt = os.open(name, _NOFOLLOW_DIR, dir_fd=fd)
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


def _read_in_place(root: Path, parts: list[str]) -> tuple[str, bytes | None]:
    """("ok", content or None when absent) when every folder on the way is a real folder
    and the file a regular file (or absent); ("other", None) otherwise."""
    fd = _open_folder(root, parts[:-1], make=False)
    if isinstance(fd, str):
        return ("ok", None) if fd == "absent" else ("other", None)
    try:
        try:
            st = os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return "ok", None
        if not stat.S_ISREG(st.st_mode):
            return "other", None
        leaf = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW, dir_fd=fd)
        with os.fdopen(leaf, "rb") as fh:
            return "ok", fh.read()
    finally:
        os.close(fd)


def _write_in_place(root: Path, parts: list[str], data: bytes | None) -> None:
    """Make ``parts`` hold ``data`` (None: absent), replacing whatever stands in the way."""
    fd = _open_folder(root, parts[:-1], make=data is not None)
    if isinstance(fd, str):
        return  # a deletion under no folder: nothing there to delete
    try:
        leaf = parts[-1]
        try:
            st = os.stat(leaf, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        if st is not None and (data is None or not stat.S_ISREG(st.st_mode)):
            if stat.S_ISDIR(st.st_mode):
                shutil.rmtree(leaf, dir_fd=fd)
            else:
                os.unlink(leaf, dir_fd=fd)
        if data is not None:
            out = os.open(leaf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o666,
                          dir_fd=fd)
            with os.fdopen(out, "wb") as fh:
                fh.write(data)
    finally:
        os.close(fd)


def put_back_others(root: Path, sha: str, entries: list[tuple[str, str]]) -> list[str]:
    """Undo what commands did outside the edits (the index must be up to date): tracked
    files back to commit ``sha``, untracked ones removed."""
    untracked = sorted(p for xy, p in entries if xy == "??")
    tracked = sorted(p for xy, p in entries if xy != "??")
    if tracked:
        run_git(root, ["checkout", "-q", sha, "--pathspec-from-file=-",
                       "--pathspec-file-nul"],
                stdin=b"".join(os.fsencode(p) + b"\0" for p in tracked))
    removed, left = [], []
    for rel in untracked:
        if rel.endswith("/"):  # a folder listed whole (--untracked-files=all): a nested
            left.append(rel)   # repository, never deleted
            continue
        target = root / rel
        # A file, a link (not its target), a fifo. A folder now: the scan ran beside
        # ``_put_back_edits``, which replaced the link it saw with the edits' folder.
        if not target.is_dir() or target.is_symlink():
            target.unlink(missing_ok=True)
        removed.append(rel)
    return [*(f"{p}: changed by a command, not by an edit; not committed, put back as the "
              "checkpoint has it" for p in [*tracked, *removed]),
            *(f"{p}: a nested git repository; left in place, not committed" for p in left)]
