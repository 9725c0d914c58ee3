"""Checkpoint commit objects written in-process are ordinary, valid git commits."""

from __future__ import annotations

import subprocess

from orchestrator.workspace import Workspace, parse_edits
from orchestrator.workspace.git import IDENTITY


def _git(ws: Workspace, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=ws.path, check=True, capture_output=True,
                          text=True).stdout


def test_checkpoint_commit_is_valid_and_signed_by_tandem(ws: Workspace) -> None:
    base = ws.head()
    ws.apply_edits(parse_edits("app.py\n<<<<<<< SEARCH\n    return a + b\n=======\n"
                               "    return a - b\n>>>>>>> REPLACE\n"))
    info = ws.checkpoint("Fix subtraction", {"Tandem-Step": "1", "Tandem-Job": "job-1"})
    assert info.created and info.parent == base
    assert _git(ws, "rev-parse", "HEAD").strip() == info.sha
    _git(ws, "fsck", "--strict", "--no-dangling")  # raises on a malformed object
    raw = _git(ws, "cat-file", "commit", info.sha)
    tree = _git(ws, "write-tree").strip()  # the index holds exactly what was committed
    assert raw.startswith(f"tree {tree}\nparent {base}\nauthor Tandem <")
    assert f"committer {IDENTITY['GIT_COMMITTER_NAME']} <{IDENTITY['GIT_COMMITTER_EMAIL']}>" in raw
    assert _git(ws, "log", "-1", "--format=%s%n%(trailers:only,unfold)").split("\n")[:3] == [
        "Fix subtraction", "Tandem-Step: 1", "Tandem-Job: job-1"]
    assert _git(ws, "status", "--porcelain") == ""
    assert "return a - b" in _git(ws, "show", f"{info.sha}:app.py")
    reflog = _git(ws, "reflog", "-1", "--format=%gs")
    assert "tandem checkpoint" in reflog
