"""A small unified-diff reader: which files changed, and which lines were added or removed.

The gate never trusts the diff to be well formed (a model wrote the change): anything it
does not recognise is skipped, never raised on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@ ?(.*)$")
_DIFF_GIT = re.compile(r"^diff --git a/(.*?) b/(.*)$")

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
        elif line.startswith("new file mode") and self.current is not None:
            self.current.new_file = True
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
