"""The in-process diff of applied edits: the same change as git's diff, no git process."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from orchestrator.security.diff import parse_diff
from orchestrator.workspace import Workspace, parse_edits
from orchestrator.workspace import diffs as git_diffs
from orchestrator.workspace.git import run_git as git_run


def block(path: str, search: str, replace: str) -> str:
    return f"{path}\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n"


def _checkpointed(ws: Workspace, files: dict[str, bytes]) -> str:
    """Commit ``files`` as a checkpoint (the worktree then equals it); returns its sha."""
    for rel, data in files.items():
        (ws.path / rel).parent.mkdir(parents=True, exist_ok=True)
        (ws.path / rel).write_bytes(data)
    return ws.checkpoint("setup", {"Tandem-Step": "1"}).sha


def _summary(diff: str) -> dict[str, tuple[int, int, bool, bool, tuple[str, ...]]]:
    return {f.path: (len(f.added), len(f.removed), f.new_file, f.deleted, tuple(f.sections))
            for f in parse_diff(diff).files}


def _applies_to(ws: Workspace, base: str, diff: str, tmp_path: Path) -> dict[str, bytes]:
    """Apply ``diff`` to a fresh checkout of ``base``; returns the files it touched."""
    out = tmp_path / "check"
    subprocess.run(["git", "worktree", "add", "-q", "--detach", str(out), base], cwd=ws.path,
                   check=True, capture_output=True)
    subprocess.run(["git", "apply", "--whitespace=nowarn", "-"], cwd=out, check=True,
                   input=diff.encode(), capture_output=True)
    return {f.path: (out / f.path).read_bytes() for f in parse_diff(diff).files
            if (out / f.path).exists()}


EDITS = [
    pytest.param({"app.py": b"def add(a, b):\n    return a + b\n"},
                 block("app.py", "    return a + b\n", "    return b + a\n"), id="modify"),
    pytest.param({}, block("pkg/new/mod.py", "", "x = 1\ny = 2\n"), id="create-in-new-dir"),
    pytest.param({"old.txt": b"bye\n"},
                 "old.txt\n<<<<<<< DELETE\n>>>>>>> DELETE\n", id="delete"),
    pytest.param({"n.txt": b"one\ntwo"}, block("n.txt", "one\n", "ONE\n"), id="no-eol"),
    pytest.param({"w.txt": b"one\r\ntwo\r\nthree\r\n"}, block("w.txt", "two\n", "2\n"),
                 id="crlf"),
    pytest.param({"long.py": b"".join(b"line %d\n" % i for i in range(40))},
                 block("long.py", "line 3\n", "line three\n")
                 + block("long.py", "line 30\n", "line thirty\nextra\n"), id="two-hunks"),
]


@pytest.mark.parametrize(("files", "edit"), EDITS)
def test_edits_diff_matches_git(ws: Workspace, files: dict[str, bytes], edit: str,
                                tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = _checkpointed(ws, files) if files else ws.head()
    ws.apply_edits(parse_edits(edit))
    by_git = git_diffs.worktree_diff(ws.path, base, ws.max_file_bytes)

    def no_git(*args: object, **kwargs: object) -> None:
        raise AssertionError("edits_diff ran git")

    monkeypatch.setattr(git_diffs, "worktree_diff", no_git)
    ours = ws.edits_diff(base)
    monkeypatch.undo()
    assert _summary(ours) == _summary(by_git)
    applied = _applies_to(ws, base, ours, tmp_path)
    assert applied == {p: (ws.path / p).read_bytes() for p in applied}


def test_deleted_executable_keeps_its_mode(ws: Workspace) -> None:
    base = _checkpointed(ws, {"run.sh": b"#!/bin/sh\necho hi\n"})
    os.chmod(ws.path / "run.sh", 0o755)
    base = ws.checkpoint("mode", {"Tandem-Step": "2"}).sha
    ws.apply_edits(parse_edits("run.sh\n<<<<<<< DELETE\n>>>>>>> DELETE\n"))
    assert "deleted file mode 100755\n" in ws.edits_diff(base)


def test_falls_back_to_git_when_the_worktree_is_not_known(ws: Workspace, git_repo: Path) -> None:
    base = ws.head()
    (ws.path / "written-by-a-command.txt").write_text("data\n")
    # Opened again, as a resumed job does: what the worktree holds is not known.
    again = Workspace.open_or_create(git_repo, "job-1", "Add a feature",
                                     home=ws.path.parent.parent)
    again.apply_edits(parse_edits(block("app.py", "    return a + b\n", "    return 0\n")))
    paths = set(_summary(again.edits_diff(base)))
    assert paths == {"app.py", "written-by-a-command.txt"}


def test_restore_and_checkpoint_reset_the_record(ws: Workspace) -> None:
    base = ws.head()
    ws.apply_edits(parse_edits(block("app.py", "    return a + b\n", "    return 1\n")))
    ws.restore(base)
    assert ws.edits_diff(base) == ""
    ws.apply_edits(parse_edits(block("app.py", "    return a + b\n", "    return 2\n")))
    sha = ws.checkpoint("step", {"Tandem-Step": "1"}).sha
    assert ws.edits_diff(sha) == ""
    ws.apply_edits(parse_edits(block("README.md", "# sample\n", "# shop\n")))
    assert set(_summary(ws.edits_diff(sha))) == {"README.md"}


@pytest.mark.parametrize("scan_first", [True, False], ids=["scan-first", "stage-first"])
def test_checkpoint_stages_while_scanning_and_keeps_ignored_files_out(
    ws: Workspace, scan_first: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The edited files are staged while ``git status`` runs; whichever finishes first,
    the commit holds the edits and files a command wrote, and no file .gitignore excludes."""
    import threading

    from orchestrator.workspace import snapshot

    _checkpointed(ws, {".gitignore": b"*.secret\n"})
    (ws.path / "old.secret").write_text("kept out\n")  # an ignored file that existed
    done = {"scan": threading.Event(), "stage": threading.Event()}
    real_scan, real_stage = snapshot.scan_entries, snapshot.stage

    def scan(*args: object) -> list[tuple[str, str]]:
        if not scan_first:
            done["stage"].wait(5)
        try:
            return real_scan(*args)  # type: ignore[arg-type]
        finally:
            done["scan"].set()

    def stage(*args: object) -> None:
        if scan_first:
            done["scan"].wait(5)
        real_stage(*args)  # type: ignore[arg-type]
        done["stage"].set()

    monkeypatch.setattr(snapshot, "scan_entries", scan)
    monkeypatch.setattr(snapshot, "stage", stage)
    edit = (block("app.py", "    return a + b\n", "    return a * b\n")
            + block("keys.secret", "", "TOKEN\n") + block("old.secret", "kept out\n", "x\n")
            + block("lib/new.py", "", "N = 1\n"))
    ws.apply_edits(parse_edits(edit))
    (ws.path / "report.txt").write_text("written by a command\n")
    info = ws.checkpoint("step", {"Tandem-Step": "2"}, allow_empty=True)
    files = subprocess.run(["git", "ls-tree", "-r", "--name-only", info.sha], cwd=ws.path,
                           check=True, capture_output=True, text=True).stdout.split()
    assert set(files) == {".gitignore", "README.md", "app.py", "lib/new.py", "report.txt"}
    assert sorted(w.split(":")[0] for w in info.warnings) == ["keys.secret", "old.secret"]
    status = subprocess.run(["git", "status", "--porcelain"], cwd=ws.path, check=True,
                            capture_output=True, text=True).stdout
    assert status == ""


def test_restore_of_a_known_checkpoint_skips_the_checks(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Restoring a commit this workspace made costs two git commands (reset, clean); a
    commit it never saw still goes through every check."""
    from orchestrator.workspace import git as git_mod

    ws.apply_edits(parse_edits(block("app.py", "    return a + b\n", "    return 3\n")))
    sha = ws.checkpoint("step", {"Tandem-Step": "1"}).sha
    ws.apply_edits(parse_edits(block("app.py", "    return 3\n", "    return 4\n")))
    calls: list[str] = []
    real = git_mod.git_proc

    def counted(cwd: Path, args: list[str], **kw: object) -> object:
        calls.append(str(args[0]))
        return real(cwd, args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(git_mod, "git_proc", counted)
    ws.restore(sha)
    assert calls == ["reset", "clean"]
    assert (ws.path / "app.py").read_text().endswith("return 3\n")
    foreign = subprocess.run(["git", "commit-tree", "-m", "x", f"{sha}^{{tree}}"],
                             cwd=ws.path, check=True, capture_output=True,
                             text=True).stdout.strip()
    from orchestrator.errors import WorkspaceError
    with pytest.raises(WorkspaceError, match="not a checkpoint"):
        ws.restore(foreign)


def test_git_diff_shows_files_a_gitattributes_rule_calls_binary(ws: Workspace) -> None:
    """The repository's ``.gitattributes`` is not trusted: ``-diff`` must not hide a
    file's content from the gate, which reads git's diff when the in-process one is not
    available (after a resume)."""
    base = _checkpointed(ws, {".gitattributes": b"*.cfg -diff\n", "app.cfg": b"a = 1\n"})
    (ws.path / "app.cfg").write_text("a = 1\ntoken = AKIAQ7ZT3B5XK2M9R4WD\n")
    diff = ws.diff(base)
    assert "+token = AKIAQ7ZT3B5XK2M9R4WD" in diff and "Binary files" not in diff


@pytest.mark.parametrize("setting", ["mnemonicPrefix", "noprefix"])
def test_git_rendered_diff_keeps_a_b_prefixes_whatever_the_users_config(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: str
) -> None:
    """The gate's path rules read "a/<path>" and "b/<path>": a user's diff config must
    not turn them into "w/billing/rates.py" or "billing/rates.py"."""
    home = tmp_path / "user-home"
    home.mkdir()
    (home / ".gitconfig").write_text(f"[diff]\n\t{setting} = true\n")
    monkeypatch.setenv("HOME", str(home))
    # A byte that is not UTF-8: the in-process diff leaves this file to git.
    base = _checkpointed(ws, {"billing/rates.py": b"RATE = 1\n# \xe9\n"})
    ws.apply_edits(parse_edits(block("billing/rates.py", "RATE = 1\n", "RATE = 2\n")))
    diff = ws.edits_diff(base)
    assert "diff --git a/billing/rates.py b/billing/rates.py\n" in diff
    assert [f.path for f in parse_diff(diff).files] == ["billing/rates.py"]


def test_every_patch_git_prints_here_keeps_a_b_prefixes(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not only the worktree diff: any patch the workspace's git prints (a checkpoint's,
    say) keeps the prefixes that the gate and ``git am`` read."""
    home = tmp_path / "user-home"
    home.mkdir()
    (home / ".gitconfig").write_text("[diff]\n\tnoprefix = true\n")
    monkeypatch.setenv("HOME", str(home))
    sha = _checkpointed(ws, {"billing/rates.py": b"RATE = 1\n"})
    shown = git_run(ws.path, ["show", "--format=", sha]).decode()
    assert shown.startswith("diff --git a/billing/rates.py b/billing/rates.py\n")
