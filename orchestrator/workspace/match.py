"""Finding a SEARCH section in a file: exact first, then ignoring whitespace differences.

Texts here are LF-only (line endings are restored by the caller). A match must be unique:
replacing the first of several look-alike places silently is how edits go wrong.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

_MAX_CLOSEST_CANDIDATES = 20
_MAX_SCORED_LINES = 12


class NoMatch(Exception):
    """The SEARCH text is absent or ambiguous; ``reason`` is for the model."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class Replacement:
    text: str
    fuzzy: bool


def replace_once(content: str, search: str, replace: str) -> Replacement:
    """``content`` with the single occurrence of ``search`` replaced; raises NoMatch."""
    count = content.count(search)
    if count == 1:
        return Replacement(content.replace(search, replace, 1), fuzzy=False)
    if count > 1:
        raise NoMatch(f"the SEARCH lines match {count} places; include more surrounding "
                      "lines so that they match exactly one")
    if not content.endswith("\n") and search.endswith("\n") and content.count(search[:-1]) == 1:
        return Replacement(content.replace(search[:-1], replace.removesuffix("\n"), 1), False)
    return Replacement(_replace_fuzzy(content, search, replace), fuzzy=True)


def _norm(line: str) -> str:
    return " ".join(line.split())


def _replace_fuzzy(content: str, search: str, replace: str) -> str:
    file_lines = content.splitlines(keepends=True)
    want = [_norm(s) for s in search.splitlines()]
    while want and not want[-1]:
        want.pop()
    while want and not want[0]:
        want.pop(0)
    if not want:
        raise NoMatch("the SEARCH section holds only whitespace")
    hits = _line_hits([_norm(line) for line in file_lines], want)
    if not hits:
        raise NoMatch("the SEARCH lines were not found, not even ignoring whitespace")
    if len(hits) > 1:
        raise NoMatch("the SEARCH lines match more than one place (ignoring whitespace); "
                      "include more surrounding lines")
    start, end = hits[0], hits[0] + len(want)
    new = _reindent(search, replace, file_lines[start:end])
    if new and not new.endswith("\n") and end < len(file_lines):
        new += "\n"
    return "".join(file_lines[:start]) + new + "".join(file_lines[end:])


def _line_hits(lines: list[str], want: list[str]) -> list[int]:
    """Indexes where ``want`` starts in ``lines`` (at most two: one is all a caller needs
    to tell unique from ambiguous). A substring search on the joined lines: comparing a
    slice at every line is quadratic (minutes for a long SEARCH in a big, repetitive file)."""
    haystack = "\n" + "\n".join(lines) + "\n"
    needle = "\n" + "\n".join(want) + "\n"
    hits: list[int] = []
    at = haystack.find(needle)
    while at != -1 and len(hits) < 2:
        hits.append(haystack.count("\n", 0, at))  # a normalised line holds no "\n"
        at = haystack.find(needle, at + 1)
    return hits


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _reindent(search: str, replace: str, matched: list[str]) -> str:
    """Shift the replacement by the indentation difference between SEARCH and the file."""
    s_lines = [line for line in search.splitlines() if line.strip()]
    f_lines = [line for line in matched if line.strip()]
    if not s_lines or not f_lines:
        return replace
    s_ind, f_ind = _indent(s_lines[0]), _indent(f_lines[0])
    if s_ind == f_ind:
        return replace
    out = []
    for line in replace.splitlines(keepends=True):
        if line.strip() and line.startswith(s_ind):
            line = f_ind + line[len(s_ind) :]
        out.append(line)
    return "".join(out)


def closest_lines(content: str, search: str, context: int = 0) -> tuple[int, str]:
    """(1-based first line, text) of the file region most similar to ``search``."""
    file_lines = content.splitlines()
    want = search.splitlines()
    if not file_lines or not want:
        return 1, ""
    size = len(want)
    # Scored on the first lines only: every window costs its length, so a long SEARCH
    # over a long file would cost their product (minutes, on the event loop).
    span = min(size, _MAX_SCORED_LINES)
    target = "\n".join(want[:span])
    windows = range(max(1, len(file_lines) - size + 1))
    scored = sorted(
        windows,
        key=lambda i: -difflib.SequenceMatcher(
            None, "\n".join(file_lines[i : i + span]), target
        ).quick_ratio(),
    )[:_MAX_CLOSEST_CANDIDATES]
    best = max(
        scored,
        key=lambda i: difflib.SequenceMatcher(
            None, "\n".join(file_lines[i : i + span]), target
        ).ratio(),
    )
    lo = max(0, best - context)
    return lo + 1, "\n".join(file_lines[lo : best + size + context])
