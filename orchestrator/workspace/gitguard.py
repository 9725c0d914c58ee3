"""Git's own files that a verification command must not change for Tandem's later git calls.

A verification command runs the repository's code (model-written code included) in the
job worktree, as the user. The worktree's ``.git`` file leads it to the repository's git
directory, so it can rewrite git's configuration there (or the user's global one) and make
Tandem's next git calls run commands of its choosing: a ``core.sshCommand`` or a
``credential.helper`` run by the checkpoint push, which gets the SSH agent and the
credentials the command itself was not given; a ``filter.*.clean`` driver run when a
checkpoint reads a file; a ``url.*.insteadOf`` that sends the push elsewhere. Pointing the
worktree's ``.git`` file, or its ``commondir``, at a git directory of its own does the same.
And a worktree ``HEAD`` pointed at another branch would have the next checkpoint commit
move that branch (the user's own, when it sits at the same commit) instead of the job's.

``GitFilesGuard`` takes a copy of those files before the commands run and puts back any
that changed (or were created, or removed) afterwards, before Tandem runs git again; the
caller records which. Hooks and file-system monitors are already never run
(``git.OVERRIDES``).
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from orchestrator.workspace.git import git_env


@dataclass(frozen=True)
class _Copy:
    """What was at a path: nothing, a symlink (its target) or a file (bytes and mode)."""

    link: str | None = None
    data: bytes | None = None
    mode: int = 0o644

    @classmethod
    def of(cls, path: Path) -> _Copy | None:
        try:
            st = path.lstat()
        except FileNotFoundError:
            return None
        if stat.S_ISLNK(st.st_mode):
            return cls(link=os.readlink(path), data=_read(path))
        if stat.S_ISREG(st.st_mode):
            return cls(data=_read(path), mode=stat.S_IMODE(st.st_mode))
        return cls(mode=-1)  # a directory, a FIFO, a device: noted, never written back


def _read(path: Path) -> bytes | None:
    """The content of the regular file ``path`` leads to (never a FIFO or a device, which
    could block or never end), or None."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        return path.read_bytes()
    except OSError:
        return None


def guarded_files(worktree: Path, git_dir: Path, common_dir: Path) -> list[Path]:
    """The files whose content decides what git runs in ``worktree``."""
    env = git_env()
    home = Path(env.get("HOME") or os.path.expanduser("~"))
    xdg = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
    return [
        worktree / ".git",
        git_dir / "HEAD",
        git_dir / "commondir",
        git_dir / "gitdir",
        git_dir / "config.worktree",
        common_dir / "config",
        home / ".gitconfig",
        xdg / "git" / "config",
    ]


class GitFilesGuard:
    def __init__(self, paths: list[Path]) -> None:
        self._before = {p: _Copy.of(p) for p in paths}

    def restore_changes(self) -> list[Path]:
        """Put back every guarded file that changed since the copy; returns them."""
        changed = []
        for path, before in self._before.items():
            if _Copy.of(path) != before:
                _put_back(path, before)
                changed.append(path)
        return changed


def _put_back(path: Path, before: _Copy | None) -> None:
    if before is not None and before.mode == -1:
        return  # it was no plain file to begin with: nothing to put back
    _remove(path)
    if before is None:
        return
    if before.link is not None:
        os.symlink(before.link, path)
        if before.data is not None and _read(path) != before.data:
            _write(path.resolve(), before.data, None)  # the target's content changed
        return
    assert before.data is not None
    _write(path, before.data, before.mode)


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        pass


def _write(path: Path, data: bytes, mode: int | None) -> None:
    """Replace ``path`` with ``data`` in one rename (a reader never sees half a file)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
