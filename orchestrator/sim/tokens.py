"""A deterministic offline tokenizer and a synthetic text generator.

Real tokenizers (tiktoken) download their encodings at first use, which fails offline.
The simulator counts tokens with one documented regular expression instead: a token is an
optional run of whitespace followed by either up to 8 word characters or one other
character; whitespace at the very end is one token. Joining the tokens gives back the
text exactly, so the simulator can stream one token per delta event.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable

TOKEN_RE = re.compile(r"\s*(?:\w{1,8}|[^\w\s])|\s+")

# Words of at most 8 characters: each " word" is exactly one token.
_WORDS = (
    "the", "model", "edits", "code", "in", "small", "steps", "and", "checks", "each",
    "one", "with", "tests", "before", "it", "moves", "on", "a", "fast", "tier", "drafts",
    "quick", "fixes", "while", "deep", "reviews", "risky", "changes", "every", "step",
    "ends", "commit", "so", "long", "job", "can", "resume", "after", "crash",
)


def tokenize(text: str) -> list[str]:
    """Split ``text`` into tokens whose concatenation is ``text``."""
    return TOKEN_RE.findall(text)


def count_tokens(text: str) -> int:
    return len(TOKEN_RE.findall(text))


def count_all(texts: Iterable[str]) -> int:
    return sum(count_tokens(t) for t in texts)


def synthetic_tokens(n_tokens: int, seed: int = 0) -> list[str]:
    """Exactly ``n_tokens`` tokens of deterministic English-like text."""
    rng = random.Random(seed)
    out: list[str] = []
    for i in range(n_tokens):
        if i and i % 12 == 11:
            out.append(".")
            continue
        word = rng.choice(_WORDS)
        out.append(word.capitalize() if i == 0 else " " + word)
    return out


def synthetic_text(n_tokens: int, seed: int = 0) -> str:
    return "".join(synthetic_tokens(n_tokens, seed))
