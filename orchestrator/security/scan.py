"""Score a parsed diff against the risky-code patterns (see ``patterns.py``)."""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from orchestrator.security.diff import FileChange, ParsedDiff
from orchestrator.security.patterns import CONDITION, GUARD, PATTERNS, languages_match

_DOC_SUFFIXES = frozenset({".md", ".rst", ".txt", ".po", ".pot", ".csv", ".svg", ".lock"})
_CONTEXT_FACTOR = 0.5
# Untrusted input is the other half of "a check was added next to it": full weight in context.
_FULL_IN_CONTEXT = frozenset({"input-source"})
_GUARD_WINDOW_LINES = 3
GUARD_WEIGHT = 0.25
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


@dataclass(frozen=True)
class PatternHit:
    pattern_id: str
    category: str
    path: str
    where: str  # "added", "removed" or "context"
    line: int | None  # new-file line for added lines
    weight: float


def has_guard(change: FileChange) -> bool:
    """Whether the change adds a condition that rejects input (raise, error return, 4xx)."""
    added = [text for _n, text in change.added]
    for i, text in enumerate(added):
        if CONDITION.search(text) and any(
            GUARD.search(t) for t in added[i : i + 1 + _GUARD_WINDOW_LINES]
        ):
            return True
    return False


def _fold(text: str) -> str:
    """Lower-cased, with camelCase split by "_": ``checkPermission`` -> ``check_permission``."""
    return _CAMEL.sub("_", text).lower()


def _first_line(pattern: re.Pattern[str], block: str, starts: list[int]) -> int | None:
    """Index of the first line of ``block`` (lines joined by newlines) that matches."""
    m = pattern.search(block)
    return None if m is None else bisect.bisect_right(starts, m.start()) - 1


def _block(lines: list[str]) -> tuple[str, list[int]]:
    starts, pos = [], 0
    for line in lines:
        starts.append(pos)
        pos += len(line) + 1
    return "\n".join(lines), starts


def _file_hits(change: FileChange) -> list[PatternHit]:
    if PurePosixPath(change.path).suffix.lower() in _DOC_SUFFIXES:
        return []
    language = change.language
    lines = [text for _n, text in change.added]
    removed = "\n".join(change.removed)
    context = "\n".join(change.context) if has_guard(change) else ""
    texts = {False: (*_block(lines), removed, context),
             True: (*_block([_fold(t) for t in lines]), _fold(removed), _fold(context))}
    hits: list[PatternHit] = []
    for p in PATTERNS:
        if not languages_match(p, language):
            continue
        p_added, starts, p_removed, p_context = texts[p.lower]
        index = _first_line(p.regex, p_added, starts) if p_added else None
        if index is not None:
            lineno = change.added[index][0]
            hits.append(PatternHit(p.id, p.category, change.path, "added", lineno, p.weight))
        if index is None and removed and p.regex.search(p_removed):
            hits.append(PatternHit(p.id, p.category, change.path, "removed", None, p.weight))
        elif index is None and context and p.regex.search(p_context):
            factor = 1.0 if p.category in _FULL_IN_CONTEXT else _CONTEXT_FACTOR
            hits.append(PatternHit(p.id, p.category, change.path, "context", None,
                                   p.weight * factor))
    return hits


def scan(parsed: ParsedDiff) -> tuple[list[PatternHit], dict[str, float]]:
    """Every pattern hit, and each category's score (its strongest hit). An added check
    that rejects input counts as the weak category ``input-check``."""
    hits = [hit for change in parsed.files for hit in _file_hits(change)]
    hits += [PatternHit("any.guard-added", "input-check", c.path, "added", None, GUARD_WEIGHT)
             for c in parsed.files if c.language and has_guard(c)]
    scores: dict[str, float] = {}
    for hit in hits:
        scores[hit.category] = max(scores.get(hit.category, 0.0), hit.weight)
    return hits, scores
