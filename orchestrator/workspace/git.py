"""Running git: one place that spawns it, pins its environment and translates failures.

Every call gets a scrubbed environment (no inherited ``GIT_DIR``/``GIT_INDEX_FILE`` that
could point git at the user's tree), a fixed committer identity, and ``-c`` overrides so
that neither the user's hooks nor their global config change what a checkpoint does. The
user's own git config files are never written.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from orchestrator.config import scrubbed_env
from orchestrator.errors import GitError

IDENTITY = {
    "GIT_AUTHOR_NAME": "Tandem",
    "GIT_AUTHOR_EMAIL": "tandem@localhost",
    "GIT_COMMITTER_NAME": "Tandem",
    "GIT_COMMITTER_EMAIL": "tandem@localhost",
}

# Per-call overrides. Split index + untracked cache keep index writes and status scans
# proportional to the change, not to the repository; expiring unused shared indexes at
# once keeps the disk bounded. Hooks are the user's, not ours to run; nor is a file-system
# monitor, a command the repository's config names (a verification command, which runs
# the repository's code, can write that config). Patches keep git's a/ and b/ before
# each path, which the gate's path rules and ``git am`` expect, whatever the user's
# diff.mnemonicPrefix or diff.noprefix say.
OVERRIDES = (
    "-c", "core.hooksPath=/dev/null",
    "-c", "core.fsmonitor=false",
    "-c", "core.splitIndex=true",
    "-c", "core.untrackedCache=true",
    "-c", "splitIndex.sharedIndexExpire=now",
    "-c", "core.quotePath=false",
    "-c", "gc.auto=0",
    "-c", "maintenance.auto=false",
    "-c", "advice.detachedHead=false",
    "-c", "diff.mnemonicPrefix=false",
    "-c", "diff.noprefix=false",
)


def git_env() -> dict[str, str]:
    """The environment every git call runs with."""
    return scrubbed_env({"LC_ALL": "C", "GIT_CONFIG_NOSYSTEM": "1", **IDENTITY})


def run_git(
    cwd: Path,
    args: Sequence[str | bytes],
    *,
    stdin: bytes | None = None,
    ok_codes: tuple[int, ...] = (0,),
) -> bytes:
    """Run ``git <args>`` in ``cwd`` and return its stdout (bytes).

    Raises ``GitError`` naming the command, the directory and git's own message.
    """
    proc = git_proc(cwd, args, stdin=stdin)
    if proc.returncode not in ok_codes:
        raise GitError(_describe(args, cwd, proc))
    return proc.stdout


def git_proc(
    cwd: Path,
    args: Sequence[str | bytes],
    *,
    stdin: bytes | None = None,
    timeout_s: float | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``git <args>`` and return the finished process, whatever its exit status.

    For callers that word their own failure (pushes, fetches); a timeout raises
    ``GitError`` naming only the subcommand (its arguments may hold a remote URL).
    """
    cmd: list[str | bytes] = ["git", *OVERRIDES, *args]
    try:
        return subprocess.run(
            cmd, cwd=cwd, input=stdin, capture_output=True, env=env or git_env(),
            check=False, timeout=timeout_s,
        )
    except FileNotFoundError as exc:
        raise GitError(f"cannot run git in {cwd}: {exc.strerror} (is git installed?)") from exc
    except subprocess.TimeoutExpired as exc:
        raise GitError(f"git {os.fsdecode(args[0])} in {cwd} timed out after "
                       f"{timeout_s:g} s") from exc


def git_text(cwd: Path, *args: str) -> str:
    """``run_git`` for commands whose output is a short line of ASCII (shas, refs)."""
    return run_git(cwd, args).decode("utf-8", "replace").strip()


def git_ok(cwd: Path, *args: str) -> bool:
    """True when ``git <args>`` exits 0 (for yes/no questions such as ``--is-ancestor``)."""
    proc = subprocess.run(
        ["git", *OVERRIDES, *args], cwd=cwd, capture_output=True, env=git_env(), check=False
    )
    return proc.returncode == 0


def split_z(out: bytes) -> list[str]:
    """Split NUL-terminated git output into paths (non-UTF-8 names kept via fsdecode)."""
    return [os.fsdecode(p) for p in out.split(b"\0") if p]


def _describe(args: Sequence[str | bytes], cwd: Path, proc: subprocess.CompletedProcess) -> str:
    shown = " ".join(os.fsdecode(a) for a in args[:3])
    err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
    detail = err[-1] if err else f"exit status {proc.returncode}"
    return f"git {shown} failed in {cwd}: {detail}"
