"""Score a parsed diff against the risky-code patterns (see ``patterns.py``)."""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from orchestrator.security.diff import FileChange, ParsedDiff
from orchestrator.security.literals import holds_any
from orchestrator.security.patterns import PATTERNS, Pattern, languages_match
from orchestrator.security.signals import CONDITION, DEFINITION, GUARD, SECURITY_FUNCTION

_DOC_SUFFIXES = frozenset({".md", ".rst", ".txt", ".po", ".pot", ".csv", ".svg", ".lock"})
_CONTEXT_FACTOR = 0.5
# Untrusted input is the other half of "a check was added next to it": full weight in context.
_FULL_IN_CONTEXT = frozenset({"input-source"})
_GUARD_WINDOW_LINES = 3
# Unchanged lines this close to a changed line are part of the same statement or check.
_NEAR_LINES = 2
_NEAR_MIN_WEIGHT = 1.0
_NEAR_FACTOR = 0.25
GUARD_WEIGHT = 0.25
FUNCTION_WEIGHT = 0.25
_DEF_WORDS = re.compile(r"\b(def|class|func|function)\b")  # cheap test before DEFINITION
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


def near_context(change: FileChange, window: int = _NEAR_LINES) -> list[str]:
    """Unchanged lines within ``window`` lines of an added or removed line, in order."""
    changed = [i for i, (kind, _t) in enumerate(change.lines) if kind != " "]
    out, j = [], 0
    for i, (kind, text) in enumerate(change.lines):
        while j < len(changed) and changed[j] < i - window:
            j += 1
        if kind == " " and j < len(changed) and changed[j] <= i + window:
            out.append(text)
    return out


def function_names(change: FileChange) -> list[str]:
    """Names of the functions the change is in: git's hunk section headers and any
    definition line the hunks show (changed or not)."""
    texts = [*change.sections, *(t for _k, t in change.lines if _DEF_WORDS.search(t))]
    return [m.group(m.lastindex or 0) for t in texts if (m := DEFINITION.search(t))]


def _function_hit(change: FileChange) -> PatternHit | None:
    for name in function_names(change):
        if SECURITY_FUNCTION.search(_fold(name)):
            return PatternHit("any.security-function", "security-function", change.path,
                              "context", None, FUNCTION_WEIGHT)
    return None


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
    guarded = has_guard(change)
    context = "\n".join(change.context if guarded else near_context(change))
    texts = {False: (*_block(lines), removed, context),
             True: (*_block([_fold(t) for t in lines]), _fold(removed), _fold(context))}
    hits: list[PatternHit] = []
    for p in PATTERNS:
        if not languages_match(p, language):
            continue
        p_added, starts, p_removed, p_context = texts[p.lower]
        lits = p.literals
        index = (_first_line(p.regex, p_added, starts)
                 if p_added and holds_any(p_added, lits) else None)
        if index is not None:
            lineno = change.added[index][0]
            hits.append(PatternHit(p.id, p.category, change.path, "added", lineno, p.weight))
        if index is None and removed and holds_any(p_removed, lits) \
                and p.regex.search(p_removed):
            hits.append(PatternHit(p.id, p.category, change.path, "removed", None, p.weight))
        elif index is None and context and (factor := _context_factor(p, guarded)) \
                and holds_any(p_context, lits) and p.regex.search(p_context):
            hits.append(PatternHit(p.id, p.category, change.path, "context", None,
                                   p.weight * factor))
    if language and (hit := _function_hit(change)) is not None:
        hits.append(hit)
    return hits


def _context_factor(p: Pattern, guarded: bool) -> float:
    """How much a match on an unchanged line counts: with an added guard, any pattern on any
    context line; without one, only sinks and security APIs next to a changed line, and
    weakly (the change may have made their arguments safe, or only passed near them)."""
    if guarded:
        return 1.0 if p.category in _FULL_IN_CONTEXT else _CONTEXT_FACTOR
    # Vocabulary patterns (matched on folded names) name topics, not sinks: not counted here.
    return _NEAR_FACTOR if p.weight >= _NEAR_MIN_WEIGHT and not p.lower else 0.0


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
