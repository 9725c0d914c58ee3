"""Checkpoints on real repositories: what goes in, what is skipped, restore and rollback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.errors import WorkspaceError
from orchestrator.workspace import Workspace, parse_edits
from tests.workspace.conftest import committed, git, tree_paths

RECEIPT = {
    "Tandem-Step": "1",
    "Tandem-Tier": "fast",
    "Tandem-Requested-Model": "gpt-5.3-codex-spark",
    "Tandem-Served-Model": "gpt-5.3-codex-spark",
    "Tandem-Rule": "default-fast",
    "Tandem-Tokens": "in=120 out=40 cached=0",
    "Tandem-Cost-USD": "0.000310",
}


def test_commit_carries_trailers_readable_by_git(ws: Workspace) -> None:
    (ws.path / "a.txt").write_text("a\n")
    info = ws.checkpoint("Step 1: add a\n\nBecause the plan says so.", RECEIPT)
    assert info.created and info.step == 1 and info.parent == ws.base_sha
    assert ws.head() == info.sha
    parsed = git(ws.path, "log", "-1", "--format=%(trailers:only,unfold)")
    assert parsed.strip().splitlines() == [f"{k}: {v}" for k, v in RECEIPT.items()]
    assert git(ws.path, "log", "-1", "--format=%an <%ae>|%s") == (
        "Tandem <tandem@localhost>|Step 1: add a\n")
    [listed] = ws.list_checkpoints()
    assert (listed.sha, listed.step, listed.trailers) == (info.sha, 1, RECEIPT)


def test_trailer_values_cannot_forge_other_trailers(ws: Workspace) -> None:
    (ws.path / "a.txt").write_text("a\n")
    ws.checkpoint("s", {"Tandem-Step": "1", "Tandem-Rule": "x\nTandem-Tier: deep"})
    [listed] = ws.list_checkpoints()
    assert "Tandem-Tier" not in listed.trailers
    with pytest.raises(WorkspaceError, match="invalid checkpoint trailer key"):
        ws.checkpoint("s", {"Bad Key": "v"}, allow_empty=True)


def test_no_change_returns_head_unless_allow_empty(ws: Workspace) -> None:
    info = ws.checkpoint("nothing", {"Tandem-Step": "1"})
    assert not info.created and info.sha == ws.base_sha
    forced = ws.checkpoint("nothing", {"Tandem-Step": "1"}, allow_empty=True)
    assert forced.created and forced.sha != ws.base_sha


def test_known_paths_without_scan(ws: Workspace) -> None:
    text = "app.py\n<<<<<<< SEARCH\n    return a + b\n=======\n    return a * b\n>>>>>>> REPLACE\n"
    res = ws.apply_edits(parse_edits(text))
    (ws.path / "not-listed.txt").write_text("left out without a scan\n")
    ws.checkpoint("Step 1", RECEIPT, res.changed_paths, scan=False)
    assert committed(ws, "app.py").endswith(b"a * b\n")
    assert "not-listed.txt" not in tree_paths(ws)


def test_scan_includes_command_output_and_honours_gitignore(ws: Workspace) -> None:
    (ws.path / ".gitignore").write_text("build/\n*.log\n")
    ws.checkpoint("ignore rules", {"Tandem-Step": "1"})
    script = ("import pathlib; p = pathlib.Path('.'); (p / 'build').mkdir();"
              "(p / 'build' / 'out.o').write_text('obj');"
              "(p / 'test.log').write_text('log');"
              "(p / 'snapshots').mkdir(); (p / 'snapshots' / 'snap.txt').write_text('s')")
    subprocess.run([sys.executable, "-c", script], cwd=ws.path, check=True)
    info = ws.checkpoint("Step 2", {"Tandem-Step": "2"})
    assert tree_paths(ws) == [".gitignore", "README.md", "app.py", "snapshots/snap.txt"]
    assert info.scan_s > 0 and info.commit_s > 0 and info.total_s >= info.commit_s


def test_ignored_path_from_an_edit_is_left_out_with_warning(ws: Workspace) -> None:
    (ws.path / ".gitignore").write_text(".env\n")
    ws.checkpoint("ignore rules", {"Tandem-Step": "1"})
    (ws.path / ".env").write_text("TOKEN=x\n")
    info = ws.checkpoint("Step 2", {"Tandem-Step": "2"}, [".env"], scan=False)
    assert ".env" not in tree_paths(ws)
    assert any(".env: ignored by .gitignore" in w for w in info.warnings)


def test_non_utf8_and_space_names(ws: Workspace) -> None:
    raw = os.fsencode(ws.path) + b"/caf\xe9 menu.txt"
    with open(raw, "wb") as fh:
        fh.write(b"latin-1 name\n")
    (ws.path / "dir with spaces").mkdir()
    (ws.path / "dir with spaces" / "my file.py").write_text("x = 1\n")
    ws.checkpoint("names", {"Tandem-Step": "1"})
    out = subprocess.run(["git", "ls-tree", "-r", "-z", "--name-only", "HEAD"], cwd=ws.path,
                         check=True, capture_output=True).stdout
    assert b"caf\xe9 menu.txt" in out.split(b"\0")
    assert "dir with spaces/my file.py" in tree_paths(ws)
    assert committed(ws, "dir with spaces/my file.py") == b"x = 1\n"
    assert ws.changed_paths() == []


def test_deleted_and_renamed_files(ws: Workspace) -> None:
    (ws.path / "README.md").unlink()
    (ws.path / "app.py").rename(ws.path / "calc.py")
    assert ws.changed_paths() == ["README.md", "app.py", "calc.py"]
    ws.checkpoint("rename", {"Tandem-Step": "1"})
    assert tree_paths(ws) == ["calc.py"]
    assert committed(ws, "calc.py") == b"def add(a, b):\n    return a + b\n"


def test_renames_known_from_edits_without_scan(ws: Workspace) -> None:
    text = ("app.py\n<<<<<<< DELETE\n>>>>>>> DELETE\n"
            "lib/calc.py\n<<<<<<< SEARCH\n=======\ndef add(a, b):\n    return a + b\n"
            ">>>>>>> REPLACE\n")
    res = ws.apply_edits(parse_edits(text))
    ws.checkpoint("move", {"Tandem-Step": "1"}, res.changed_paths, scan=False)
    assert tree_paths(ws) == ["README.md", "lib/calc.py"]


def test_nested_repository_is_skipped_with_warning(ws: Workspace) -> None:
    nested = ws.path / "vendor" / "lib"
    nested.mkdir(parents=True)
    git(nested, "init", "-q")
    (nested / "x.txt").write_text("x\n")
    (ws.path / "real.txt").write_text("r\n")
    info = ws.checkpoint("nested", {"Tandem-Step": "1"})
    assert "real.txt" in tree_paths(ws)
    assert not [p for p in tree_paths(ws) if p.startswith("vendor")]
    assert any("nested git repository" in w for w in info.warnings)


def test_nested_repository_survives_keep_and_restore(ws: Workspace) -> None:
    """What a resume does to a paused job's worktree: keep what is uncommitted, then reset
    to the checkpoint. A repository made inside the worktree holds history and files that
    are nowhere else: it stays, and the kept tree leaves it out (as checkpoints do)."""
    step = ws.checkpoint("Step 1", {"Tandem-Step": "1"}, allow_empty=True)
    nested = ws.path / "vendor" / "lib"
    nested.mkdir(parents=True)
    git(nested, "init", "-q")
    (nested / "n.txt").write_text("x\n")
    git(nested, "add", ".")
    git(nested, "-c", "user.name=U", "-c", "user.email=u@example.com", "commit", "-q",
        "-m", "c")
    (nested / "draft.txt").write_text("draft\n")
    (ws.path / "notes.txt").write_text("user's note\n")

    tree = ws.worktree_tree()
    assert tree is not None
    kept, _ref = ws.keep_tree(tree, "job-1", "resume")
    ws.restore(step.sha)

    assert (nested / "draft.txt").read_text() == "draft\n"
    assert git(nested, "log", "--format=%s") == "c\n"
    assert not (ws.path / "notes.txt").exists()
    assert committed(ws, "notes.txt", kept) == b"user's note\n"
    assert not [p for p in tree_paths(ws, kept) if p.startswith("vendor")]


def test_nested_repository_without_commits_is_kept_in_place(ws: Workspace) -> None:
    nested = ws.path / "scratch-repo"
    nested.mkdir()
    git(nested, "init", "-q")
    (nested / "wip.txt").write_text("wip\n")
    assert ws.worktree_tree() is None  # nothing but the nested repository differs
    (ws.path / "other.txt").write_text("o\n")
    tree = ws.worktree_tree()
    assert tree is not None
    assert "other.txt" in git(ws.path, "ls-tree", "--name-only", tree)
    ws.restore(ws.base_sha)
    assert (nested / "wip.txt").read_text() == "wip\n"
    assert not (ws.path / "other.txt").exists()


def test_file_replaced_by_symlink_and_restored(ws: Workspace) -> None:
    (ws.path / "README.md").unlink()
    (ws.path / "README.md").symlink_to("app.py")
    info = ws.checkpoint("symlink", {"Tandem-Step": "1"})
    mode = git(ws.path, "ls-tree", "HEAD", "README.md").split()[0]
    assert mode == "120000" and committed(ws, "README.md") == b"app.py"
    ws.restore(ws.base_sha)
    assert not (ws.path / "README.md").is_symlink()
    assert (ws.path / "README.md").read_text() == "# sample\n"
    ws.restore(info.sha)
    assert (ws.path / "README.md").is_symlink()


def test_large_generated_file_skipped_with_warning(ws: Workspace) -> None:
    big = ws.path / "generated.bin"
    with open(big, "wb") as fh:
        fh.truncate(50 * 1024 * 1024)  # sparse: 50 MB in an instant
    (ws.path / "small.txt").write_text("kept\n")
    info = ws.checkpoint("generated", {"Tandem-Step": "1"})
    assert "generated.bin" not in tree_paths(ws) and "small.txt" in tree_paths(ws)
    assert info.skipped == ["generated.bin"]
    assert "checkpoint size cap" in info.warnings[0]
    assert ws.list_checkpoints()[0].trailers["Tandem-Skipped-Files"] == "1"


def test_size_cap_is_configurable(git_repo: Path, tmp_path: Path) -> None:
    ws = Workspace.open_or_create(git_repo, "j", "s", home=tmp_path / "h", max_file_bytes=10)
    (ws.path / "eleven.txt").write_text("0123456789\n")
    (ws.path / "ten.txt").write_text("012345678\n")
    info = ws.checkpoint("cap", {"Tandem-Step": "1"})
    assert info.skipped == ["eleven.txt"] and "ten.txt" in tree_paths(ws)


def test_checkpoint_races_a_command_still_writing(ws: Workspace) -> None:
    """A verification command keeps appending while an edit applies and the step is
    checkpointed: the commit holds the edit and a consistent snapshot of the output."""
    writer = subprocess.Popen(
        [sys.executable, "-c",
         "import time\nwith open('out.log', 'a', buffering=1) as f:\n"
         "    for i in range(100000):\n        f.write(f'line {i}\\n')\n"],
        cwd=ws.path,
    )
    try:
        text = ("app.py\n<<<<<<< SEARCH\n    return a + b\n=======\n    return a + b + 1\n"
                ">>>>>>> REPLACE\nnew.py\n<<<<<<< SEARCH\n=======\nNEW = 1\n>>>>>>> REPLACE\n")
        res = ws.apply_edits(parse_edits(text))
        info = ws.checkpoint("race", {"Tandem-Step": "1"}, res.changed_paths)
    finally:
        writer.wait(timeout=60)
    assert committed(ws, "app.py").endswith(b"return a + b + 1\n")
    assert committed(ws, "new.py") == b"NEW = 1\n"
    if "out.log" in tree_paths(ws):
        snapshot = committed(ws, "out.log", info.sha)
        assert (ws.path / "out.log").read_bytes().startswith(snapshot)
    ws.checkpoint("after", {"Tandem-Step": "2"})
    assert committed(ws, "out.log") == (ws.path / "out.log").read_bytes()
    assert ws.changed_paths() == []


def test_restore_rollback_and_list(ws: Workspace) -> None:
    shas = []
    for step in (1, 2, 3):
        (ws.path / f"s{step}.txt").write_text(f"{step}\n")
        shas.append(ws.checkpoint(f"Step {step}", {"Tandem-Step": str(step)}).sha)
    assert [c.step for c in ws.list_checkpoints()] == [3, 2, 1]
    (ws.path / "junk.txt").write_text("uncommitted\n")
    (ws.path / "s1.txt").write_text("dirty\n")
    assert ws.rollback(2) == shas[1]
    assert ws.head() == shas[1]
    assert sorted(p.name for p in ws.path.iterdir() if p.name != ".git") == [
        "README.md", "app.py", "s1.txt", "s2.txt"]
    assert (ws.path / "s1.txt").read_text() == "1\n"
    assert ws.changed_paths() == []
    ws.restore(shas[2])  # a later checkpoint stays reachable
    assert (ws.path / "s3.txt").exists()
    assert ws.rollback(0) == ws.base_sha
    with pytest.raises(WorkspaceError, match=r"no checkpoint for step 9 .*steps with checkpoints"):
        ws.rollback(9)


def test_restore_refuses_commits_outside_the_job(ws: Workspace, git_repo: Path) -> None:
    (git_repo / "other.txt").write_text("o\n")
    git(git_repo, "add", "other.txt")
    git(git_repo, "commit", "-q", "-m", "user commit")
    foreign = git(git_repo, "rev-parse", "HEAD").strip()
    with pytest.raises(WorkspaceError, match="is not a checkpoint of job branch"):
        ws.restore(foreign)
    with pytest.raises(WorkspaceError, match="is not a commit"):
        ws.restore("0" * 40)


def test_diff_shows_tracked_and_untracked(ws: Workspace) -> None:
    (ws.path / "app.py").write_text("def add(a, b):\n    return a - b\n")
    (ws.path / "new.txt").write_text("hello\n")
    (ws.path / "blob.bin").write_bytes(b"\0\1")
    diff = ws.diff()
    assert "-    return a + b\n+    return a - b\n" in diff
    assert "diff --git a/new.txt b/new.txt\nnew file mode 100644" in diff and "+hello\n" in diff
    assert "Binary files /dev/null and b/blob.bin differ" in diff
    info = ws.checkpoint("s", {"Tandem-Step": "1"})
    assert ws.diff() == ""
    assert "+hello" in ws.diff(ws.base_sha) and info.sha == ws.head()


def test_tracked_file_matching_ignore_rules_is_still_checkpointed(ws: Workspace) -> None:
    (ws.path / ".gitignore").write_text("*.cfg\n")
    (ws.path / "app.cfg").write_text("v=1\n")
    git(ws.path, "add", "-f", "app.cfg")
    ws.checkpoint("force-added", {"Tandem-Step": "1"}, [".gitignore", "app.cfg"], scan=False)
    (ws.path / "app.cfg").write_text("v=2\n")
    info = ws.checkpoint("edit", {"Tandem-Step": "2"}, ["app.cfg"], scan=False)
    assert committed(ws, "app.cfg") == b"v=2\n" and info.warnings == []


def test_file_replaced_by_directory_and_back(ws: Workspace) -> None:
    (ws.path / "README.md").unlink()
    (ws.path / "README.md").mkdir()
    (ws.path / "README.md" / "index.md").write_text("# moved\n")
    ws.checkpoint("file to dir", {"Tandem-Step": "1"})
    assert tree_paths(ws) == ["README.md/index.md", "app.py"]
    (ws.path / "README.md" / "index.md").unlink()
    info = ws.checkpoint("empty dir", {"Tandem-Step": "2"}, ["README.md/index.md", "README.md"])
    assert tree_paths(ws) == ["app.py"] and info.warnings == []


def test_diff_of_new_symlink_and_file_without_newline(ws: Workspace) -> None:
    (ws.path / "latest").symlink_to("app.py")
    (ws.path / "n.txt").write_text("no newline")
    diff = ws.diff()
    assert "new file mode 120000\n--- /dev/null\n+++ b/latest\n@@ -0,0 +1,1 @@\n+app.py\n" in diff
    assert "+no newline\n\\ No newline at end of file\n" in diff
    assert ws.changed_paths() == ["latest", "n.txt"]
