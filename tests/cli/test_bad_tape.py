"""A --tape that does not load (invalid YAML, empty, not text) is refused as one line with
exit status 2 before the job creates anything: no job record, no branch, no worktree in
the user's repository, however often it is tried. The real `tandem` in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.jobstore import list_jobs


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout


@pytest.mark.parametrize(("content", "says"), [
    (b"- match: {model: x\n", "invalid YAML"),
    (b"", "no tape entries"),
    (b"\x00\xff\xfe\x80binary", "not a text file"),
])
def test_a_bad_tape_is_refused_before_the_job_exists(
    tmp_path: Path, demo_repo: Path, content: bytes, says: str
) -> None:
    tape = tmp_path / "bad.yaml"
    tape.write_bytes(content)
    branches, worktrees = _git(demo_repo, "branch"), _git(demo_repo, "worktree", "list")
    for _ in range(2):  # a retry leaves nothing behind either
        out = subprocess.run([sys.executable, "-m", "orchestrator", "run", str(demo_repo),
                              "Add slugify", "--tape", str(tape), "--pr", "none"],
                             env=dict(os.environ), capture_output=True, text=True, timeout=60)
        assert out.returncode == 2, out.stderr
        assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
        assert str(tape) in out.stderr and says in out.stderr, out.stderr
    assert list_jobs() == []
    assert _git(demo_repo, "branch") == branches
    assert _git(demo_repo, "worktree", "list") == worktrees
