"""Path safety for model-written edits: nothing outside the worktree, nothing git owns.

A path from a model is untrusted text. ``safe_target`` turns it into an absolute path
inside the worktree or raises ``UnsafePath`` before anything is read or written.
"""

from __future__ import annotations

import os
import re
import stat
import unicodedata
from pathlib import Path, PurePosixPath

from orchestrator.errors import UnsafePath

BINARY_SNIFF_BYTES = 8000  # the same window git uses to call a file binary
_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")
# Code points HFS+ ignores in names: ".g\u200cit" is ".git" on a Mac (git's is_hfs_dotgit).
_HFS_IGNORED = dict.fromkeys(
    [0x200C, 0x200D, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x206A, 0x2070), 0xFEFF]
)


def is_git_name(part: str) -> bool:
    """True when one path component names ``.git`` on some file system git protects:
    any case, HFS+ ignorable code points, NTFS trailing dots/spaces or ``:stream``, and
    the 8.3 short name ``git~1``. Such a component in a commit is a checkout of .git."""
    name = part.translate(_HFS_IGNORED).lower().split(":", 1)[0].rstrip(" .")
    return name in (".git", "git~1")


def normalize_edit_path(raw: str) -> str:
    """The path as the model wrote it, checked lexically; returns a clean relative path."""
    path = raw.strip()
    if not path or "\0" in path:
        raise UnsafePath(f"refused edit path {raw!r}: empty or contains a NUL byte")
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in path):
        raise UnsafePath(f"refused edit path {raw[:200]!r}: it contains a control character "
                         "or text that is not valid Unicode")
    if path.startswith(("/", "\\", "~")) or _DRIVE.match(path):
        raise UnsafePath(f"refused edit path {raw!r}: absolute paths are not allowed; "
                         "use a path relative to the repository root")
    parts = [p for p in PurePosixPath(path.replace("\\", "/")).parts if p != "."]
    if not parts:
        raise UnsafePath(f"refused edit path {raw!r}: it names the repository root")
    if ".." in parts:
        raise UnsafePath(f"refused edit path {raw!r}: '..' is not allowed")
    if any(is_git_name(p) for p in parts):
        raise UnsafePath(f"refused edit path {raw!r}: files under .git are not editable")
    return "/".join(parts)


def safe_target(root: Path, raw: str) -> tuple[str, Path]:
    """(relative path, absolute path) of an edit target, after every safety check.

    ``root`` must be the worktree's real path. Symlinks are followed: the target is the
    file a write would really change, and it must lie inside ``root`` and outside .git.
    """
    rel = normalize_edit_path(raw)
    real = Path(os.path.realpath(root / rel))
    try:
        real_rel = real.relative_to(root)
    except ValueError:
        raise UnsafePath(
            f"refused edit path {rel!r}: it resolves outside the worktree (through a symlink)"
        ) from None
    if not real_rel.parts or any(is_git_name(p) for p in real_rel.parts):
        raise UnsafePath(f"refused edit path {rel!r}: it resolves into .git or the root")
    _check_not_in_repository(root, rel, real_rel)
    _check_existing(rel, real)
    return real_rel.as_posix(), real


def _check_not_in_repository(root: Path, rel: str, real_rel: Path) -> None:
    """Refuse a path inside a folder with its own ``.git`` (a submodule, or a repository
    made inside the worktree): git will not commit it in this repository's tree (``git
    add`` says the path "is in submodule"), and a commit made without git would replace
    the submodule with a folder of that one file."""
    folder = root
    for part in real_rel.parts[:-1]:
        folder = folder / part
        if os.path.lexists(folder / ".git"):
            inner = folder.relative_to(root).as_posix()
            raise UnsafePath(f"refused edit path {rel!r}: it lies inside {inner!r}, a "
                             "submodule or nested git repository; its files are not "
                             "editable from this repository")


def _check_existing(rel: str, real: Path) -> None:
    try:
        st = real.lstat()
    except FileNotFoundError:
        return
    except NotADirectoryError:
        raise UnsafePath(f"refused edit path {rel!r}: a parent is a file") from None
    except OSError as exc:  # a name too long, a symlink loop: refused like the others
        raise UnsafePath(f"refused edit path {rel[:200]!r}: {exc.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise UnsafePath(f"refused edit path {rel!r}: it is a directory")
    if not stat.S_ISREG(st.st_mode):
        raise UnsafePath(f"refused edit path {rel!r}: not a regular file (device, fifo, socket)")
    if is_binary(real):
        raise UnsafePath(f"refused edit path {rel!r}: binary file; edits are text only")


def is_binary(path: Path) -> bool:
    """True when the file has a NUL byte in its first 8000 bytes (git's rule)."""
    with open(path, "rb") as fh:
        return looks_binary(fh.read(BINARY_SNIFF_BYTES))


def looks_binary(data: bytes) -> bool:
    """git's rule for content already read: a NUL byte in its first 8000 bytes."""
    return b"\0" in data[:BINARY_SNIFF_BYTES]
