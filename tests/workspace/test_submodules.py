"""Edits never write into a submodule: the step commit would replace it with a folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import UnsafePath, WorkspaceError
from orchestrator.workspace import Workspace, parse_edits
from orchestrator.workspace.treebuild import ObjectStore, build_tree
from tests.workspace.conftest import git, tree_paths

FILE_PROTOCOL = ("-c", "protocol.file.allow=always")


def block(path: str, search: str, replace: str) -> str:
    return f"{path}\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n"


def _with_submodule(repo: Path, tmp_path: Path, object_format: str = "sha1") -> Path:
    """``repo`` with a real submodule at ``libs/sub`` (committed); returns ``repo``."""
    sub = tmp_path / f"sub-{object_format}"
    git(tmp_path, "init", "-q", f"--object-format={object_format}", str(sub))
    (sub / "s.txt").write_text("s\n")
    git(sub, "add", "s.txt")
    git(sub, "-c", "user.name=U", "-c", "user.email=u@example.com", "commit", "-q", "-m", "s")
    git(repo, *FILE_PROTOCOL, "submodule", "add", "-q", str(sub), "libs/sub")
    git(repo, "commit", "-q", "-m", "add submodule")
    return repo


@pytest.fixture
def sub_ws(git_repo: Path, tmp_path: Path) -> Workspace:
    _with_submodule(git_repo, tmp_path)
    return Workspace.open_or_create(git_repo, "job-s", "sub", home=tmp_path / "home")


def test_edit_inside_uninitialised_submodule_is_refused(sub_ws: Workspace) -> None:
    assert list((sub_ws.path / "libs" / "sub").iterdir()) == []  # a gitlink, not checked out
    text = block("libs/sub/NOTE.txt", "", "note\n") + block("NEW.md", "", "x\n")
    with pytest.raises(UnsafePath, match="'libs/sub' is a submodule"):
        sub_ws.apply_edits(parse_edits(text))
    assert not (sub_ws.path / "libs" / "sub" / "NOTE.txt").exists()
    assert not (sub_ws.path / "NEW.md").exists()
    info = sub_ws.commit_edits("Step 1", {"Tandem-Step": "1"})
    assert "libs/sub" in tree_paths(sub_ws, info.sha)


def test_edit_inside_initialised_submodule_is_refused(sub_ws: Workspace) -> None:
    git(sub_ws.path, *FILE_PROTOCOL, "submodule", "update", "-q", "--init")
    assert (sub_ws.path / "libs" / "sub" / ".git").is_file()
    with pytest.raises(UnsafePath, match="inside 'libs/sub', a submodule"):
        sub_ws.apply_edits(parse_edits(block("libs/sub/s.txt", "s\n", "changed\n")))
    assert (sub_ws.path / "libs" / "sub" / "s.txt").read_text() == "s\n"


def test_edit_inside_nested_repository_is_refused(ws: Workspace) -> None:
    nested = ws.path / "vendor" / "lib"
    nested.mkdir(parents=True)
    git(nested, "init", "-q")
    with pytest.raises(UnsafePath, match="inside 'vendor/lib', a submodule or nested"):
        ws.apply_edits(parse_edits(block("vendor/lib/x.txt", "", "x\n")))
    assert not (nested / "x.txt").exists()


def test_edit_replacing_a_submodule_is_refused(sub_ws: Workspace) -> None:
    (sub_ws.path / "libs" / "sub").rmdir()
    with pytest.raises(UnsafePath, match="'libs/sub' is a submodule"):
        sub_ws.apply_edits(parse_edits(block("libs/sub", "", "now a file\n")))


def test_sha256_repository_refuses_edit_inside_submodule(tmp_path: Path) -> None:
    repo = tmp_path / "repo256"
    git(tmp_path, "init", "-q", "--object-format=sha256", "-b", "main", str(repo))
    (repo / "README.md").write_text("# r\n")
    git(repo, "add", "README.md")
    git(repo, "-c", "user.name=U", "-c", "user.email=u@example.com", "commit", "-q", "-m", "r")
    _with_submodule(repo, tmp_path, "sha256")
    ws = Workspace.open_or_create(repo, "job-256", "sub", home=tmp_path / "home")
    with pytest.raises(UnsafePath, match="'libs/sub' is a submodule"):
        ws.apply_edits(parse_edits(block("libs/sub/NOTE.txt", "", "note\n")))


def test_tree_build_never_replaces_a_submodule(sub_ws: Workspace) -> None:
    """The backstop under the edit checks: a commit built in-process refuses to drop a
    gitlink rather than replace it with a tree or a file."""
    store = ObjectStore(Path(git(sub_ws.path, "rev-parse", "--path-format=absolute",
                                 "--git-common-dir").strip()) / "objects")
    tree = git(sub_ws.path, "rev-parse", "HEAD^{tree}").strip()
    blob = store.write(b"blob", b"note\n")
    for path in (b"libs/sub/NOTE.txt", b"libs/sub"):
        with pytest.raises(WorkspaceError, match="'sub' is a submodule"):
            build_tree(store, tree, {path: (None, blob)})
