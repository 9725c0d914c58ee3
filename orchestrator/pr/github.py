"""GitHub pull requests over the REST API (version 2022-11-28).

Endpoints used (https://docs.github.com/en/rest/pulls/pulls,
https://docs.github.com/en/rest/issues/labels,
https://docs.github.com/en/rest/pulls/review-requests):

- ``GET  /repos/{owner}/{repo}/pulls?head={owner}:{branch}&state=open``  find an open PR
- ``POST /repos/{owner}/{repo}/pulls``  {title, head, base, body, draft} -> 201
- ``GET  /repos/{owner}/{repo}/pulls/{number}``  its state before it is updated
- ``PATCH /repos/{owner}/{repo}/pulls/{number}``  {title, body, base} -> 200
- ``POST /repos/{owner}/{repo}/issues/{number}/labels``  {labels: [...]} (adds)
- ``POST /repos/{owner}/{repo}/pulls/{number}/requested_reviewers``  {reviewers: [...]}

The draft flag applies when the PR is opened; the REST API cannot change it later. A PR's
``state`` is "open" or "closed"; a merged one is "closed" with ``merged`` true or a
``merged_at`` time.
"""

from __future__ import annotations

from orchestrator.errors import ConfigError
from orchestrator.pr.forge import Answer, ForgeHTTP, PRState, PullRequestRef
from orchestrator.pr.models import ForgeConfig, PRContent

API_VERSION = "2022-11-28"


def github_headers(token: str) -> dict[str, str]:
    return {
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": API_VERSION,
        "Authorization": f"Bearer {token}",
        "User-Agent": "tandem",
    }


class GitHubForge:
    """Opens and updates one repository's pull requests."""

    def __init__(self, http: ForgeHTTP, cfg: ForgeConfig) -> None:
        if not cfg.repo or cfg.repo.count("/") != 1 or "" in cfg.repo.split("/"):
            raise ConfigError(f"GitHub repo must be 'owner/name', got {cfg.repo!r} (set repo)")
        self.http = http
        self.cfg = cfg
        self.owner, self.name = cfg.repo.split("/")
        self.prefix = f"/repos/{self.owner}/{self.name}"

    async def find_open(self, branch: str) -> PullRequestRef | None:
        params = {"head": f"{self.owner}:{branch}", "state": "open"}
        pulls = await self.http.call_list("GET", f"{self.prefix}/pulls", params=params)
        found = [pr for pr in map(_ref, pulls) if pr.open]
        return found[0] if found else None

    async def get(self, number: int) -> PullRequestRef:
        return _ref(await self.http.call_object("GET", f"{self.prefix}/pulls/{number}"))

    async def create(self, branch: str, base: str, content: PRContent) -> PullRequestRef:
        payload = {"title": content.title, "head": branch, "base": base, "body": content.body,
                   "draft": self.cfg.draft}
        return _ref(await self.http.call_object("POST", f"{self.prefix}/pulls", json=payload))

    async def update(self, number: int, base: str, content: PRContent) -> PullRequestRef:
        payload = {"title": content.title, "body": content.body, "base": base}
        return _ref(
            await self.http.call_object("PATCH", f"{self.prefix}/pulls/{number}", json=payload)
        )

    async def decorate(self, number: int) -> None:
        """Labels and reviewers, once the PR is known (and recorded) to be the job's."""
        if self.cfg.labels:
            await self.http.call(
                "POST", f"{self.prefix}/issues/{number}/labels", json={"labels": self.cfg.labels}
            )
        if self.cfg.reviewers:
            await self.http.call(
                "POST", f"{self.prefix}/pulls/{number}/requested_reviewers",
                json={"reviewers": self.cfg.reviewers},
            )


_STATES: dict[str, PRState] = {"open": "open", "closed": "closed"}


def _ref(pull: Answer) -> PullRequestRef:
    number, url, state = pull.int("number"), pull.url("html_url"), pull.state("state", _STATES)
    if state == "closed" and (pull.get("merged") is True or pull.get("merged_at")):
        state = "merged"
    return PullRequestRef(number=number, url=url, state=state)
