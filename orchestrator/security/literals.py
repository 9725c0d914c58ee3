"""Required literals of a regular expression: a cheap test before the regex runs.

``required_literals(rx)`` returns strings such that every match of ``rx`` contains at least
one of them (or None when no such set is found). ``str.__contains__`` finds a literal
several times faster than the regex engine scans for a pattern without a literal prefix
(``\\b``, look-behinds, alternations), and most patterns match nowhere in most diffs: a
text that holds none of a pattern's literals is not searched at all.

The analysis reads the pattern's parse tree (the standard library's own parser) and only
ever answers with literals a match cannot avoid: a literal run in a sequence, the union
over the branches of an alternation, the body of a repeat that must occur at least once.
Case-insensitive patterns, and any construct it does not understand, give None.
"""

from __future__ import annotations

import importlib
import re
from types import ModuleType
from typing import Any

sre_parse: ModuleType | None
try:  # the parser of the ``re`` module (Python 3.11+)
    sre_c = importlib.import_module("re._constants")
    sre_parse = importlib.import_module("re._parser")
except ImportError:  # another Python: no prefilter, the same results
    sre_parse = None

MIN_LITERAL = 2  # shorter literals are found almost everywhere: no gain


def required_literals(rx: re.Pattern[str]) -> tuple[str, ...] | None:
    """Literals one of which every match contains, or None (always run the regex)."""
    if sre_parse is None or rx.flags & re.IGNORECASE:
        return None
    try:
        found = _sequence(list(sre_parse.parse(rx.pattern, rx.flags)))
    except Exception:  # any surprise in the private parser: no prefilter
        return None
    if not found or min(len(s) for s in found) < MIN_LITERAL:
        return None
    return tuple(sorted(found))


def _sequence(items: list[tuple[Any, Any]]) -> set[str] | None:
    """The best literal set of a sequence: its longest literal run, or the best set of
    one of its parts (a set with longer shortest literals is the stronger filter)."""
    candidates: list[set[str]] = []
    run: list[str] = []
    for op, arg in items:
        if op is sre_c.LITERAL:
            run.append(chr(arg))
            continue
        if run:
            candidates.append({"".join(run)})
            run = []
        part = _item(op, arg)
        if part:
            candidates.append(part)
    if run:
        candidates.append({"".join(run)})
    if not candidates:
        return None
    return max(candidates, key=lambda s: (min(len(x) for x in s), -len(s)))


def _item(op: Any, arg: Any) -> set[str] | None:
    if op is sre_c.SUBPATTERN:
        _group, add_flags, _del_flags, body = arg
        if add_flags & re.IGNORECASE:
            return None
        return _sequence(list(body))
    if op is sre_c.BRANCH:
        union: set[str] = set()
        for branch in arg[1]:
            part = _sequence(list(branch))
            if not part:
                return None  # a branch without a literal: the alternation needs none
            union |= part
        return union
    if op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT, sre_c.POSSESSIVE_REPEAT):
        low, _high, body = arg
        return _sequence(list(body)) if low >= 1 else None
    return None  # classes, anchors, look-arounds, back-references: no literal required


def holds_any(text: str, literals: tuple[str, ...] | None) -> bool:
    """May the pattern match ``text``? (True when nothing is known.)"""
    return literals is None or any(lit in text for lit in literals)
