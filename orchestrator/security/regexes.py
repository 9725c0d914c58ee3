"""Catastrophic backtracking: which regular expressions a policy may hold.

A repository's policy is untrusted and may hold regexes (``step_text``, ``task_text``).
Python's engine backtracks: ``(a+)+$`` takes exponential time and ``\\w*\\w*x`` polynomial
time on a text they do not match, which would hang the router. ``backtracking`` accepts
only patterns that are at worst quadratic in the text: along any path through the pattern
at most one repeat that can match more than one item (``\\w*``, ``[^x]+``, ``a{2,9}``), not
inside another repeat, plus a few optional items (``s?``); no repeated alternation and no
back-reference. The router also cuts the text they run on (``policy.REGEX_TEXT_LIMIT``).
"""

from __future__ import annotations

import importlib
import re
from types import ModuleType
from typing import Any

MAX_OPTIONAL = 8  # ``x?`` items along one path: 2**8 tries at most per position

sre_c: ModuleType | None
sre_parse: ModuleType | None
try:  # the parser of the ``re`` module (Python 3.11+)
    sre_c = importlib.import_module("re._constants")
    sre_parse = importlib.import_module("re._parser")
except ImportError:  # another Python: see ``backtracking``
    sre_c = sre_parse = None


def backtracking(rx: re.Pattern[str]) -> str | None:
    """Why ``rx`` may take more than quadratic time on some text, or None."""
    if sre_parse is None:  # no parse tree: refuse repeated groups at least
        return "a repeated group" if re.search(r"\)[*+{]", rx.pattern) else None
    walker = _Walker()
    try:
        variable, optional = walker.sequence(list(sre_parse.parse(rx.pattern, rx.flags)), False)
    except Exception:  # any surprise in the private parser: refuse, the pattern is odd
        return "a construct the check does not understand"
    if walker.problems:
        return walker.problems[0]
    if variable > 1:
        return "two repeats in a row can match the same text"
    if optional > MAX_OPTIONAL:
        return f"more than {MAX_OPTIONAL} optional items in a row"
    return None


class _Walker:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def sequence(self, items: list[tuple[Any, Any]], in_repeat: bool) -> tuple[int, int]:
        """(variable repeats, optional items) along the costliest path of a sequence."""
        variable = optional = 0
        for op, arg in items:
            v, o = self.item(op, arg, in_repeat)
            variable += v
            optional += o
        return variable, optional

    def item(self, op: Any, arg: Any, in_repeat: bool) -> tuple[int, int]:
        assert sre_c is not None
        if op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT, sre_c.POSSESSIVE_REPEAT):
            return self.repeat(arg, in_repeat)
        if op is sre_c.SUBPATTERN:
            return self.sequence(list(arg[3]), in_repeat)
        if op is sre_c.BRANCH:
            costs = [self.sequence(list(branch), in_repeat) for branch in arg[1]]
            return max(c[0] for c in costs), max(c[1] for c in costs)
        if op in (sre_c.ASSERT, sre_c.ASSERT_NOT):
            return self.sequence(list(arg[1]), in_repeat)
        if op is getattr(sre_c, "ATOMIC_GROUP", None):
            return self.sequence(list(arg), in_repeat)
        if op in (sre_c.GROUPREF, sre_c.GROUPREF_EXISTS):
            self.problems.append("a back-reference")
        return 0, 0

    def repeat(self, arg: Any, in_repeat: bool) -> tuple[int, int]:
        _low, high, body = arg
        body = list(body)
        if high <= 1:  # ``x?``: optional, not a repeat
            variable, optional = self.sequence(body, in_repeat)
            return variable, optional + 1
        if in_repeat:
            self.problems.append("a repeat inside a repeat")
        if any(self.alternation(op, a) for op, a in body):
            self.problems.append("a repeated alternation")
        variable, optional = self.sequence(body, True)
        return variable + 1, optional

    def alternation(self, op: Any, arg: Any) -> bool:
        assert sre_c is not None
        if op is sre_c.BRANCH:
            return True
        return op is sre_c.SUBPATTERN and any(self.alternation(o, a) for o, a in arg[3])
