"""The git commands PR delivery needs, run as subprocesses with a scrubbed environment.

Only the variables a git transport needs (SSH agent, askpass, proxies) are passed on top of
``scrubbed_env()``; credentials for HTTPS remotes come from git's own credential helpers.
Like the workspace's checkpoints, every call has Tandem's fixed identity and the same
``-c`` overrides, so the user's hooks and global config (``user.useConfigOnly``,
``format.signOff``) neither block nor change a delivery.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from orchestrator.config import scrubbed_env, secret
from orchestrator.errors import GitError
from orchestrator.workspace.git import IDENTITY, OVERRIDES
from orchestrator.workspace.remote import TRANSPORT_VARS
from orchestrator.workspace.remote import safe_remote as strip_url_credentials

GIT_TIMEOUT_S = 120.0


def git_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """A scrubbed environment plus what git's transports need."""
    env = {name: value for name in TRANSPORT_VARS if (value := secret(name))}
    env.update(IDENTITY, GIT_TERMINAL_PROMPT="0")
    env.update(extra or {})
    return scrubbed_env(env)


def run_git(
    cwd: Path,
    *args: str,
    env: dict[str, str] | None = None,
    check: bool = True,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``git args`` in ``cwd``; a failure raises ``GitError`` with git's last line."""
    try:
        proc = subprocess.run(
            ["git", *OVERRIDES, *args], cwd=cwd, env=git_env(env), capture_output=True,
            encoding="utf-8", errors="replace",  # a patch may hold any bytes
            timeout=GIT_TIMEOUT_S, check=False, input=stdin,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GitError(f"git {_subcommand(args)} in {cwd} failed: {exc}") from exc
    if check and proc.returncode != 0:
        raise GitError(f"git {_subcommand(args)} in {cwd} failed: {last_line(proc.stderr)}")
    return proc


def _subcommand(args: tuple[str, ...]) -> str:
    """The git command ``args`` run, past any leading ``-c name=value`` pairs (an error
    saying ``git -c`` failed names nothing)."""
    rest = list(args)
    while rest[:1] == ["-c"]:
        rest = rest[2:]
    return rest[0] if rest else "(no command)"


def last_line(text: str) -> str:
    """The last non-empty line of git's output, credentials removed."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return strip_url_credentials(lines[-1]) if lines else "(no output)"


def rev_parse(cwd: Path, ref: str) -> str:
    return run_git(cwd, "rev-parse", "--verify", f"{ref}^{{commit}}").stdout.strip()


def current_branch(cwd: Path) -> str:
    return run_git(cwd, "symbolic-ref", "--short", "HEAD").stdout.strip()


def commits_between(cwd: Path, base_sha: str, head: str = "HEAD") -> list[str]:
    """SHAs of ``base_sha..head``, oldest first."""
    out = run_git(cwd, "rev-list", "--reverse", f"{base_sha}..{head}").stdout
    return out.split()


def commit_message(cwd: Path, sha: str) -> str:
    return run_git(cwd, "log", "-1", "--format=%B", sha).stdout


def commit_patch(cwd: Path, sha: str) -> str:
    """The diff one commit introduces, every file shown as text (for the secret scan: a
    file that git or a ``.gitattributes`` rule calls binary would otherwise show as a
    binary patch, its content unreadable to the scan)."""
    return run_git(cwd, "show", "--format=", "--patch", "--text", "--no-textconv",
                   "--no-ext-diff", "--no-color", sha).stdout


def read_remote(cwd: Path, remote: str, branch: str) -> tuple[str | None, str | None]:
    """In one round trip: the branch the remote's HEAD points at (its default branch), if
    it says, and the SHA of ``branch`` there, if it has it; ``GitError`` (git's reason,
    credentials removed) when the remote cannot be read."""
    ref = f"refs/heads/{branch}"
    proc = run_git(cwd, "ls-remote", "--symref", remote, "HEAD", ref, check=False)
    if proc.returncode != 0:
        raise GitError(f"git ls-remote {strip_url_credentials(remote)}: {last_line(proc.stderr)}")
    head_branch = branch_sha = None
    for line in proc.stdout.splitlines():
        if line.startswith("ref: refs/heads/") and line.endswith("\tHEAD"):
            head_branch = line[len("ref: refs/heads/"):-len("\tHEAD")]
        elif line.endswith(f"\t{ref}"):
            branch_sha = line.split("\t", 1)[0].strip()
    return head_branch, branch_sha
