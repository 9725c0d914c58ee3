"""`tandem bench checkpoint` end to end on tiny synthetic repositories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.bench.checkpoint import cli
from orchestrator.cli import main
from orchestrator.workspace.synthetic import ensure_synthetic_repo
from tests.workspace.conftest import git


def test_synthetic_repos_are_deterministic_and_cached(tmp_path: Path) -> None:
    a = ensure_synthetic_repo(tmp_path / "a", 250)
    b = ensure_synthetic_repo(tmp_path / "b", 250)
    assert git(a, "rev-parse", "main") == git(b, "rev-parse", "main")
    assert len(git(a, "ls-tree", "-r", "--name-only", "main").split()) == 251
    mtime = (a / "HEAD").stat().st_mtime_ns
    assert ensure_synthetic_repo(tmp_path / "a", 250) == a
    assert (a / "HEAD").stat().st_mtime_ns == mtime


def test_bench_json_report(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    result = CliRunner().invoke(
        cli, ["--json", "--sizes", "120,40", "--repeat", "2", "--cache-dir", str(cache)]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert [row["files"] for row in report["sizes"]] == [40, 120]
    for row in report["sizes"]:
        for key in ("ours_step_commit_ms", "ours_checkpoint_ms", "naive_add_commit_ms",
                    "ours_scan_ms",
                    "ours_scan_commit_ms", "worktree_create_ms", "restore_ms"):
            assert row[key] > 0, key
    assert set(report["summary"]) >= {"ours_scale_ratio", "faster_than_naive_at_largest"}
    # worktrees and branches are cleaned up; the repositories stay cached
    assert list((cache / "home" / "worktrees").iterdir()) == []
    assert "tandem/" not in git(cache / "synthetic-40.git", "branch", "--list")


def test_bad_sizes_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["bench", "checkpoint", "--sizes", "ten", "--cache-dir", str(tmp_path)])
    assert exc.value.code == 2
    assert "--sizes 'ten': give file counts separated by commas" in capsys.readouterr().err
