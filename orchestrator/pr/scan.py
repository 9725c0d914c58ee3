"""The last check before anything leaves the machine: secrets in the PR or its commits.

Scanned: the title and body, every commit message of ``base..HEAD``, and every commit's
patch (not only the net diff: a secret added in one step and removed in the next would
still be pushed in the history). A finding raises ``SecretDetected`` naming where it is;
the message never holds the secret.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from orchestrator.errors import SecretDetected
from orchestrator.pr.gitops import commit_message, commit_patch, commits_between
from orchestrator.pr.models import PRContent
from orchestrator.secrets import SecretFinding, find_secrets

_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@")


def scan_outgoing(
    worktree: Path,
    base_sha: str,
    content: PRContent,
    known_secrets: Sequence[str] = (),
    head: str = "HEAD",
) -> None:
    """Raise ``SecretDetected`` if the PR text or any commit of ``base..head`` holds one."""
    known = [s for s in known_secrets if s]
    places: list[str] = []
    for label, text in (("PR title", content.title), ("PR body", content.body)):
        places += [f"{label} line {f.line} ({f.kind})" for f in find_secrets(text, known)]
    for sha in commits_between(worktree, base_sha, head):
        short = sha[:10]
        for f in find_secrets(commit_message(worktree, sha), known):
            places.append(f"commit {short} message line {f.line} ({f.kind})")
        patch = commit_patch(worktree, sha)
        for f in find_secrets(patch, known):
            places.append(f"commit {short} {locate_in_patch(patch, f)}")
    if places:
        more = f" and {len(places) - 3} more" if len(places) > 3 else ""
        raise SecretDetected(
            f"secret found in {'; '.join(places[:3])}{more}: nothing was pushed or sent; "
            "remove it from the branch (and rotate it) before delivering the PR"
        )


def locate_in_patch(patch: str, finding: SecretFinding) -> str:
    """``file path:line (kind)`` for a finding in a patch, from its hunk headers."""
    path, new_line, in_header = "?", 0, False
    for index, line in enumerate(patch.splitlines(), start=1):
        if line.startswith("diff --git "):
            path, new_line, in_header = line.rsplit(" b/", 1)[-1], 0, True
        elif in_header and line.startswith("+++ "):
            path = line[4:].removeprefix("b/")
        elif hunk := _HUNK.match(line):
            new_line, in_header = int(hunk.group(1)) - 1, False
        elif not in_header and not line.startswith("-"):
            new_line += 1
        if index == finding.line:
            return f"file {path}:{new_line} ({finding.kind})"
    return f"patch line {finding.line} ({finding.kind})"
