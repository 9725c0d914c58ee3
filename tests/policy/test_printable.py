"""``security.text``: untrusted text made safe for a terminal and a forge."""

from __future__ import annotations

from orchestrator.security.text import printable, strip_html_comments


def test_controls_become_spaces_and_format_characters_go() -> None:
    assert printable("a\x1b]0;title\x07b\x9b31m") == "a ]0;title b 31m"
    assert printable("ab\u202ecd\u200be\u2028f") == "abcde f"
    assert printable("line\nnext\tcol\r", keep="\n\t") == "line\nnext\tcol "
    assert printable("plain ascii, unchanged") == "plain ascii, unchanged"


def test_html_comments_closed_or_not() -> None:
    assert strip_html_comments("a<!-- x -->b<!-- unclosed\nc") == "ab"
