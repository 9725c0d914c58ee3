"""GitLab merge requests over the REST API v4.

Endpoints used (https://docs.gitlab.com/api/merge_requests/, https://docs.gitlab.com/api/users/):

- ``GET  /projects/:id/merge_requests?source_branch=..&state=opened``  find an open MR
- ``POST /projects/:id/merge_requests``  {source_branch, target_branch, title, description,
  labels (comma-separated), reviewer_ids} -> 201
- ``GET  /projects/:id/merge_requests/:iid``  its state before it is updated
- ``PUT  /projects/:id/merge_requests/:iid``  same fields -> 200
- ``GET  /users?username=..``  reviewer names to ids

``:id`` is the numeric id or the URL-encoded path (``group%2Fproject``). Authentication is
the ``PRIVATE-TOKEN`` header. Draft = the ``Draft: `` title prefix. An MR's ``state`` is
"opened", "closed", "merged" or "locked" (being merged).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from orchestrator.errors import ConfigError, ForgeNotFound
from orchestrator.pr.forge import Answer, ForgeHTTP, PRState, PullRequestRef
from orchestrator.pr.models import ForgeConfig, PRContent

DRAFT_PREFIX = "Draft: "


def gitlab_headers(token: str) -> dict[str, str]:
    return {"PRIVATE-TOKEN": token, "Accept": "application/json", "User-Agent": "tandem"}


class GitLabForge:
    """Opens and updates one project's merge requests."""

    def __init__(self, http: ForgeHTTP, cfg: ForgeConfig) -> None:
        if not cfg.repo:
            raise ConfigError("GitLab project not set: give repo as 'group/project' or its id")
        self.http = http
        self.cfg = cfg
        self.prefix = f"/projects/{quote(cfg.repo, safe='')}"
        self._reviewer_ids: list[int] | None = None

    async def find_open(self, branch: str) -> PullRequestRef | None:
        mrs = await self.http.call_list(
            "GET", f"{self.prefix}/merge_requests",
            params={"source_branch": branch, "state": "opened"},
        )
        found = [mr for mr in map(_ref, mrs) if mr.open]
        return found[0] if found else None

    async def get(self, number: int) -> PullRequestRef:
        return _ref(await self.http.call_object("GET", f"{self.prefix}/merge_requests/{number}"))

    async def create(self, branch: str, base: str, content: PRContent) -> PullRequestRef:
        payload = {"source_branch": branch, **await self._fields(base, content)}
        return _ref(
            await self.http.call_object("POST", f"{self.prefix}/merge_requests", json=payload)
        )

    async def update(self, number: int, base: str, content: PRContent) -> PullRequestRef:
        payload = await self._fields(base, content)
        return _ref(
            await self.http.call_object(
                "PUT", f"{self.prefix}/merge_requests/{number}", json=payload
            )
        )

    async def decorate(self, number: int) -> None:
        """Nothing: labels and reviewers go with the create and update requests."""

    async def _fields(self, base: str, content: PRContent) -> dict[str, Any]:
        title = content.title
        if self.cfg.draft and not title.startswith(DRAFT_PREFIX):
            title = DRAFT_PREFIX + title
        fields: dict[str, Any] = {
            "target_branch": base, "title": title, "description": content.body,
        }
        if self.cfg.labels:
            fields["labels"] = ",".join(self.cfg.labels)
        if self.cfg.reviewers:
            fields["reviewer_ids"] = await self.reviewer_ids()
        return fields

    async def reviewer_ids(self) -> list[int]:
        """Numeric ids as given; usernames looked up once."""
        if self._reviewer_ids is None:
            self._reviewer_ids = [await self._user_id(name) for name in self.cfg.reviewers]
        return self._reviewer_ids

    async def _user_id(self, name: str) -> int:
        if name.isdigit():
            return int(name)
        users = await self.http.call_list("GET", "/users",
                                          params={"username": name.lstrip("@")})
        if not users:
            raise ForgeNotFound(f"GitLab has no user {name!r} (reviewers): check the username")
        return users[0].int("id")


_STATES: dict[str, PRState] = {
    "opened": "open", "closed": "closed", "merged": "merged", "locked": "locked",
}


def _ref(mr: Answer) -> PullRequestRef:
    return PullRequestRef(number=mr.int("iid"), url=mr.url("web_url"),
                          state=mr.state("state", _STATES))
