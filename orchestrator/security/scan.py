"""Score a parsed diff against the risky-code patterns (see ``patterns.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from orchestrator.security.diff import FileChange, ParsedDiff
from orchestrator.security.patterns import CONDITION, GUARD, PATTERNS, languages_match

_DOC_SUFFIXES = frozenset({".md", ".rst", ".txt", ".po", ".pot", ".csv", ".svg", ".lock"})
_CONTEXT_FACTOR = 0.5
_GUARD_WINDOW_LINES = 3


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


def _file_hits(change: FileChange) -> list[PatternHit]:
    if PurePosixPath(change.path).suffix.lower() in _DOC_SUFFIXES:
        return []
    patterns = [p for p in PATTERNS if languages_match(p, change.language)]
    guard = has_guard(change)
    hits: list[PatternHit] = []
    for pattern in patterns:
        for lineno, text in change.added:
            if pattern.regex.search(text):
                hits.append(PatternHit(pattern.id, pattern.category, change.path, "added",
                                       lineno, pattern.weight))
                break
        if any(pattern.regex.search(text) for text in change.removed):
            hits.append(PatternHit(pattern.id, pattern.category, change.path, "removed", None,
                                   pattern.weight))
        if guard and any(pattern.regex.search(text) for text in change.context):
            hits.append(PatternHit(pattern.id, pattern.category, change.path, "context", None,
                                   pattern.weight * _CONTEXT_FACTOR))
    return hits


def scan(parsed: ParsedDiff) -> tuple[list[PatternHit], dict[str, float]]:
    """Every pattern hit, and each category's score (its strongest hit)."""
    hits = [hit for change in parsed.files for hit in _file_hits(change)]
    scores: dict[str, float] = {}
    for hit in hits:
        scores[hit.category] = max(scores.get(hit.category, 0.0), hit.weight)
    return hits, scores
