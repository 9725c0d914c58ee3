"""Deterministic synthetic repositories for the checkpoint benchmark (and large-repo tests).

A repository of N files is written with one ``git fast-import`` stream (seconds for
100,000 files, where ``git add`` would take minutes), into a bare repository cached under
a directory the caller names. The same N always gives the same commit sha.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from orchestrator.errors import GitError
from orchestrator.workspace.git import git_ok, git_text, run_git

FILES_PER_DIR = 100
DIRS_PER_PARENT = 100
_EPOCH = 1_700_000_000


def synthetic_path(index: int) -> str:
    """Path of file ``index``: 100 files per directory, 100 directories per parent."""
    leaf = index // FILES_PER_DIR
    return f"pkg{leaf // DIRS_PER_PARENT:03d}/mod{leaf % DIRS_PER_PARENT:02d}/f{index:06d}.py"


def synthetic_content(index: int) -> bytes:
    lines = [f'"""Module {index}."""\n', "\n"]
    lines += [f"def f{index}_{k}(x):\n    return x * {k + index % 7}\n\n" for k in range(3)]
    return "".join(lines).encode()


def _stream(n_files: int) -> bytes:
    parts = [
        b"commit refs/heads/main\n",
        f"author Synthetic <synthetic@localhost> {_EPOCH} +0000\n".encode(),
        f"committer Synthetic <synthetic@localhost> {_EPOCH} +0000\n".encode(),
        f"data <<EOF\nsynthetic repository of {n_files} files\nEOF\n".encode(),
    ]
    parts.append(b"M 100644 inline .gitignore\ndata 12\n__pycache__\n")
    for i in range(n_files):
        body = synthetic_content(i)
        parts.append(f"M 100644 inline {synthetic_path(i)}\ndata {len(body)}\n".encode())
        parts.append(body)
        parts.append(b"\n")
    parts.append(b"\n")
    return b"".join(parts)


def ensure_synthetic_repo(cache_dir: Path, n_files: int) -> Path:
    """The bare repository of ``n_files`` files under ``cache_dir`` (built on first use)."""
    repo = cache_dir / f"synthetic-{n_files}.git"
    if (repo / "HEAD").exists() and git_ok(repo, "rev-parse", "--verify", "-q", "main"):
        return repo
    if repo.exists():
        shutil.rmtree(repo)
    repo.mkdir(parents=True)
    git_text(repo, "init", "-q", "--bare", "-b", "main")
    try:
        run_git(repo, ["fast-import", "--quiet"], stdin=_stream(n_files))
    except GitError:
        shutil.rmtree(repo, ignore_errors=True)
        raise
    return repo
