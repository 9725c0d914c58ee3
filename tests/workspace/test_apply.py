"""Applying edits: matching, line endings, all-or-nothing, and edits racing a command."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import EditApplyError
from orchestrator.workspace import Workspace, parse_edits
from orchestrator.workspace.apply import prepare_edits


def block(path: str, search: str, replace: str) -> str:
    return f"{path}\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n"


def test_exact_replace_and_result(ws: Workspace) -> None:
    res = ws.apply_edits(parse_edits(block("app.py", "    return a + b\n", "    return b + a\n")))
    assert (ws.path / "app.py").read_text() == "def add(a, b):\n    return b + a\n"
    assert res.changed_paths == ["app.py"] and res.fuzzy_blocks == []


def test_whitespace_insensitive_match_keeps_file_indentation(ws: Workspace) -> None:
    (ws.path / "m.py").write_text("class A:\n    def f(self):\n        return 1   \n")
    text = block("m.py", "def f(self):\n    return 1\n", "def f(self):\n    return 2\n")
    res = ws.apply_edits(parse_edits(text))
    assert (ws.path / "m.py").read_text() == "class A:\n    def f(self):\n        return 2\n"
    assert res.fuzzy_blocks == [1]


def test_crlf_file_keeps_its_line_endings(ws: Workspace) -> None:
    (ws.path / "w.txt").write_bytes(b"one\r\ntwo\r\nthree\r\n")
    ws.apply_edits(parse_edits(block("w.txt", "two\n", "TWO\nand a half\n")))
    assert (ws.path / "w.txt").read_bytes() == b"one\r\nTWO\r\nand a half\r\nthree\r\n"


def test_crlf_response_on_lf_file(ws: Workspace) -> None:
    text = block("app.py", "    return a + b\n", "    return a - b\n").replace("\n", "\r\n")
    ws.apply_edits(parse_edits(text))
    assert (ws.path / "app.py").read_bytes() == b"def add(a, b):\n    return a - b\n"


def test_non_utf8_content_survives(ws: Workspace) -> None:
    (ws.path / "latin.txt").write_bytes(b"caf\xe9\nline\n")
    ws.apply_edits(parse_edits(block("latin.txt", "line\n", "LINE\n")))
    assert (ws.path / "latin.txt").read_bytes() == b"caf\xe9\nLINE\n"


def test_blocks_apply_in_order_on_one_file(ws: Workspace) -> None:
    (ws.path / "f.txt").write_text("x\n")
    text = block("f.txt", "x\n", "y\n") + block("f.txt", "y\n", "z\n")
    ws.apply_edits(parse_edits(text))
    assert (ws.path / "f.txt").read_text() == "z\n"


def test_new_file_in_new_directory_and_delete(ws: Workspace) -> None:
    text = block("pkg/sub/new.py", "", "VALUE = 1\n")
    text += "README.md\n<<<<<<< DELETE\n>>>>>>> DELETE\n"
    res = ws.apply_edits(parse_edits(text))
    assert (ws.path / "pkg/sub/new.py").read_text() == "VALUE = 1\n"
    assert not (ws.path / "README.md").exists()
    assert res.created == ["pkg/sub/new.py"] and res.deleted == ["README.md"]


def test_empty_search_on_existing_file_is_an_error(ws: Workspace) -> None:
    with pytest.raises(EditApplyError, match="already exists"):
        ws.apply_edits(parse_edits(block("app.py", "", "x\n")))


def test_ambiguous_search_is_refused(ws: Workspace) -> None:
    (ws.path / "d.py").write_text("x = 1\ny = 2\nx = 1\n")
    with pytest.raises(EditApplyError, match="match 2 places"):
        ws.apply_edits(parse_edits(block("d.py", "x = 1\n", "x = 3\n")))
    assert (ws.path / "d.py").read_text() == "x = 1\ny = 2\nx = 1\n"


def test_not_found_reports_block_and_closest_lines(ws: Workspace) -> None:
    text = block("app.py", "def add(a, c):\n    return a + c\n", "pass\n")
    with pytest.raises(EditApplyError) as err:
        ws.apply_edits(parse_edits(text))
    message = str(err.value)
    assert "block 1 (app.py" in message and "not found" in message
    assert "Closest lines in app.py (from line 1)" in message
    assert "| def add(a, b):" in message


def test_all_or_nothing_when_a_later_block_fails(ws: Workspace) -> None:
    before = (ws.path / "app.py").read_bytes()
    text = (block("app.py", "    return a + b\n", "    return 0\n")
            + block("new.py", "", "created\n")
            + block("README.md", "no such line\n", "x\n"))
    with pytest.raises(EditApplyError, match="1 of 3 edit blocks did not apply"):
        ws.apply_edits(parse_edits(text))
    assert (ws.path / "app.py").read_bytes() == before
    assert not (ws.path / "new.py").exists()


def test_edit_racing_a_command_writing_the_same_file(ws: Workspace) -> None:
    """A command rewrites the file after it was read: the edit writes nothing."""
    plan = prepare_edits(ws.path, parse_edits(
        block("app.py", "    return a + b\n", "    return a * b\n")
        + block("other.py", "", "new\n")))
    (ws.path / "app.py").write_text("def add(a, b):\n    return a + b  # reformatted\n")
    with pytest.raises(EditApplyError, match="changed on disk"):
        plan.write()
    assert (ws.path / "app.py").read_text().endswith("# reformatted\n")
    assert not (ws.path / "other.py").exists()


def test_edit_through_symlink_inside_worktree_changes_target(ws: Workspace) -> None:
    (ws.path / "link.py").symlink_to("app.py")
    text = block("link.py", "    return a + b\n", "    return a - b\n")
    res = ws.apply_edits(parse_edits(text))
    assert res.changed_paths == ["app.py"]
    assert (ws.path / "link.py").is_symlink()
    assert (ws.path / "app.py").read_text().endswith("return a - b\n")


def test_file_mode_preserved(ws: Workspace) -> None:
    script = ws.path / "run.sh"
    script.write_text("echo hi\n")
    script.chmod(0o755)
    ws.apply_edits(parse_edits(block("run.sh", "echo hi\n", "echo bye\n")))
    assert script.stat().st_mode & 0o777 == 0o755
    assert not [p for p in Path(ws.path).iterdir() if p.name.endswith(".tandem-tmp")]


def test_file_with_a_name_near_the_length_limit_is_editable(ws: Workspace) -> None:
    """Names up to 255 bytes are valid; the temporary file written beside must be too."""
    name = "n" * 247 + ".py"  # 250 bytes
    (ws.path / name).write_text("x = 1\n")
    res = ws.apply_edits(parse_edits(block(name, "x = 1\n", "x = 2\n")
                                     + block("m" * 247 + ".py", "", "y = 1\n")))
    assert sorted(res.changed_paths) == sorted([name, "m" * 247 + ".py"])
    assert (ws.path / name).read_text() == "x = 2\n"
    assert not [p for p in Path(ws.path).iterdir() if p.name.endswith(".tandem-tmp")]


def test_a_nul_byte_in_an_edit_is_refused(ws: Workspace) -> None:
    """git (and so the gate's diff) would call the file binary and show none of it."""
    text = block("new.dat", "", "\0\nAWS_KEY_ID=AKIAQ7ZT3B5XK2M9R4WD\n")
    text += block("app.py", "    return a + b\n", "    return a\0 + b\n")
    with pytest.raises(EditApplyError, match="NUL byte") as err:
        ws.apply_edits(parse_edits(text))
    assert "2 of 2 edit blocks did not apply" in str(err.value)
    assert not (ws.path / "new.dat").exists()
    assert (ws.path / "app.py").read_text() == "def add(a, b):\n    return a + b\n"


def test_an_edit_cannot_create_or_grow_a_file_past_the_limit(ws: Workspace) -> None:
    big = "x = 1\n" * 200  # 1,200 bytes
    text = block("huge.py", "", big) + block("app.py", "    return a + b\n", "    return 0\n")
    with pytest.raises(EditApplyError, match=r"huge\.py 1200 bytes, over the 1000-byte limit"):
        prepare_edits(ws.path, parse_edits(text), max_file_bytes=1000)
    grow = block("app.py", "    return a + b\n", big)
    with pytest.raises(EditApplyError, match=r"app\.py \d+ bytes, over the 1000-byte limit"):
        prepare_edits(ws.path, parse_edits(grow), max_file_bytes=1000)
    assert not (ws.path / "huge.py").exists()
    plan = prepare_edits(ws.path, parse_edits(block("small.py", "", "x = 1\n")),
                         max_file_bytes=1000)
    assert plan.contents() == {"small.py": b"x = 1\n"}
