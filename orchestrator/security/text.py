"""Untrusted text (a model's, a test's, a provider's) made safe to show or publish.

A terminal runs the escape sequences in what it prints (a title change, colours, a
cleared screen, on some terminals a written file); a forge renders bidirectional overrides
and zero-width characters that make a reviewer read something else than what is there.
"""

from __future__ import annotations

import re
import unicodedata

# Control (C0/C1), format (bidi overrides, zero-width), surrogate and line/paragraph
# separator characters.
_DROPPED = ("Cc", "Cf", "Cs", "Zl", "Zp")
_SPACED = ("Cc", "Zl", "Zp")
_ASCII_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def printable(text: str, keep: str = "") -> str:
    """``text`` without control, format or separator characters other than those in
    ``keep`` (e.g. ``"\\n\\t"``): controls and separators become a space (words stay
    apart), format characters go."""
    if text.isascii():  # the common case, without a look-up per character
        return _ASCII_CONTROL.sub(lambda m: m.group() if m.group() in keep else " ", text)
    return "".join(
        c if c in keep or unicodedata.category(c) not in _DROPPED
        else " " if unicodedata.category(c) in _SPACED else ""
        for c in text
    )


_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.S)


def strip_html_comments(text: str) -> str:
    """``text`` without HTML comments (an unclosed one runs to the end), which a forge
    hides from a reviewer reading the rendered page."""
    return _HTML_COMMENT.sub("", text)
