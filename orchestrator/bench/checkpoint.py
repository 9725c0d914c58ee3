"""``tandem bench checkpoint``: checkpoint cost against repository size.

Per size, in one job worktree of a cached synthetic repository, the same 3-file change
is checkpointed four ways, interleaved so that they share the machine's noise: the step
commit a job makes (edits applied through the workspace, trees written in-process:
``commit_edits``; after a verification command it adds the scan timed below), ours with
the paths given (``checkpoint(paths, scan=False)``), ours with a ``git status`` scan (scan
and commit timed apart), and ``git add -A && git commit``.
Worktree creation and restore are timed too. Medians, in milliseconds.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from orchestrator.errors import ConfigError
from orchestrator.workspace import Workspace, parse_edits
from orchestrator.workspace.git import git_env, git_text
from orchestrator.workspace.synthetic import ensure_synthetic_repo, synthetic_path
from orchestrator.workspace.worktree import remove_worktree

TARGET_SCALE_RATIO = 3.0


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def _timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _touch(ws: Workspace, n_files: int, round_no: int, salt: int) -> list[str]:
    """Append a line to 3 deterministic files; returns their paths."""
    paths = [synthetic_path((round_no * 7919 + k * 104729 + salt) % n_files) for k in range(3)]
    for rel in paths:
        with open(ws.path / rel, "a") as fh:
            fh.write(f"# change {salt}-{round_no}\n")
    return paths


def _edit(ws: Workspace, n_files: int, round_no: int) -> None:
    """The same kind of 3-file change, made as a job makes it: edit blocks applied."""
    paths = [synthetic_path((round_no * 7919 + k * 104729) % n_files) for k in range(3)]
    text = ""
    for rel in paths:
        whole = (ws.path / rel).read_text()  # the whole file: a SEARCH that matches once
        text += (f"{rel}\n<<<<<<< SEARCH\n{whole}=======\n{whole}"
                 f"# step {round_no}\n>>>>>>> REPLACE\n")
    ws.apply_edits(parse_edits(text))


def _naive_commit(path: Path) -> None:
    env = git_env()
    subprocess.run(["git", "add", "-A"], cwd=path, env=env, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "naive"], cwd=path, env=env, check=True)


@dataclass
class _Run:
    """One size under test: its job workspace and the samples taken so far (seconds)."""

    n_files: int
    ws: Workspace
    row: dict[str, Any]
    samples: dict[str, list[float]] = field(default_factory=dict)

    def add(self, key: str, seconds: float) -> None:
        self.samples.setdefault(key, []).append(seconds)


def _one_round(run: _Run, i: int) -> None:
    ws, n = run.ws, run.n_files
    _edit(ws, n, i)
    run.add("ours_step_commit_ms", ws.commit_edits(
        f"bench step {i}", {"Tandem-Step": str(i + 1)}, commands_ran=False).total_s)
    ws.settle()  # its index update runs in the background: not in the next sample
    paths = _touch(ws, n, i, 1)
    run.add("ours_checkpoint_ms", ws.checkpoint(
        f"bench {i}", {"Tandem-Step": str(i + 1)}, paths, scan=False).total_s)
    _touch(ws, n, i, 2)
    run.add("naive_add_commit_ms", _timed(lambda: _naive_commit(ws.path)))
    _touch(ws, n, i, 3)
    info = ws.checkpoint(f"bench scan {i}", {"Tandem-Step": str(i + 1)}, None, scan=True)
    run.add("ours_scan_ms", info.scan_s)
    run.add("ours_scan_commit_ms", info.commit_s)


def _restore_round(run: _Run) -> None:
    checkpoints = run.ws.list_checkpoints()
    for sha in (checkpoints[-1].sha, checkpoints[0].sha):
        t0 = time.perf_counter()
        run.ws.restore(sha)
        run.add("restore_ms", time.perf_counter() - t0)


def _open(cache_dir: Path, n_files: int) -> _Run:
    t0 = time.perf_counter()
    repo = ensure_synthetic_repo(cache_dir, n_files)
    build_s = time.perf_counter() - t0
    home, job = cache_dir / "home", f"bench-{n_files}"
    # A run that was interrupted may have left its worktree and branch behind.
    remove_worktree(repo, home / "worktrees" / job, f"tandem/bench-{job}", delete_branch=True)
    t1 = time.perf_counter()
    ws = Workspace.open_or_create(repo, job, "bench", home=home)
    row = {"files": n_files, "repo_build_or_load_s": round(build_s, 2),
           "worktree_create_ms": _ms(time.perf_counter() - t1)}
    return _Run(n_files, ws, row)


def run_bench(cache_dir: Path, sizes: list[int], repeat: int) -> list[dict[str, Any]]:
    """Every size gets its own worktree; rounds go across sizes so that all sizes see
    the same machine load, which keeps the ratios between sizes meaningful."""
    runs: list[_Run] = []
    try:
        for n in sizes:
            runs.append(_open(cache_dir, n))
        for i in range(repeat):
            for run in runs:
                _one_round(run, i)
        for _ in range(max(1, repeat // 2)):
            for run in runs:
                _restore_round(run)
    finally:
        for run in runs:
            t0 = time.perf_counter()
            run.ws.remove(delete_branch=True)
            run.row["worktree_remove_ms"] = _ms(time.perf_counter() - t0)
    for run in runs:
        run.row.update({k: _ms(statistics.median(v)) for k, v in run.samples.items()})
    return [run.row for run in runs]


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Scale and speed-up of the step commit (what a job runs); the same for the
    paths-given checkpoint as ``paths_given_*``."""
    small, large = rows[0], rows[-1]
    scale = large["ours_step_commit_ms"] / max(small["ours_step_commit_ms"], 1e-9)
    speedup = large["naive_add_commit_ms"] / max(large["ours_step_commit_ms"], 1e-9)
    given = large["ours_checkpoint_ms"] / max(small["ours_checkpoint_ms"], 1e-9)
    return {
        "paths_given_scale_ratio": round(given, 2),
        "ours_scale_ratio": round(scale, 2),
        "ours_scale_target": TARGET_SCALE_RATIO,
        "ours_scale_ok": scale <= TARGET_SCALE_RATIO,
        "naive_over_ours_at_largest": round(speedup, 2),
        "faster_than_naive_at_largest": speedup > 1.0,
    }


def _parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--sizes {text!r}: give file counts separated by commas, "
                          "e.g. 1000,10000,100000") from None
    if not sizes or min(sizes) < 10:
        raise ConfigError(f"--sizes {text!r}: each size must be at least 10 files")
    return sorted(sizes)


def _print_table(result: dict[str, Any]) -> None:
    cols = ["files", "ours_step_commit_ms", "ours_checkpoint_ms", "naive_add_commit_ms",
            "ours_scan_ms", "ours_scan_commit_ms", "worktree_create_ms", "restore_ms"]
    click.echo("  ".join(f"{c:>20}" for c in cols))
    for row in result["sizes"]:
        click.echo("  ".join(f"{row[c]:>20}" for c in cols))
    for key, value in result["summary"].items():
        click.echo(f"{key}: {value}")


@click.command("checkpoint")
@click.option("--sizes", default="1000,10000,100000", show_default=True,
              help="File counts of the synthetic repositories, comma-separated.")
@click.option("--repeat", default=7, show_default=True, type=click.IntRange(1, 100),
              help="Checkpoints per method and size; medians are reported.")
@click.option("--cache-dir", default=".bench-cache", show_default=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Where the synthetic repositories are built once and reused.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def cli(sizes: str, repeat: int, cache_dir: Path, as_json: bool) -> None:
    """Time a 3-file checkpoint (ours vs `git add -A && git commit`), the status scan,
    worktree creation and restore on synthetic repositories of the given sizes."""
    from orchestrator.cli import emit_json

    cache_dir = cache_dir.resolve()
    rows = run_bench(cache_dir, _parse_sizes(sizes), repeat)
    result = {
        "bench": "checkpoint",
        "git": git_text(cache_dir, "--version"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "repeat": repeat,
        "sizes": rows,
        "summary": summarize(rows),
    }
    if as_json:
        emit_json(result)
    else:
        _print_table(result)
