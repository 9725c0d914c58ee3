"""A long SEARCH section over a long, repetitive file: matching and the "closest lines"
hint stay linear-ish (the edit is applied on the event loop), with the same answers."""

from __future__ import annotations

import time

import pytest

from orchestrator.workspace.match import NoMatch, closest_lines, replace_once


def test_whitespace_insensitive_search_is_not_quadratic() -> None:
    content = "    x = 1\n" * 60_000  # 600 kB: under the edit size limit
    search = "x = 1\n" * 6_000 + "y\n"
    started = time.perf_counter()
    with pytest.raises(NoMatch, match="not found"):
        replace_once(content, search, "z\n")
    assert time.perf_counter() - started < 1.5  # was about 5 s


def test_closest_lines_cost_does_not_grow_with_the_search() -> None:
    content = "".join(f"    value_{i} = compute({i})\n" for i in range(2_000))
    search = "".join(f"value_{i} = compute({i})  # moved\n" for i in range(1_000, 1_600))
    started = time.perf_counter()
    first, text = closest_lines(content, search)
    assert time.perf_counter() - started < 1.5  # was about 7 s
    assert first == 1_001 and text.splitlines()[0] == "    value_1000 = compute(1000)"


def test_whitespace_insensitive_matches_keep_their_answers() -> None:
    content = "a\n  b\n  c\nd\n  b\n  c\n"
    with pytest.raises(NoMatch, match="more than one place"):
        replace_once(content, "b\nc\n", "x\n")
    done = replace_once(content, "d\nb\nc\n", "d\ne\n")
    assert done.fuzzy and done.text == "a\n  b\n  c\nd\ne\n"
    aligned = replace_once("ab c\n  b c\n", "b  c\n", "x\n")  # whole lines only
    assert aligned.fuzzy and aligned.text == "ab c\n  x\n"
