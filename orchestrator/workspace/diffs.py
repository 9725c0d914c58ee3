"""The worktree's changes against a base commit, untracked (non-ignored) files included.

Tracked changes come from ``git diff <base>``; untracked files are rendered here as
"new file" diffs, so that neither the index nor the worktree is modified to show them.
"""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator.workspace.git import run_git, split_z
from orchestrator.workspace.paths import is_binary


def untracked(root: Path) -> list[str]:
    out = run_git(root, ["ls-files", "-z", "--others", "--exclude-standard"])
    return split_z(out)


def changed_paths(root: Path, base: str) -> list[str]:
    out = run_git(root, ["diff", "--name-only", "-z", "--no-renames", base, "--"])
    return sorted(set(split_z(out)) | set(untracked(root)))


def worktree_diff(root: Path, base: str, max_file_bytes: int) -> str:
    # --text: a repository's .gitattributes can mark any file binary (``-diff``), which
    # would hide its content from whoever reads this diff (the gate, the reviewer).
    # Explicit prefixes: the gate's path rules read "a/<path>" and "b/<path>", and a
    # user's config (diff.mnemonicPrefix, diff.noprefix) would print others.
    tracked = run_git(root, ["diff", "--no-color", "--no-ext-diff", "--no-textconv", "--text",
                             "--no-renames", "--src-prefix=a/", "--dst-prefix=b/", base, "--"])
    parts = [tracked.decode("utf-8", "replace")]
    parts += [_new_file_diff(root, rel, max_file_bytes) for rel in untracked(root)]
    return "".join(parts)


def _new_file_diff(root: Path, rel: str, max_file_bytes: int) -> str:
    path = root / rel
    head = f"diff --git a/{rel} b/{rel}\nnew file mode {_mode(path)}\n"
    if path.is_symlink():
        return head + f"--- /dev/null\n+++ b/{rel}\n" + _hunk(os.readlink(path), no_eol=True)
    size = path.stat().st_size
    if size > max_file_bytes:
        return head + f"(new file of {size} bytes, over the size cap: not shown)\n"
    if is_binary(path):
        return head + f"Binary files /dev/null and b/{rel} differ\n"
    text = path.read_bytes().decode("utf-8", "replace")
    if not text:
        return head
    return head + f"--- /dev/null\n+++ b/{rel}\n" + _hunk(text, no_eol=not text.endswith("\n"))


def _hunk(text: str, no_eol: bool) -> str:
    lines = text.splitlines()
    body = "".join(f"+{line}\n" for line in lines)
    tail = "\\ No newline at end of file\n" if no_eol else ""
    return f"@@ -0,0 +1,{len(lines)} @@\n{body}{tail}"


def _mode(path: Path) -> str:
    if path.is_symlink():
        return "120000"
    return "100755" if os.access(path, os.X_OK) else "100644"
