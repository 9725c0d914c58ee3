"""Squashing a job's step commits into one, keeping the provenance in the message.

The squashed commit has the same tree as the branch tip; its message is the given text,
a list of the step commits it replaces, and a trailer block holding every step's
``Tandem-*`` trailers in step order, so ``git log`` still tells who wrote what.
"""

from __future__ import annotations

from pathlib import Path

from orchestrator.pr.gitops import commits_between, rev_parse, run_git

SQUASHED_FROM = "Tandem-Squashed-From"


def squash_commits(worktree: Path, base_sha: str, message: str, ref: str = "HEAD") -> str:
    """Replace ``base_sha..ref`` by one commit (same tree); returns the new tip's SHA.

    With fewer than two commits the branch is left as it is. The working tree and index
    are not touched (the tree does not change). ``ref``: ``HEAD`` (the worktree's branch)
    or a full ref name such as ``refs/heads/tandem/fix-1``."""
    head = rev_parse(worktree, ref)
    commits = commits_between(worktree, base_sha, head)
    if len(commits) < 2:
        return head
    text = squash_message(worktree, commits, message)
    new_sha = run_git(
        worktree, "commit-tree", f"{head}^{{tree}}", "-p", base_sha, "-F", "-",
        env=_author_env(worktree, commits[-1]), stdin=text,
    ).stdout.strip()
    run_git(worktree, "update-ref", "-m", "tandem: squash step commits", ref, new_sha, head)
    return new_sha


def squash_message(worktree: Path, commits: list[str], message: str) -> str:
    steps = [
        f"- {sha[:10]} {run_git(worktree, 'log', '-1', '--format=%s', sha).stdout.strip()}"
        for sha in commits
    ]
    trailers: list[str] = []
    for sha in commits:
        out = run_git(worktree, "log", "-1", "--format=%(trailers:only,unfold)", sha).stdout
        trailers += [line for line in out.splitlines() if line.strip()]
    trailers.append(f"{SQUASHED_FROM}: {' '.join(sha[:12] for sha in commits)}")
    return (
        f"{message.strip() or 'Tandem changes'}\n\n"
        f"Squashed from {len(commits)} step commits:\n" + "\n".join(steps) + "\n\n"
        + "\n".join(trailers) + "\n"
    )


def _author_env(worktree: Path, sha: str) -> dict[str, str]:
    """The last step's author; the committer is Tandem's fixed identity, as for a step."""
    name, email, date = run_git(
        worktree, "log", "-1", "--format=%an%x00%ae%x00%aI", sha
    ).stdout.strip().split("\x00")
    return {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email, "GIT_AUTHOR_DATE": date}
