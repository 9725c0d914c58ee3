"""Checkpoints on the shared git remote, so a worker on another machine resumes a job.

Each checkpoint is pushed, forced, to ``refs/tandem/jobs/<job_id>`` on the remote: forced
because a rollback moves the job back, and the ref is Tandem's own (outside
``refs/heads``, so it never shows up as a branch). A worker that resumes the job and lacks
the checkpoint's commit fetches that ref into the same local ref name, then restores as
usual. Messages name the remote with any ``user:password@`` removed.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from orchestrator.config import secret
from orchestrator.errors import CheckpointMissing, CheckpointPushFailed, GitError
from orchestrator.workspace.git import git_env, git_ok, git_proc

JOB_REF_PREFIX = "refs/tandem/jobs/"
REMOTE_TIMEOUT_S = 120.0

# What git's transports need beyond the scrubbed environment (SSH agent, askpass, proxies).
TRANSPORT_VARS = (
    "SSH_AUTH_SOCK", "GIT_SSH", "GIT_SSH_COMMAND", "GIT_ASKPASS", "SSH_ASKPASS",
    "GIT_SSL_CAINFO", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy",
    "NO_PROXY", "no_proxy",
)
_URL_USERINFO = re.compile(r"(\w[\w+.-]*://)[^/@\s]+@")


def job_ref(job_id: str) -> str:
    """The ref that holds a job's latest checkpoint, locally and on the remote."""
    return JOB_REF_PREFIX + job_id


def safe_remote(text: str) -> str:
    """``https://user:token@host/x`` -> ``https://***@host/x`` (anywhere in ``text``)."""
    return _URL_USERINFO.sub(r"\1***@", text)


def remote_env() -> dict[str, str]:
    """The scrubbed git environment plus the transport variables; never prompts."""
    extra = {name: value for name in TRANSPORT_VARS if (value := secret(name))}
    return {**git_env(), **extra, "GIT_TERMINAL_PROMPT": "0"}


def has_commit(cwd: Path, sha: str) -> bool:
    """Is ``sha`` a commit in the local object store?"""
    return git_ok(cwd, "cat-file", "-e", f"{sha}^{{commit}}")


def push_checkpoint(
    cwd: Path, remote: str, job_id: str, sha: str, *, timeout_s: float = REMOTE_TIMEOUT_S
) -> None:
    """Force-push commit ``sha`` to ``refs/tandem/jobs/<job_id>`` on ``remote`` (a remote
    name or URL). Raises ``CheckpointPushFailed`` naming the remote and git's reason."""
    ref = job_ref(job_id)
    where = f"checkpoint {sha[:10]} of job {job_id} to {ref} on {safe_remote(remote)}"
    try:
        proc = git_proc(cwd, ["push", "--porcelain", "--no-verify", remote, f"+{sha}:{ref}"],
                        timeout_s=timeout_s, env=remote_env())
    except GitError as exc:
        raise CheckpointPushFailed(f"push of {where} failed: {exc}") from exc
    if proc.returncode != 0:
        raise CheckpointPushFailed(
            f"push of {where} failed: {_reason(proc)} (check that the remote exists, is "
            "reachable and accepts refs/tandem/*)")


def ensure_commit(
    cwd: Path, remote: str, job_id: str, sha: str, *, timeout_s: float = REMOTE_TIMEOUT_S
) -> bool:
    """Make sure commit ``sha`` is in the local object store, fetching the job's ref from
    ``remote`` when it is not. Returns True when a fetch was needed.

    Raises ``CheckpointMissing`` when the commit is still absent after the fetch (or the
    fetch failed), naming the remote and what to check.
    """
    if has_commit(cwd, sha):
        return False
    ref = job_ref(job_id)
    where = f"checkpoint {sha[:10]} of job {job_id}"
    try:
        proc = git_proc(cwd, ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head",
                              remote, f"+{ref}:{ref}"], timeout_s=timeout_s, env=remote_env())
    except GitError as exc:
        raise CheckpointMissing(f"{where} is not in {cwd} and fetching {ref} from "
                                f"{safe_remote(remote)} failed: {exc}") from exc
    if proc.returncode != 0:
        raise CheckpointMissing(
            f"{where} is not in {cwd} and fetching {ref} from {safe_remote(remote)} failed: "
            f"{_reason(proc)} (was policy checkpoint.push_refs on where the job ran?)")
    if not has_commit(cwd, sha):
        raise CheckpointMissing(
            f"{where} is not in {cwd}, nor reachable from {ref} on {safe_remote(remote)} "
            "(the last push from the machine that made it may have failed: see its "
            "checkpoint.push_failed events)")
    return True


def _reason(proc: subprocess.CompletedProcess[bytes]) -> str:
    """The most telling line of git's output: the remote's own words, then git's error."""
    stderr = proc.stderr.decode("utf-8", "replace").splitlines()
    stdout = proc.stdout.decode("utf-8", "replace").splitlines()
    remote_said = [ln[len("remote:"):].strip() for ln in stderr
                   if ln.startswith("remote:") and ln[len("remote:"):].strip()]
    status = [ln.split("\t")[-1].strip() for ln in stdout if ln.startswith("!")]
    fatal = [ln.strip() for ln in stderr if ln.startswith(("fatal:", "error:"))]
    lines = remote_said[:1] + status[:1] or fatal[:1] or [f"exit status {proc.returncode}"]
    return safe_remote(" / ".join(lines))
