"""The step's uncommitted edits, diffed in-process.

While the worktree is known to equal a commit (right after a checkpoint or a restore) and
every later write came through ``Workspace.apply_edits``, the diff against that commit is
exactly "each edited file's first-read content against its content now". The gate asks
for that diff after every edit; rendering it here spares two ``git`` processes per edit.
Whenever the worktree may hold other changes (a job just resumed, a checkpoint that left
files out) the record is dropped and ``git diff`` answers instead.

It also keeps what each edit wrote: the step's commit holds exactly that content (what the
gate judged), whatever a command did to the files afterwards.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from orchestrator.workspace.paths import looks_binary

_NO_EOL = "\\ No newline at end of file\n"


class PendingChanges:
    """First-read contents of the files edited since the worktree last equalled ``clean_at``."""

    def __init__(self) -> None:
        self.clean_at: str | None = None
        self._before: dict[str, tuple[bytes | None, int]] = {}
        self._written: dict[str, bytes | None] = {}

    def mark_clean(self, sha: str | None) -> None:
        """The worktree equals commit ``sha`` (None: unknown, use git)."""
        self.clean_at = sha
        self._before = {}
        self._written = {}

    def record(self, root: Path, rel: str, original: bytes | None) -> None:
        """``rel`` is about to change; ``original`` is its content at ``clean_at``."""
        if rel not in self._before:
            mode = os.stat(root / rel).st_mode if original is not None else 0o644
            self._before[rel] = (original, mode)

    def wrote(self, rel: str, content: bytes | None) -> None:
        """An edit left ``rel`` with ``content`` (None: deleted)."""
        self._written[rel] = content

    def written(self) -> dict[str, bytes | None]:
        """Each edited file's content as the last edit left it (None: deleted); files an
        edit left as they were at ``clean_at`` are not listed."""
        return {rel: data for rel, data in sorted(self._written.items())
                if data != self._before[rel][0]}

    def paths(self) -> list[str]:
        """The files edited since ``clean_at``."""
        return sorted(self._before)

    def knows(self, base: str) -> bool:
        return self.clean_at is not None and base == self.clean_at

    def diff(self, root: Path) -> str | None:
        """The unified diff against ``clean_at``, or None when a file is not plain text
        (git renders those)."""
        parts = []
        for rel in sorted(self._before):
            original, mode = self._before[rel]
            part = _file_diff(rel, original, _read(root / rel), _git_mode(mode))
            if part is None:
                return None
            parts.append(part)
        return "".join(parts)


def _git_mode(st_mode: int) -> str:
    return "100755" if st_mode & 0o100 else "100644"


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _text(data: bytes | None) -> list[str] | None:
    if data is None:
        return []
    if looks_binary(data):
        return None
    try:
        return data.decode("utf-8").splitlines(keepends=True)
    except UnicodeDecodeError:
        return None


def _file_diff(rel: str, old: bytes | None, new: bytes | None, mode: str) -> str | None:
    if old == new:
        return ""
    old_lines, new_lines = _text(old), _text(new)
    if old_lines is None or new_lines is None:
        return None
    head = f"diff --git a/{rel} b/{rel}\n"
    if old is None:
        head += "new file mode 100644\n"
    elif new is None:
        head += f"deleted file mode {mode}\n"
    if not old_lines and not new_lines:
        return head
    out = [head, "--- /dev/null\n" if old is None else f"--- a/{rel}\n",
           "+++ /dev/null\n" if new is None else f"+++ b/{rel}\n"]
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    for group in matcher.get_grouped_opcodes(3):
        out.append(_hunk_header(group, old_lines))
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                out += [_line(" ", x) for x in old_lines[i1:i2]]
                continue
            out += [_line("-", x) for x in old_lines[i1:i2]]
            out += [_line("+", x) for x in new_lines[j1:j2]]
    return "".join(out)


def _line(kind: str, text: str) -> str:
    return kind + text if text.endswith("\n") else kind + text + "\n" + _NO_EOL


def _hunk_header(group: list[tuple[str, int, int, int, int]], old_lines: list[str]) -> str:
    i1, i2 = group[0][1], group[-1][2]
    j1, j2 = group[0][3], group[-1][4]
    section = _section(old_lines, i1)
    return f"@@ -{_range(i1, i2)} +{_range(j1, j2)} @@{' ' + section if section else ''}\n"


def _range(start: int, stop: int) -> str:
    """git's hunk range: ``start,count`` (1-based; ``start`` is the line before when empty)."""
    count = stop - start
    first = start + 1 if count else start
    return str(first) if count == 1 else f"{first},{count}"


def _section(old_lines: list[str], before: int) -> str:
    """git's default hunk heading: the nearest line above the hunk that starts with a
    letter, ``_`` or ``$`` (the enclosing function or class, in most languages)."""
    for line in reversed(old_lines[:before]):
        if line[:1].isalpha() or line[:1] in ("_", "$"):
            return line.rstrip()[:80].rstrip()
    return ""
