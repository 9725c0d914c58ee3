"""A crash right after the step commit, before the graph recorded it: resume adopts the
commit (never a second commit for the step), whichever node made it."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from orchestrator.workspace import Workspace, parse_edits
from tests.fixtures_jobs import bare_runtime

EDIT = "shop/extra.py\n<<<<<<< SEARCH\n=======\nX = 1\n>>>>>>> REPLACE\n"


def _branch_log(ws: Workspace) -> list[str]:
    return subprocess.run(["git", "log", "--format=%H", f"{ws.base_sha}..HEAD"], cwd=ws.path,
                          check=True, capture_output=True, text=True).stdout.split()


@pytest.mark.parametrize("next_node", ["verify", "checkpoint"])
def test_commit_made_before_the_crash_is_adopted(demo_repo: Path, tmp_path: Path,
                                                next_node: str) -> None:
    rt = bare_runtime(demo_repo, tmp_path, "job-adopt")
    base = rt.ws.base_sha
    rt.ws.apply_edits(parse_edits(EDIT))
    made = rt.adopt_or_commit(base, 1, "step 1", {"Tandem-Job": "job-adopt",
                                                   "Tandem-Step": "1"})
    # ... the process dies here: the graph still says the step is being verified.
    state: dict[str, Any] = {"checkpoint_sha": base, "step_index": 0, "next": next_node,
                             "pending_edits": [EDIT]}
    resumed = bare_runtime(demo_repo, tmp_path, "job-adopt")
    resumed.sync_worktree(state)  # type: ignore[arg-type]
    assert resumed.adoptable == made
    again = resumed.adopt_or_commit(base, 1, "step 1", {"Tandem-Job": "job-adopt",
                                                        "Tandem-Step": "1"})
    assert again == made and _branch_log(resumed.ws) == [made]


def test_no_adoption_outside_the_committing_nodes(demo_repo: Path, tmp_path: Path) -> None:
    rt = bare_runtime(demo_repo, tmp_path, "job-adopt")
    base = rt.ws.base_sha
    rt.ws.apply_edits(parse_edits(EDIT))
    rt.adopt_or_commit(base, 1, "step 1", {"Tandem-Job": "job-adopt", "Tandem-Step": "1"})
    state: dict[str, Any] = {"checkpoint_sha": base, "step_index": 0, "next": "edit",
                             "pending_edits": []}
    resumed = bare_runtime(demo_repo, tmp_path, "job-adopt")
    resumed.sync_worktree(state)  # type: ignore[arg-type]
    assert resumed.adoptable is None and resumed.ws.head() == base
    assert not (resumed.ws.path / "shop/extra.py").exists()
