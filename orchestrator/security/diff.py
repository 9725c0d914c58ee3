"""A small unified-diff reader: which files changed, and which lines were added or removed.

The gate never trusts the diff to be well formed (a model wrote the change): anything it
does not recognise is skipped, never raised on. Besides the lines, it keeps what git's
extended headers say about a file: the other side of a rename or copy, file modes
(executable, symbolic link) and binary content, which the gate judges without lines.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@ ?(.*)$")
_DIFF_GIT = re.compile(r"^diff --git a/(.*?) b/(.*)$")
_BINARY = re.compile(r"^Binary files (.+?) and (.+?) differ$")
_INDEX_MODE = re.compile(r"^index [0-9a-f]+\.\.[0-9a-f]+ ([0-7]{6})$")
_MODE_LINE = re.compile(r"^(old mode|new mode|new file mode|deleted file mode) ([0-7]{6})$")
_FROM_LINE = re.compile(r"^(?:rename|copy) from (.+)$")
EXECUTABLE_MODE = "100755"
SYMLINK_MODE = "120000"

LANGUAGES = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".ts": "javascript",
    ".tsx": "javascript",
    ".go": "go",
}


@dataclass
class FileChange:
    """The change to one file. ``added`` holds (new line number, text) pairs; ``lines``
    holds every hunk line in order as (kind, text), kind ``+``, ``-`` or a space;
    ``sections`` the hunk headers' section texts (git's enclosing function line)."""

    path: str
    added: list[tuple[int, str]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    context: list[str] = field(default_factory=list)
    lines: list[tuple[str, str]] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)
    deleted: bool = False
    new_file: bool = False
    old_path: str | None = None  # the source of a rename or copy
    old_mode: str | None = None
    new_mode: str | None = None
    binary: bool = False  # binary content: no lines to scan

    @property
    def made_executable(self) -> bool:
        """The file is executable now and was not before (or is new and executable)."""
        return self.new_mode == EXECUTABLE_MODE and self.old_mode != EXECUTABLE_MODE

    @property
    def symlink(self) -> bool:
        """The new side is a symbolic link (added, changed, or made from a file)."""
        return self.new_mode == SYMLINK_MODE and not self.deleted

    @property
    def symlink_target(self) -> str | None:
        return self.added[-1][1].strip() if self.symlink and self.added else None

    @property
    def symlink_escapes(self) -> bool:
        """The link points outside the repository, or into git's or Tandem's own folders
        (``.git`` holds hooks and config that run code; ``.tandem`` the policy)."""
        target = self.symlink_target
        if target is None:
            return False
        target = target.replace("\\", "/")
        if target.startswith(("/", "~")) or re.match(r"^[A-Za-z]:", target):
            return True
        where = posixpath.normpath(posixpath.join(posixpath.dirname(self.path), target))
        parts = [part.lower() for part in where.split("/")]
        return parts[0] in ("..", ".tandem") or ".git" in parts

    @property
    def language(self) -> str | None:
        return LANGUAGES.get(PurePosixPath(self.path).suffix.lower())

    @property
    def lines_changed(self) -> int:
        return len(self.added) + len(self.removed)

    @property
    def added_text(self) -> str:
        return "\n".join(text for _n, text in self.added)


@dataclass
class ParsedDiff:
    files: list[FileChange]

    @property
    def paths(self) -> list[str]:
        return [f.path for f in self.files]

    @property
    def touched_paths(self) -> list[str]:
        """Every path the diff touches: both sides of a rename or copy count."""
        out = [p for f in self.files for p in (f.path, f.old_path) if p]
        return list(dict.fromkeys(out))

    @property
    def lines_changed(self) -> int:
        return sum(f.lines_changed for f in self.files)

    @property
    def added_text(self) -> str:
        return "\n".join(f.added_text for f in self.files)


def _strip_prefix(path: str) -> str:
    path = path.strip().split("\t")[0]
    if path.startswith(('"a/', '"b/')):
        path = path.strip('"')
    return path[2:] if path.startswith(("a/", "b/")) else path


class _Reader:
    def __init__(self) -> None:
        self.files: list[FileChange] = []
        self.current: FileChange | None = None
        self.new_line = 0
        self.in_hunk = False

    def start(self, path: str) -> None:
        self.current = FileChange(path=path)
        self.files.append(self.current)
        self.in_hunk = False

    def header(self, line: str) -> bool:
        """Handle a file header line; False if ``line`` is not one."""
        if m := _DIFF_GIT.match(line):
            self.start(m.group(2))
            if m.group(1) != m.group(2) and self.current is not None:
                self.current.old_path = m.group(1)
        elif m := _BINARY.match(line):
            self.binary(_strip_prefix(m.group(1)), _strip_prefix(m.group(2)))
        elif line == "GIT binary patch" and self.current is not None:
            self.current.binary = True
        elif not self.in_hunk and self.current is not None and self.extended(line):
            pass
        elif line.startswith("--- ") and not self.in_hunk_body(line):
            if self.current is None or self.current.added or self.current.removed:
                self.start(_strip_prefix(line[4:]))
            self.in_hunk = False
        elif line.startswith("+++ ") and not self.in_hunk_body(line):
            target = line[4:].strip()
            if self.current is not None and target != "/dev/null":
                self.current.path = _strip_prefix(target)
            elif self.current is not None:
                self.current.deleted = True
        else:
            return False
        return True

    def binary(self, old: str, new: str) -> None:
        """``Binary files A and B differ``: with or without a ``diff --git`` line before it."""
        path = old if new == "/dev/null" else new
        if self.current is None or self.current.path != path or self.current.binary:
            self.start(path)
        assert self.current is not None
        self.current.binary = True
        self.current.deleted = new == "/dev/null"
        if old not in ("/dev/null", path):
            self.current.old_path = old

    def extended(self, line: str) -> bool:
        """git's extended header lines: modes, the source of a rename or copy."""
        assert self.current is not None
        if m := _MODE_LINE.match(line):
            kind, mode = m.groups()
            if kind in ("old mode", "deleted file mode"):
                self.current.old_mode = mode
            else:
                self.current.new_mode = mode
            self.current.deleted = self.current.deleted or kind == "deleted file mode"
            self.current.new_file = self.current.new_file or kind == "new file mode"
        elif m := _INDEX_MODE.match(line):  # an unchanged mode is only on the index line
            self.current.old_mode = self.current.old_mode or m.group(1)
            self.current.new_mode = self.current.new_mode or m.group(1)
        elif m := _FROM_LINE.match(line):
            self.current.old_path = m.group(1).strip('"')
        else:
            return False
        return True

    def in_hunk_body(self, line: str) -> bool:
        return self.in_hunk and not line.startswith(("--- a/", "+++ b/", "--- /dev/", "+++ /dev/"))

    def body(self, line: str) -> None:
        if (m := _HUNK.match(line)) and self.current is not None:
            self.new_line = int(m.group(3))
            self.in_hunk = True
            if m.group(5).strip():
                self.current.sections.append(m.group(5).strip())
            return
        if not self.in_hunk or self.current is None:
            return
        if line.startswith("+"):
            self.current.added.append((self.new_line, line[1:]))
            self.new_line += 1
        elif line.startswith("-"):
            self.current.removed.append(line[1:])
        elif line.startswith(" ") or line == "":
            self.current.context.append(line[1:])
            self.new_line += 1
        else:
            return
        self.current.lines.append((line[:1] or " ", line[1:]))


def parse_diff(diff: str) -> ParsedDiff:
    """The files of a unified diff (git or plain) with their added and removed lines."""
    reader = _Reader()
    for line in diff.splitlines():
        if line.startswith("\\"):  # "\ No newline at end of file"
            continue
        if not reader.header(line):
            reader.body(line)
    return ParsedDiff(files=[f for f in reader.files if f.path])
