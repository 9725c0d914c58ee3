"""A deterministic offline tokenizer and a synthetic text generator.

Real tokenizers (tiktoken) download their encodings at first use, which fails offline.
The simulator counts tokens with one documented regular expression instead: a token is an
optional run of whitespace followed by either up to 8 word characters or one other
character; whitespace at the very end is one token. Joining the tokens gives back the
text exactly, so the simulator can stream one token per delta event.
"""

from __future__ import annotations

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


# A 64-bit linear congruential generator (Knuth's MMIX constants) picks the words: seeding
# it is free, where seeding ``random.Random`` costs microseconds on every request.
_LCG_MUL = 6364136223846793005
_LCG_ADD = 1442695040888963407
_MASK_64 = (1 << 64) - 1
_SPACED = tuple(" " + word for word in _WORDS)


def synthetic_tokens(n_tokens: int, seed: int = 0) -> list[str]:
    """Exactly ``n_tokens`` tokens of deterministic English-like text."""
    state = seed & _MASK_64
    n_words = len(_WORDS)
    out: list[str] = []
    for i in range(n_tokens):
        if i % 12 == 11:
            out.append(".")
            continue
        state = (state * _LCG_MUL + _LCG_ADD) & _MASK_64
        pick = (state >> 32) % n_words
        out.append(_SPACED[pick] if i else _WORDS[pick].capitalize())
    return out


def synthetic_text(n_tokens: int, seed: int = 0) -> str:
    return "".join(synthetic_tokens(n_tokens, seed))
