"""The HTTP layer shared by the GitHub and GitLab clients: one place that turns a forge's
error statuses into one-line ``ForgeError``s.

Messages name the forge, the method and URL path, and what to check; they never carry the
token (the token variable is named instead) and the forge's own words are redacted and
flattened to one line.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import httpx
from pydantic import BaseModel

from orchestrator.errors import (
    ForgeAuthError,
    ForgeError,
    ForgeNotFound,
    ForgeRateLimited,
    ForgeValidationError,
)
from orchestrator.pr.models import PRContent
from orchestrator.secrets import redact

HTTP_TIMEOUT_S = 30.0
DETAIL_MAX_CHARS = 200


class PullRequestRef(BaseModel):
    """A PR (GitHub ``number``) or merge request (GitLab ``iid``) on the forge."""

    number: int
    url: str | None = None
    open: bool = True


class Forge(Protocol):
    """What delivery needs from a forge."""

    async def find_open(self, branch: str) -> PullRequestRef | None: ...

    async def create(self, branch: str, base: str, content: PRContent) -> PullRequestRef: ...

    async def update(self, number: int, base: str, content: PRContent) -> PullRequestRef: ...

    async def decorate(self, number: int) -> None:
        """Labels and reviewers (where the forge sets them apart from create/update)."""


class ForgeHTTP:
    """An ``httpx.AsyncClient`` for one forge, with its error translation."""

    def __init__(
        self, name: str, api_url: str, headers: dict[str, str], token: str, token_env: str
    ) -> None:
        self.name = name
        self.api_url = api_url
        self.token_env = token_env
        self._token = token
        self._client = httpx.AsyncClient(
            base_url=api_url, headers=headers, timeout=HTTP_TIMEOUT_S, follow_redirects=False
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> ForgeHTTP:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def call(
        self, method: str, path: str, *, json: Any = None, params: dict[str, str] | None = None
    ) -> Any:
        """Send one request; the decoded JSON answer, or a ``ForgeError``."""
        try:
            resp = await self._client.request(method, path, json=json, params=params)
        except httpx.HTTPError as exc:
            # httpx errors never hold request headers, but say only the class and URL.
            raise ForgeError(
                f"{self.name}: cannot reach {self.api_url} ({exc.__class__.__name__}) "
                f"on {method} {path}: check api_url and the network"
            ) from exc
        self.check(resp)
        try:
            return resp.json() if resp.content else None
        except ValueError as exc:  # a proxy's or a web page's answer, not the API's
            raise ForgeError(
                f"{self.name} answered {method} {path} with {resp.status_code} but not JSON "
                f"({resp.headers.get('content-type') or 'no content type'}): check api_url "
                f"({self.api_url})", status=resp.status_code,
            ) from exc

    def check(self, resp: httpx.Response) -> None:
        if resp.is_success:
            return
        raise translate_error(resp, self.name, self.token_env, self._token)


def translate_error(resp: httpx.Response, forge: str, token_env: str, token: str) -> ForgeError:
    """The one-line ``ForgeError`` for a forge's error answer."""
    status = resp.status_code
    where = f"{resp.request.method} {resp.request.url.path}"
    detail = error_detail(resp, token)
    said = f" ({status}: {detail})" if detail else f" ({status})"
    if is_rate_limited(resp):
        wait_s = retry_after_s(resp)
        when = f"retry in {wait_s:.0f} s" if wait_s is not None else "retry later"
        return ForgeRateLimited(
            f"{forge} rate limit reached on {where}{said}: {when}",
            status=status, retry_after_s=wait_s,
        )
    if status == 401:
        return ForgeAuthError(
            f"{forge} rejected the token on {where}{said}: check {token_env}", status=status
        )
    if status == 403:
        return ForgeAuthError(
            f"{forge} refused {where}{said}: the token in {token_env} lacks a permission "
            "(pull requests: write) for this repository", status=status,
        )
    if status == 404:
        return ForgeNotFound(
            f"{forge} found nothing at {where}{said}: check the repository name, api_url, "
            f"and that the token in {token_env} can see the repository", status=status,
        )
    if status in (409, 422):
        return ForgeValidationError(
            f"{forge} refused {where}{said}: check that the base branch exists and the "
            "job branch was pushed", status=status,
        )
    return ForgeError(f"{forge} answered {status} on {where}{said}", status=status)


def is_rate_limited(resp: httpx.Response) -> bool:
    """429, or GitHub's 403 with no requests left or a retry-after (secondary limit)."""
    if resp.status_code == 429:
        return True
    return resp.status_code == 403 and (
        resp.headers.get("x-ratelimit-remaining") == "0" or "retry-after" in resp.headers
    )


def retry_after_s(resp: httpx.Response) -> float | None:
    """Seconds to wait: ``retry-after``, else ``x-ratelimit-reset`` (epoch seconds)."""
    try:
        if "retry-after" in resp.headers:
            return max(0.0, float(resp.headers["retry-after"]))
        reset = resp.headers.get("x-ratelimit-reset") or resp.headers.get("ratelimit-reset")
        if reset is not None:
            return max(0.0, float(reset) - time.time())
    except ValueError:
        return None
    return None


def error_detail(resp: httpx.Response, token: str) -> str:
    """The forge's own explanation, redacted and on one line."""
    try:
        data = resp.json()
    except ValueError:
        data = resp.text
    text = _message_of(data)
    text = " ".join(redact(text, [token] if token else []).split())
    return text[:DETAIL_MAX_CHARS]


def _message_of(data: Any) -> str:
    """GitHub: ``message`` + ``errors[].message``; GitLab: ``message`` as a string, a list,
    or a ``{field: [problems]}`` map, or ``error``."""
    if isinstance(data, list):
        return "; ".join(_message_of(item) for item in data)
    if isinstance(data, dict) and not ({"message", "error", "errors"} & data.keys()):
        return "; ".join(f"{key}: {_message_of(value)}" for key, value in data.items())
    if not isinstance(data, dict):
        return str(data or "")
    parts = [_message_of(data.get("message") or data.get("error") or "")]
    for err in data.get("errors") or []:
        parts.append(str(err.get("message") or err.get("code") or "") if isinstance(err, dict)
                     else str(err))
    return "; ".join(p for p in parts if p)
