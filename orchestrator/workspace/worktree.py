"""Creating, finding and removing a job's git worktree; the user's tree is never touched.

``git worktree add`` writes only the new worktree, its admin directory
(``.git/worktrees/<job>``) and the new branch: the user's working tree, index, HEAD and
existing branches stay byte-identical. The job's base commit is recorded in the admin
directory so that a resumed job knows where its checkpoints start.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from orchestrator.errors import ConfigError, GitError, WorkspaceError
from orchestrator.workspace.git import git_ok, git_text, run_git

_JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_BASE_FILE = "tandem-base"


def check_job_id(job_id: str) -> str:
    if not _JOB_ID.match(job_id) or job_id.endswith((".lock", ".")) or ".." in job_id:
        raise ConfigError(f"invalid job id {job_id!r}: use 1-64 letters, digits, '.', '_' "
                          "or '-', starting with a letter or digit")
    return job_id


def slugify(slug: str) -> str:
    """A branch-name-safe slug: lowercase words joined by '-', at most 40 characters."""
    words = re.findall(r"[a-z0-9]+", slug.lower())
    return "-".join(words)[:40].strip("-") or "job"


def common_dir(repo: Path) -> Path:
    """The repository's shared git directory; a clear error when ``repo`` is not one."""
    if not repo.is_dir():
        raise WorkspaceError(f"repository not found: {repo} (check the path)")
    try:
        out = git_text(repo, "rev-parse", "--path-format=absolute", "--git-common-dir")
    except GitError as exc:
        raise WorkspaceError(f"not a git repository: {repo} (run `git init` there, or "
                             "pass the repository's root)") from exc
    return Path(os.path.realpath(out))


def check_repo_root(repo: Path, *, tool: str = "tandem") -> Path:
    """``repo`` resolved, when it is the root of a git repository with a working tree;
    otherwise a ``ConfigError`` that says what to pass instead (``tool``: the command named
    in the advice, e.g. ``tandem chat``)."""
    repo = repo.resolve()
    if (repo / ".git").exists():
        return repo
    plain = ConfigError(f"{repo} is not a git repository (no .git): run `git init` there, "
                        f"or point {tool} at the repository root")
    try:
        bare = git_text(repo, "rev-parse", "--is-bare-repository")
        inside_git_dir = git_text(repo, "rev-parse", "--is-inside-git-dir")
    except GitError:
        raise plain from None
    if bare == "true":
        raise ConfigError(f"{repo} is a bare git repository (no working tree); "
                          "pass a clone of it")
    if inside_git_dir == "true":
        raise ConfigError(f"{repo} is inside a repository's .git folder; "
                          "pass the repository's root")
    try:
        top = git_text(repo, "rev-parse", "--show-toplevel")
    except GitError:
        raise plain from None
    if not top:
        raise plain
    raise ConfigError(f"{repo} is inside the git repository {top}; pass the repository's root")


def resolve_commit(repo: Path, ref: str) -> str:
    try:
        return git_text(repo, "rev-parse", "--verify", "-q", f"{ref}^{{commit}}")
    except GitError as exc:
        raise WorkspaceError(f"base ref {ref!r} is not a commit in {repo} (check the branch "
                             "or sha; an empty repository needs a first commit)") from exc


def attach_existing(path: Path, repo_common: Path, branch: str) -> None:
    """Check that ``path`` is this repository's worktree on ``branch``, or raise."""
    where = f"{path} exists but is not"
    try:
        top = git_text(path, "rev-parse", "--show-toplevel")
        common = git_text(path, "rev-parse", "--path-format=absolute", "--git-common-dir")
        head = git_text(path, "symbolic-ref", "-q", "HEAD")
    except GitError as exc:
        raise WorkspaceError(f"{where} a Tandem worktree; remove it or pick another job "
                             "id") from exc
    if Path(os.path.realpath(top)) != Path(os.path.realpath(path)):
        raise WorkspaceError(f"{where} a worktree root (it lies inside {top})")
    if Path(os.path.realpath(common)) != repo_common:
        raise WorkspaceError(f"{where} a worktree of this repository (it belongs to {common})")
    if head != f"refs/heads/{branch}":
        raise WorkspaceError(f"{where} on branch {branch} (it is on {head or 'a detached HEAD'})")


def add_worktree(
    repo: Path, path: Path, branch: str, base_ref: str, base_sha: str | None = None
) -> str:
    """Create the worktree (reusing the branch if it exists); returns the base sha.

    ``base_sha``: the job's recorded base, when it has one (a resumed job): a branch that
    is gone is made again from there, not from wherever ``base_ref`` points now. A base
    this clone lacks (the job ran on another machine) is left to
    ``Workspace.ensure_commit``, which fetches the job's checkpoints and takes it over."""
    forget_missing(repo, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if git_ok(repo, "rev-parse", "--verify", "-q", f"refs/heads/{branch}"):
        git_text(repo, "worktree", "add", "-q", str(path), branch)
        base = recorded_or_merge_base(repo, branch, base_ref, base_sha)
    else:
        if base_sha and not git_ok(repo, "cat-file", "-e", f"{base_sha}^{{commit}}"):
            base_sha = None  # not in this clone (yet): see above
        base = resolve_commit(repo, base_sha or base_ref)
        git_text(repo, "worktree", "add", "-q", "--no-track", "-b", branch, str(path), base)
    # Index features live in the worktree's own index file, not in anyone's config.
    git_text(path, "update-index", "--split-index", "--untracked-cache")
    git_text(path, "write-tree")  # primes the cache-tree that later checkpoints reuse
    admin_dir(path).joinpath(_BASE_FILE).write_text(base + "\n")
    return base


def recorded_or_merge_base(
    repo: Path, branch: str, base_ref: str, base_sha: str | None
) -> str:
    """``base_sha`` when the branch descends from it, else where the branch left
    ``base_ref``."""
    if base_sha and git_ok(repo, "merge-base", "--is-ancestor", base_sha, branch):
        return base_sha
    return merge_base(repo, branch, base_ref)


def merge_base(repo: Path, branch: str, base_ref: str) -> str:
    try:
        return git_text(repo, "merge-base", branch, base_ref)
    except GitError:
        return git_text(repo, "rev-list", "--max-parents=0", "-n", "1", branch)


def admin_dir(path: Path) -> Path:
    return Path(git_text(path, "rev-parse", "--absolute-git-dir"))


def write_base(path: Path, base: str) -> None:
    """Record ``base`` as the job's base commit (where its checkpoints start)."""
    admin_dir(path).joinpath(_BASE_FILE).write_text(base + "\n")


def read_base(
    path: Path, repo: Path, branch: str, base_ref: str, base_sha: str | None = None
) -> str:
    marker = admin_dir(path) / _BASE_FILE
    if marker.exists():
        return marker.read_text().strip()
    return recorded_or_merge_base(repo, branch, base_ref, base_sha)


def remove_worktree(repo: Path, path: Path, branch: str, delete_branch: bool) -> None:
    if path.exists():
        git_text(repo, "worktree", "remove", "--force", "--force", str(path))
    else:
        forget_missing(repo, path)
    if delete_branch and git_ok(repo, "rev-parse", "--verify", "-q", f"refs/heads/{branch}"):
        git_text(repo, "branch", "-q", "-D", branch)


def forget_missing(repo: Path, path: Path) -> None:
    """Drop git's record of the worktree at ``path`` when its folder is gone (deleted by
    hand), so that it can be added again; no other record is touched.

    Not ``git worktree prune``: that also drops the records of the user's own worktrees
    whose folder is missing for a while (on a drive not mounted now), which git keeps for
    three months; their index, and the branch they hold checked out, would be lost."""
    if path.exists() or not _registered(repo, path):
        return
    git_text(repo, "worktree", "remove", "--force", "--force", str(path))


def _registered(repo: Path, path: Path) -> bool:
    out = run_git(repo, ["worktree", "list", "--porcelain", "-z"])
    listed = [os.fsdecode(line[len(b"worktree "):]) for line in out.split(b"\0")
              if line.startswith(b"worktree ")]
    return any(os.path.realpath(p) == os.path.realpath(path) for p in listed)
