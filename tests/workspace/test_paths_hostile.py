"""Edit paths a hostile model can write that name .git on another file system, or that the
file system cannot even encode: refused like the others, nothing written, no crash."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import EditApplyError, UnsafePath
from orchestrator.workspace import Workspace, parse_edits
from orchestrator.workspace.paths import is_git_name


def files(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        (".git /hooks/post-checkout", ".git"),  # NTFS drops trailing spaces and dots
        (".git./config", ".git"),
        ("sub/.GIT. . /hooks/pre-commit", ".git"),
        (".git::$INDEX_ALLOCATION/hooks/post-checkout", ".git"),  # an NTFS stream
        ("GIT~1/hooks/post-checkout", ".git"),  # the 8.3 short name
        (".g\u200cit/hooks/post-checkout", ".git"),  # HFS+ ignores U+200C
        ("\ufeff.Git/config", ".git"),
        ("bad\ud800.py", "not valid Unicode"),  # a lone surrogate: no file name encodes it
        ("red\x1b[31m.py", "control character"),  # a terminal escape in every log line
        ("tab\there.py", "control character"),
    ],
)
def test_git_look_alikes_and_unencodable_names_refused(ws: Workspace, path: str,
                                                       fragment: str) -> None:
    before = files(ws.path)
    text = ("app.py\n<<<<<<< SEARCH\n    return a + b\n=======\n    return 0\n"
            f">>>>>>> REPLACE\n{path}\n<<<<<<< SEARCH\n=======\npwned\n>>>>>>> REPLACE\n")
    with pytest.raises(UnsafePath) as err:
        ws.apply_edits(parse_edits(text))
    assert fragment in str(err.value)
    assert files(ws.path) == before


@pytest.mark.parametrize("name", [".gitignore", ".github", "git", ".git-blame-ignore-revs",
                                  "my.git", ".gitx", "git~2"])
def test_ordinary_names_near_git_are_editable(name: str) -> None:
    assert not is_git_name(name)


@pytest.mark.parametrize("bad", ["\ud800", "\udcff"])
def test_a_lone_surrogate_in_a_replacement_is_refused(ws: Workspace, bad: str) -> None:
    """A model's text is decoded JSON: ``"\\ud800"`` is a lone surrogate, which UTF-8 cannot
    encode (a crash at write time) or, as ``\\udcff``, would write a raw non-UTF-8 byte."""
    before = files(ws.path)
    text = (f"app.py\n<<<<<<< SEARCH\n    return a + b\n=======\n    return '{bad}'\n"
            ">>>>>>> REPLACE\n")
    with pytest.raises(EditApplyError, match="lone surrogate"):
        ws.apply_edits(parse_edits(text))
    assert files(ws.path) == before
