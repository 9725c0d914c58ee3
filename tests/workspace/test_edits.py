"""Parsing the edit format (docs/EDIT_FORMAT.md)."""

from __future__ import annotations

import pytest

from orchestrator.errors import EditApplyError
from orchestrator.workspace import parse_edits


def test_plain_block_and_text_outside_ignored() -> None:
    text = (
        "I will fix it.\n"
        "app.py\n<<<<<<< SEARCH\nold\n=======\nnew\n>>>>>>> REPLACE\n"
        "That is all.\n"
    )
    [block] = parse_edits(text)
    assert (block.path, block.search, block.replace) == ("app.py", "old\n", "new\n")
    assert not block.delete and not block.is_create
    assert block.index == 1 and block.line == 3


@pytest.mark.parametrize("path_line", ["`src/app.py`", "File: src/app.py", "File: `src/app.py`",
                                       "src/app.py   ", "**src/app.py**"])
def test_path_line_variants(path_line: str) -> None:
    text = f"{path_line}\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n"
    assert parse_edits(text)[0].path == "src/app.py"


def test_fences_with_and_without_language_tag() -> None:
    text = (
        "```python\nsrc/a.py\n<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n>>>>>>> REPLACE\n```\n"
        "src/b.py\n```\n<<<<<<< SEARCH\ny = 1\n=======\ny = 2\n>>>>>>> REPLACE\n```\n"
    )
    blocks = parse_edits(text)
    assert [b.path for b in blocks] == ["src/a.py", "src/b.py"]
    assert [b.replace for b in blocks] == ["x = 2\n", "y = 2\n"]


def test_crlf_and_trailing_whitespace_on_markers() -> None:
    text = "a.py\r\n<<<<<<< SEARCH  \r\nold\r\n=======\t\r\nnew\r\n>>>>>>> REPLACE \r\n"
    [block] = parse_edits(text)
    assert (block.search, block.replace) == ("old\n", "new\n")


def test_several_blocks_per_file_in_order_and_path_reuse() -> None:
    text = (
        "a.py\n<<<<<<< SEARCH\n1\n=======\n2\n>>>>>>> REPLACE\n"
        "<<<<<<< SEARCH\n3\n=======\n4\n>>>>>>> REPLACE\n"
        "a.py\n<<<<<<< SEARCH\n5\n=======\n6\n>>>>>>> REPLACE\n"
    )
    blocks = parse_edits(text)
    assert [(b.path, b.index) for b in blocks] == [("a.py", 1), ("a.py", 2), ("a.py", 3)]


def test_new_file_and_delete_blocks() -> None:
    text = (
        "docs/new.md\n<<<<<<< SEARCH\n=======\n# New\n>>>>>>> REPLACE\n"
        "old.py\n<<<<<<< DELETE\n>>>>>>> DELETE\n"
    )
    new, gone = parse_edits(text)
    assert new.is_create and new.replace == "# New\n"
    assert gone.delete and gone.path == "old.py"


def test_replacement_may_contain_fences_and_equals_lines() -> None:
    text = "README.md\n<<<<<<< SEARCH\nTitle\n=======\nTitle\n```sh\nmake\n```\n>>>>>>> REPLACE\n"
    [block] = parse_edits(text)
    assert block.replace == "Title\n```sh\nmake\n```\n"


def test_no_blocks_is_empty() -> None:
    assert parse_edits("Nothing to change here.") == []


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a.py\n<<<<<<< SEARCH\nold\n>>>>>>> REPLACE\n", "missing '======='"),
        ("a.py\n<<<<<<< SEARCH\nold\n=======\nnew\n", "missing '>>>>>>> REPLACE'"),
        ("<<<<<<< SEARCH\nold\n=======\nnew\n>>>>>>> REPLACE\n", "no file path"),
        ("Here is my change to the code:\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n",
         "no file path"),
        ("a.py\nold\n=======\nnew\n>>>>>>> REPLACE\n", "closing marker"),
        ("a.py\n<<<<<<< DELETE\nsomething\n>>>>>>> DELETE\n", "followed directly"),
        ("a.py\n<<<<<<< SEARCH\nold\n=======\n"
         "b.py\n<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n", "missing '>>>>>>> REPLACE'"),
    ],
)
def test_malformed_input_names_the_block(text: str, fragment: str) -> None:
    with pytest.raises(EditApplyError) as err:
        parse_edits(text)
    assert fragment in str(err.value)
    assert "edit block 1" in str(err.value)
