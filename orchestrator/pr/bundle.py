"""A PR bundle: ``PR.md`` plus the job's patch series, for a repository without a forge.

Layout of the bundle directory::

    PR.md              title, body, and how to apply the series
    patches/0001-*.patch ...   ``git format-patch base..HEAD`` (commit messages keep trailers)
    patches/series     the patch file names in order

Apply with ``git am patches/*.patch`` on the base branch.
"""

from __future__ import annotations

from pathlib import Path

from orchestrator.pr.gitops import run_git
from orchestrator.pr.models import PRContent

PR_FILE = "PR.md"
PATCH_DIR = "patches"

# What the user's diff.* and format.* config would otherwise change: ``git am`` needs the
# a/ b/ prefixes (diff.noprefix, diff.mnemonicPrefix); a sign-off or signature would put
# the user's name on Tandem's commits; a cover letter or another suffix breaks
# ``git am patches/*.patch``.
FORMAT_PATCH_PINS = (
    "--no-color", "--binary", "--src-prefix=a/", "--dst-prefix=b/", "--no-signoff",
    "--no-signature", "--no-cover-letter", "--suffix=.patch",
)


def write_bundle(
    worktree: Path, base_sha: str, content: PRContent, out_dir: Path, head: str = "HEAD"
) -> Path:
    """Write ``PR.md`` and the patch series of ``base_sha..head`` into ``out_dir`` (replacing
    an earlier bundle there); returns ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    patch_dir = out_dir / PATCH_DIR
    _clear_previous(patch_dir)
    proc = run_git(worktree, "format-patch", *FORMAT_PATCH_PINS, "--output-directory",
                   str(patch_dir), f"{base_sha}..{head}")
    names = [Path(line.strip()).name for line in proc.stdout.splitlines() if line.strip()]
    patch_dir.mkdir(exist_ok=True)
    (patch_dir / "series").write_text("".join(name + "\n" for name in names))
    (out_dir / PR_FILE).write_text(pr_markdown(content, base_sha, names))
    return out_dir


def _clear_previous(patch_dir: Path) -> None:
    if patch_dir.is_dir():
        for old in patch_dir.glob("*.patch"):
            old.unlink()


def pr_markdown(content: PRContent, base_sha: str, patch_names: list[str]) -> str:
    listing = "\n".join(f"- `{PATCH_DIR}/{name}`" for name in patch_names) or "- (no commits)"
    return (
        f"# {content.title}\n\n{content.body.rstrip()}\n\n"
        f"## Applying this bundle\n\n"
        f"Base commit: `{base_sha}`. On a clone at that commit (or its branch):\n\n"
        f"```sh\ngit am {PATCH_DIR}/*.patch\n```\n\n{listing}\n"
    )
