"""Making one checkpoint commit in O(change): stage only known paths, reuse the cache-tree.

Plumbing only: ``update-index`` on the changed paths (split index: only the small delta
is rewritten), ``write-tree`` (the cache-tree keeps every untouched directory's tree id),
a commit object written in-process (``gitdb``) and ``update-ref``. ``git commit`` would
lstat every tracked file and ``git add -A`` would walk the whole tree; neither is needed
when the paths are known.
When a command may have written files, ``scan_worktree`` finds them with one
``git status`` (honours .gitignore; the untracked cache keeps it cheap) and its cost is
reported on its own.
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

from gitdb import IStream, LooseObjectDB

from orchestrator.errors import GitError
from orchestrator.workspace.commits import (
    SKIPPED_TRAILER,
    CheckpointInfo,
    format_message,
    step_of,
)
from orchestrator.workspace.git import IDENTITY, git_env, git_proc, git_text, run_git, split_z

DEFAULT_MAX_FILE_BYTES = 10 * 1024 * 1024
_PLAIN_DIR = "a directory"


@dataclass
class Selection:
    """Paths to stage, and those left out with the reason why."""

    stage: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)  # now directories: drop any file entry
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def scan_worktree(root: Path) -> list[str]:
    """Every changed, deleted or new (non-ignored) path in the worktree."""
    return [path for _xy, path in scan_entries(root)]


def scan_entries(root: Path, while_staging: bool = False) -> list[tuple[str, str]]:
    """``scan_worktree`` with git's two-letter status of each path (``XY``).

    ``while_staging``: another git process writes the index meanwhile, so this one must
    not take the index lock to refresh it (``--no-optional-locks``).
    """
    lock = ["--no-optional-locks"] if while_staging else []
    out = run_git(root, [*lock, "status", "--porcelain=v1", "-z", "--untracked-files=all",
                         "--no-renames", "--ignore-submodules=none"])
    return [(entry[:2], entry[3:]) for entry in split_z(out) if len(entry) > 3]


def worktree_tree(root: Path) -> str | None:
    """The tree of the worktree as it is (untracked files included, ignored ones not),
    or None when it equals HEAD. Reads only: a scratch index, not the worktree's.

    Nested git repositories are left out, as checkpoints leave them out: a tree could hold
    only a gitlink to their HEAD (not their files), and one with no commit yet makes
    ``git add`` fail. A restore leaves them in place."""
    entries = scan_entries(root)
    if not entries:
        return None
    # With --untracked-files=all, a folder is listed on its own only when it is a nested
    # repository.
    nested = [p.rstrip("/") for xy, p in entries if xy == "??" and p.endswith("/")]
    specs = [".", *(f":(exclude,literal){p}" for p in nested)]
    steps: list[tuple[list[str], bytes | None]] = [
        (["read-tree", "HEAD"], None),
        (["add", "-A", "--pathspec-from-file=-", "--pathspec-file-nul"], _z(specs)),
        (["write-tree"], None),
    ]
    scratch = Path(git_text(root, "rev-parse", "--path-format=absolute", "--git-path",
                            "tandem-kept.index"))
    env = {**git_env(), "GIT_INDEX_FILE": str(scratch)}
    try:
        for args, stdin in steps:
            # A plain index: a split one would prune the worktree's shared index.
            proc = git_proc(root, ["-c", "core.splitIndex=false", *args], stdin=stdin, env=env)
            if proc.returncode != 0:
                raise GitError(f"git {args[0]} in {root} failed: "
                               f"{proc.stderr.decode(errors='replace').strip()[:300]}")
    finally:
        scratch.unlink(missing_ok=True)
    tree = proc.stdout.decode().strip()
    return None if tree == git_text(root, "rev-parse", "HEAD^{tree}") else tree


def ignore_rules_match(root: Path, paths: list[str]) -> set[str]:
    """The ``paths`` that .gitignore rules match, tracked or not (no index read)."""
    if not paths:
        return set()
    out = run_git(root, ["check-ignore", "--no-index", "-z", "--stdin"], stdin=_z(paths),
                  ok_codes=(0, 1))
    return set(split_z(out))


def stage(root: Path, sel: Selection) -> None:
    """Update the index for ``sel`` (removals first)."""
    if sel.remove:
        run_git(root, ["update-index", "--force-remove", "-z", "--stdin"], stdin=_z(sel.remove))
    if sel.stage:
        run_git(root, ["update-index", "--add", "--remove", "--replace", "-z", "--stdin"],
                stdin=_z(sel.stage))


def ignored_paths(root: Path, paths: list[str]) -> set[str]:
    """The untracked ones among ``paths`` that .gitignore excludes.

    ``--no-index`` keeps the common case (nothing ignored) from reading the whole index;
    only when a path matches an ignore rule is the index asked whether it is tracked.
    """
    matched = sorted(ignore_rules_match(root, paths))
    if not matched:
        return set()
    tracked = run_git(root, ["--literal-pathspecs", "ls-files", "-z", "--", *matched])
    return set(matched) - set(split_z(tracked))


def select_paths(root: Path, paths: list[str], max_file_bytes: int) -> Selection:
    """Decide, per path, whether it goes into the checkpoint (by lstat only)."""
    sel = Selection()
    for rel in sorted(set(paths)):
        reason = _skip_reason(root, rel.rstrip("/"), max_file_bytes)
        if reason == _PLAIN_DIR:
            sel.remove.append(rel.rstrip("/"))
        elif reason is None:
            sel.stage.append(rel)
        else:
            sel.skipped.append(rel)
            sel.warnings.append(f"{rel}: {reason}; not included in the checkpoint")
    return sel


def _skip_reason(root: Path, rel: str, max_file_bytes: int) -> str | None:
    try:
        st = os.lstat(root / rel)
    except (FileNotFoundError, NotADirectoryError):
        return None  # deleted: staged as a removal
    if stat.S_ISLNK(st.st_mode):
        return None
    if stat.S_ISDIR(st.st_mode):
        if (root / rel / ".git").exists():
            return "a nested git repository"
        return _PLAIN_DIR
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file (device, fifo or socket)"
    if st.st_size > max_file_bytes:
        return f"{st.st_size} bytes is over the {max_file_bytes}-byte checkpoint size cap"
    return None


def commit_paths(
    root: Path, message: str, trailers: dict[str, str], sel: Selection, allow_empty: bool,
    parent: str | None = None, objects_dir: Path | None = None,
) -> CheckpointInfo:
    """Stage ``sel.stage`` and commit on the worktree's branch (unless nothing changed).

    ``parent``: the branch tip when the caller knows it (then an empty commit is made
    without asking git for the tip; ``update-ref`` still checks it atomically).
    ``objects_dir``: the repository's object directory, where the commit object is
    written in-process (one ``git`` process fewer per checkpoint).
    """
    if parent is None or not allow_empty:
        parent, parent_tree = git_text(root, "rev-parse", "HEAD", "HEAD^{tree}").split()
    else:
        parent_tree = ""
    stage(root, sel)
    tree = git_text(root, "write-tree")
    step = step_of(trailers)
    if tree == parent_tree and not allow_empty:
        return CheckpointInfo(parent, step, message, trailers, created=False)
    if sel.skipped:
        trailers = {**trailers, SKIPPED_TRAILER: str(len(sel.skipped))}
    text = format_message(message, trailers)
    if objects_dir is not None and len(tree) == len(parent) == 40:
        sha = write_commit(objects_dir, tree, parent, text)
    else:  # SHA-256 repositories, or the object directory not known: git writes it
        sha = run_git(root, ["commit-tree", tree, "-p", parent, "-F", "-"],
                      stdin=text.encode()).decode().strip()
    git_text(root, "update-ref", "-m", "tandem checkpoint", "HEAD", sha, parent)
    subject = text.split("\n", 1)[0]
    return CheckpointInfo(sha, step, subject, trailers, parent=parent, time=int(time.time()))


def write_commit(objects_dir: Path, tree: str, parent: str, message: str) -> str:
    """Write a commit object (as ``git commit-tree`` would, with Tandem's identity) as a
    loose object; returns its sha. No ref moves: the caller runs ``update-ref``."""
    stamp = f"{int(time.time())} {time.strftime('%z')}"
    author = f"{IDENTITY['GIT_AUTHOR_NAME']} <{IDENTITY['GIT_AUTHOR_EMAIL']}> {stamp}"
    committer = f"{IDENTITY['GIT_COMMITTER_NAME']} <{IDENTITY['GIT_COMMITTER_EMAIL']}> {stamp}"
    body = (f"tree {tree}\nparent {parent}\nauthor {author}\ncommitter {committer}\n\n"
            f"{message}").encode()
    stored = LooseObjectDB(str(objects_dir)).store(IStream(b"commit", len(body), BytesIO(body)))
    return str(stored.hexsha.decode())


def _z(paths: list[str]) -> bytes:
    return b"".join(os.fsencode(p) + b"\0" for p in paths)
