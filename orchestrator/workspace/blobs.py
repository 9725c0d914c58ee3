"""Which edited files git would store differently from their bytes.

A blob is the file's bytes unless git converts them on the way in: ``.gitattributes``
(``text``/``eol`` line-ending normalisation, ``filter`` drivers such as Git LFS, ``ident``,
``working-tree-encoding``) or ``core.autocrlf``. Those files are hashed by git itself
(``hash-object`` applies the conversions by path); every other file is written in-process.
What git says about a path is kept until an edit touches a ``.gitattributes`` file.
"""

from __future__ import annotations

import os
from concurrent.futures import Executor, Future
from pathlib import Path

from orchestrator.workspace.git import run_git, split_z

_ATTRS = ("text", "eol", "crlf", "filter", "ident", "working-tree-encoding")
_NONE = {"unspecified", "unset"}


class BlobRules:
    """One worktree's answer to "does git convert this path?", asked lazily and cached."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._autocrlf: bool | None = None
        self._known: dict[str, bool] = {}
        self._asking: Future[set[str]] | None = None

    def prefetch(self, paths: list[str], executor: Executor) -> None:
        """Ask about ``paths`` in the background (an edit just wrote them; the commit
        will want the answer)."""
        self._wait()
        self._asking = executor.submit(self._converted, paths)

    def converted(self, paths: list[str]) -> set[str]:
        """The ``paths`` git would not store byte for byte."""
        self._wait()
        return self._converted(paths)

    def _converted(self, paths: list[str]) -> set[str]:
        if any(os.path.basename(p) == ".gitattributes" for p in paths):
            self._known.clear()  # the rules themselves change: ask again
        if self._autocrlf is None:
            out = run_git(self.root, ["config", "--get-regexp", r"^core\.(autocrlf|eol)$"],
                          ok_codes=(0, 1)).decode()
            self._autocrlf = any(line.split()[-1].lower() not in ("false", "lf")
                                 for line in out.splitlines() if line.strip())
        if self._autocrlf:
            return set(paths)
        unknown = sorted(p for p in paths if p not in self._known)
        if unknown:
            self._known.update(self._ask(unknown))
        return {p for p in paths if self._known[p]}

    def _wait(self) -> None:
        asking, self._asking = self._asking, None
        if asking is not None:
            asking.result()

    def _ask(self, paths: list[str]) -> dict[str, bool]:
        out = run_git(self.root, ["check-attr", "-z", "--stdin", *_ATTRS],
                      stdin=b"".join(os.fsencode(p) + b"\0" for p in paths))
        fields = split_z(out)
        answer = dict.fromkeys(paths, False)
        for i in range(0, len(fields) - 2, 3):
            path, _attr, value = fields[i:i + 3]
            if value not in _NONE and path in answer:
                answer[path] = True
        return answer


def hash_with_git(root: Path, paths: list[str]) -> dict[str, bytes]:
    """Store the worktree files ``paths`` as blobs the way git does (its conversions
    applied); returns each one's binary sha."""
    out = run_git(root, ["hash-object", "-w", "--stdin-paths"],
                  stdin=b"".join(os.fsencode(p) + b"\n" for p in paths))
    shas = out.decode().split()
    return {p: bytes.fromhex(sha) for p, sha in zip(paths, shas, strict=True)}
