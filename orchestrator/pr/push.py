"""Pushing the job branch: a plain push the first time, force-with-lease on update.

The lease is the SHA Tandem itself pushed last time: the job branch may have been rewritten
(squash, rollback) so an update needs force, but never over commits somebody else pushed.
A rejection raises ``PushRejected``; nothing local is changed by a failed push. Its message
quotes the remote's own words, credentials and known secrets redacted (a remote may echo
what it was sent).
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from orchestrator.errors import PushRejected
from orchestrator.pr.gitops import run_git, strip_url_credentials
from orchestrator.secrets import redact


def push_branch(
    worktree: Path,
    remote: str,
    branch: str,
    sha: str,
    expected_remote_sha: str | None,
    secrets: Sequence[str] = (),
) -> str:
    """Push ``sha`` to ``refs/heads/<branch>`` on ``remote``; returns the pushed SHA.

    ``expected_remote_sha`` is what the remote branch must still be (the last push's SHA);
    None means a first push, which must be a fast-forward (usually a new branch)."""
    ref = f"refs/heads/{branch}"
    args = ["push", "--porcelain"]
    if expected_remote_sha:
        args.append(f"--force-with-lease={ref}:{expected_remote_sha}")
    proc = run_git(worktree, *args, remote, f"{sha}:{ref}", check=False)
    if proc.returncode != 0:
        message = _rejection(remote, branch, sha, expected_remote_sha, proc)
        raise PushRejected(printable(redact(message, [s for s in secrets if s])))
    return sha


def _rejection(
    remote: str,
    branch: str,
    sha: str,
    expected: str | None,
    proc: subprocess.CompletedProcess[str],
) -> str:
    reason = _reason(proc.stdout or "", proc.stderr or "")
    if "stale info" in reason:
        hint = f"the remote branch moved since Tandem pushed {expected[:10] if expected else '?'}"
    elif "fetch first" in reason or "non-fast-forward" in reason:
        hint = "the remote branch has commits the job branch does not"
    else:
        hint = f"check the remote {remote!r} and your access to it"
    return strip_url_credentials(
        f"push of {branch} to {remote} rejected: {reason} ({hint}); the local branch is "
        f"intact at {sha[:10]}"
    )


def printable(text: str) -> str:
    """``text`` without control characters (a remote's words may carry terminal escapes)."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def _reason(stdout: str, stderr: str) -> str:
    """The most telling line of git's output: the remote's words, then the ref status."""
    remote_said = [
        ln.removeprefix("remote:").strip() for ln in stderr.splitlines()
        if ln.startswith("remote:") and ln.removeprefix("remote:").strip()
    ]
    status = [ln.split("\t")[-1].strip() for ln in stdout.splitlines() if ln.startswith("!")]
    fatal = [ln.strip() for ln in stderr.splitlines() if ln.startswith(("fatal:", "error:"))]
    parts = remote_said[:1] + status[:1] or fatal[:1]
    return " / ".join(parts) if parts else "git push failed"
