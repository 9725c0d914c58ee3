"""The literal prefilter of the gate's patterns: it may skip a regex only where the regex
cannot match, so decisions are the same with and without it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orchestrator.security.literals import holds_any, required_literals
from orchestrator.security.patterns import PATTERNS
from orchestrator.security.scan import _fold
from tests.policy.test_gate_checklist import ORDINARY, SINKS, WEAK


@pytest.mark.parametrize(("rx", "expected"), [
    (r"\bsubprocess\.\w+", ("subprocess.",)),
    (r"\b(?:mktemp\(|tempfile\.)|os\.(system|popen)\(", ("mktemp(", "popen", "system",
                                                       "tempfile.")),
    (r"(?:ab)*cd", ("cd",)),  # a repeat that may occur zero times requires nothing
    (r"(?<![a-z])(access|refresh)_?tokens?", ("access", "refresh")),
    (r"(ab)+cde", ("cde",)),  # of two required runs, the longer one filters better
    (r"x(?:ab)?y", None),  # an optional group requires nothing; single letters are no filter
    (r"[a-z]+_secret", ("_secret",)),
    (r"foo|\w+bar", ("bar", "foo")),
    (r"foo|\w+", None),  # one branch without a literal: nothing is required
    (r"(?i)password", None),  # case-insensitive: not handled, always run the regex
])
def test_required_literals(rx: str, expected: tuple[str, ...] | None) -> None:
    literals = required_literals(re.compile(rx))
    if expected is None:
        assert literals is None
    else:
        assert literals == tuple(sorted(expected))


def _corpus() -> list[str]:
    """Real code (this project's sources) and the checklist's one-line snippets."""
    root = Path(__file__).resolve().parents[2] / "orchestrator"
    texts = [p.read_text() for p in sorted(root.rglob("*.py"))]
    texts += [line for _lang, line, _cat in [*SINKS, *WEAK]] + [line for _l, line in ORDINARY]
    return texts


def test_prefilter_never_skips_a_match() -> None:
    corpus = _corpus()
    folded = [_fold(t) for t in corpus]
    matched = 0
    for p in PATTERNS:
        for raw, low in zip(corpus, folded, strict=True):
            text = low if p.lower else raw
            if p.regex.search(text):
                matched += 1
                assert holds_any(text, p.literals), (p.id, p.literals)
    assert matched > 200  # the corpus exercises the patterns, not just their absence
    assert sum(1 for p in PATTERNS if p.literals) > len(PATTERNS) * 0.8
