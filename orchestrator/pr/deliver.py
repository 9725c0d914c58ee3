"""Delivering a job's PR: scan, (squash), bundle, push, open or update.

Order matters: the secret scan runs before anything is written outside the worktree or
sent anywhere; the bundle is written before the push so a rejected push still leaves a
complete bundle; the SHA about to be pushed is recorded before the push and the pushed SHA
as soon as it succeeds, so the next delivery's force-with-lease is right even if the API
call after it fails or the process dies in between. A remote branch already at the SHA to
deliver is not pushed again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from orchestrator.config import secret
from orchestrator.errors import ConfigError, ForgeError, ForgeNotFound, GitError, PushRejected
from orchestrator.pr.bundle import write_bundle
from orchestrator.pr.forge import Forge, ForgeHTTP, PullRequestRef
from orchestrator.pr.github import GitHubForge, github_headers
from orchestrator.pr.gitlab import GitLabForge, gitlab_headers
from orchestrator.pr.gitops import read_remote, rev_parse, strip_url_credentials
from orchestrator.pr.models import DeliveryResult, ForgeConfig, PRContent
from orchestrator.pr.push import printable, push_branch
from orchestrator.pr.scan import scan_outgoing
from orchestrator.pr.squash import squash_commits
from orchestrator.pr.state import DeliveryState, load_state, save_state
from orchestrator.secrets import redact

log = logging.getLogger(__name__)
BUNDLE_DIR = "bundle"
_FORGE_NAMES = {"github": "GitHub", "gitlab": "GitLab"}


async def deliver(
    worktree: Path,
    branch: str,
    base_sha: str,
    content: PRContent,
    cfg: ForgeConfig,
    state_dir: Path,
    known_secrets: Sequence[str] = (),
) -> DeliveryResult:
    """Deliver the job branch as configured; a second call updates the same PR in place.

    Raises ``SecretDetected`` (nothing left the machine), ``ConfigError`` (missing token,
    repo or base branch), ``PushRejected`` (local branch and bundle intact) or another
    ``ForgeError`` (one line per API error)."""
    if cfg.kind == "none":
        return DeliveryResult(kind="none")
    token = forge_token(cfg)
    ref = f"refs/heads/{branch}"
    scan_outgoing(worktree, base_sha, content, [*known_secrets, token], head=ref)
    if cfg.squash:
        squash_commits(worktree, base_sha, f"{content.title}\n\n{content.summary}", ref=ref)
    head_sha = rev_parse(worktree, ref)
    previous = load_state(state_dir)
    bundle_dir = write_bundle(worktree, base_sha, content, state_dir / BUNDLE_DIR, head=ref)
    log.info("PR bundle written to %s", bundle_dir)
    if cfg.kind == "bundle":
        save_state(state_dir, DeliveryState(kind="bundle", branch=branch,
                                            bundle_dir=str(bundle_dir)))
        return DeliveryResult(kind="bundle", bundle_dir=bundle_dir, updated=previous is not None)
    return await _deliver_to_forge(
        worktree, branch, head_sha, content, cfg, state_dir, previous, bundle_dir,
        token, [token, *known_secrets],
    )


def forge_token(cfg: ForgeConfig) -> str:
    """The forge token from ``cfg.token_env``; '' for bundle delivery."""
    if cfg.kind not in _FORGE_NAMES:
        return ""
    token = secret(cfg.token_env)
    if not token:
        raise ConfigError(
            f"{cfg.token_env} is not set: export a {_FORGE_NAMES[cfg.kind]} token with "
            "pull-request write access, or deliver with --pr bundle"
        )
    return token


async def _deliver_to_forge(
    worktree: Path,
    branch: str,
    head_sha: str,
    content: PRContent,
    cfg: ForgeConfig,
    state_dir: Path,
    previous: DeliveryState | None,
    bundle_dir: Path,
    token: str,
    secrets: Sequence[str],
) -> DeliveryResult:
    # A remote given as a URL may carry credentials: never written to the state file.
    remote = strip_url_credentials(cfg.remote)
    same_target = (
        previous is not None and previous.kind == cfg.kind and previous.branch == branch
        and previous.remote in (remote, cfg.remote) and previous.repo == cfg.repo
    )
    ours = {previous.pushed_sha, previous.pushing_sha} - {None} if same_target and previous \
        else set()
    remote_base, remote_sha = _read_remote(worktree, cfg.remote, branch, secrets)
    base = cfg.base_branch or remote_base
    if not base:
        raise ConfigError(f"cannot tell the base branch of remote {remote!r}: set base_branch")
    async with forge_http(cfg, token) as http:
        forge = make_forge(http, cfg)  # validates repo before anything is pushed
        known = None
        if same_target and previous and previous.number is not None:
            # Read before anything is pushed: a PR merged or closed on the forge since the
            # last delivery is never edited.
            try:
                known = await forge.get(previous.number)
            except ForgeNotFound:  # deleted (GitLab): a new one is opened
                log.info("PR #%d is gone from the forge", previous.number)
            else:
                _refuse_merged(cfg, known)
        state = DeliveryState(
            kind=cfg.kind, branch=branch, remote=remote, repo=cfg.repo,
            pushed_sha=previous.pushed_sha if same_target and previous else None,
            pushing_sha=head_sha,
            number=previous.number if same_target and previous else None,
            url=previous.url if same_target and previous else None, bundle_dir=str(bundle_dir),
        )
        if remote_sha == head_sha:
            log.info("%s on %s is at %s already", branch, remote, head_sha[:10])
        else:
            save_state(state_dir, state)
            # Force only over Tandem's own last push (or one begun and cut short); else a
            # plain push, which never replaces commits somebody else pushed.
            lease = remote_sha if remote_sha in ours else None
            push_branch(worktree, cfg.remote, branch, head_sha, lease, secrets)
            log.info("pushed %s to %s at %s", branch, remote, head_sha[:10])
        pushed = state.pushed_sha = head_sha
        state.pushing_sha = None
        save_state(state_dir, state)
        pr, updated = await open_or_update(forge, branch, base, content, known)
        # Recorded before the decorations: a label or reviewer the forge refuses must not
        # leave the PR it opened unknown to the next delivery and to `tandem pr status`.
        state.number, state.url = pr.number, pr.url
        save_state(state_dir, state)
        await forge.decorate(pr.number)
    log.info("%s PR #%d: %s", "updated" if updated else "opened", pr.number, pr.url)
    return DeliveryResult(kind=cfg.kind, url=pr.url, number=pr.number, bundle_dir=bundle_dir,
                          pushed_sha=pushed, updated=updated)


def _refuse_merged(cfg: ForgeConfig, pr: PullRequestRef) -> None:
    if pr.state in ("merged", "locked"):
        what = "PR" if cfg.kind == "github" else "MR"
        done = "was merged" if pr.state == "merged" else "is being merged"
        raise ForgeError(
            f"{_FORGE_NAMES[cfg.kind]} {what} #{pr.number} of this job {done} "
            f"({pr.url or 'no URL'}): nothing was pushed or changed; start a new job for "
            "further changes"
        )


def _read_remote(
    worktree: Path, remote: str, branch: str, secrets: Sequence[str]
) -> tuple[str | None, str | None]:
    """The remote's default branch and the job branch's SHA there; ``PushRejected`` when the
    remote cannot be reached (nothing pushed; the remote's words redacted)."""
    try:
        return read_remote(worktree, remote, branch)
    except GitError as exc:
        said = printable(redact(str(exc), [s for s in secrets if s]))
        # Not chained: git's own words, unredacted, stay out of any logged traceback.
        raise PushRejected(f"cannot reach remote {strip_url_credentials(remote)!r} to push "
                           f"to ({said}): check the remote and your access to it; nothing "
                           "was pushed") from None


def forge_http(cfg: ForgeConfig, token: str) -> ForgeHTTP:
    headers = github_headers(token) if cfg.kind == "github" else gitlab_headers(token)
    return ForgeHTTP(_FORGE_NAMES[cfg.kind], cfg.api_url or "", headers, token, cfg.token_env)


def make_forge(http: ForgeHTTP, cfg: ForgeConfig) -> Forge:
    return GitHubForge(http, cfg) if cfg.kind == "github" else GitLabForge(http, cfg)


async def open_or_update(
    forge: Forge, branch: str, base: str, content: PRContent, known: PullRequestRef | None
) -> tuple[PullRequestRef, bool]:
    """Update the PR this job opened if it is still open (or any open PR of the branch),
    else open one: a closed PR is left as it is."""
    if known is not None and known.open:
        pr = await forge.update(known.number, base, content)
        if pr.open:
            return pr, True
    elif known is not None:
        log.info("PR #%d was closed on the forge; opening a new one", known.number)
    existing = await forge.find_open(branch)
    if existing is not None:
        return await forge.update(existing.number, base, content), True
    return await forge.create(branch, base, content), False
