"""The HTTP layer shared by the GitHub and GitLab clients: one place that turns a forge's
error statuses, and answers of the wrong shape, into one-line ``ForgeError``s.

Messages name the forge, the method and URL path, and what to check; they never carry the
token (the token variable is named instead) and the forge's own words are redacted and
flattened to one line. Nothing a forge answers is trusted: a PR's number must be an
integer, its URL an http(s) URL on one line without the token, its state a known one.
"""

from __future__ import annotations

import re
import time
from typing import Any, Literal, Protocol

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
URL_MAX_CHARS = 2000
_SAFE_URL = re.compile(r"https?://[^\s\x00-\x1f\x7f]+")
PRState = Literal["open", "closed", "merged", "locked"]


class PullRequestRef(BaseModel):
    """A PR (GitHub ``number``) or merge request (GitLab ``iid``) on the forge. ``state``:
    ``locked`` is GitLab's "being merged"."""

    number: int
    url: str | None = None
    state: PRState = "open"

    @property
    def open(self) -> bool:
        return self.state == "open"


class Forge(Protocol):
    """What delivery needs from a forge."""

    async def find_open(self, branch: str) -> PullRequestRef | None: ...

    async def get(self, number: int) -> PullRequestRef: ...

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
        except RecursionError as exc:  # nested deeper than the decoder goes
            raise ForgeError(
                f"{self.name} answered {method} {path} with {resp.status_code} and JSON nested "
                f"too deeply to read: check api_url ({self.api_url})", status=resp.status_code,
            ) from exc
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

    async def call_object(
        self, method: str, path: str, *, json: Any = None, params: dict[str, str] | None = None
    ) -> Answer:
        """``call`` for an endpoint answering one JSON object."""
        data = await self.call(method, path, json=json, params=params)
        return Answer(self, method, path, data).object()

    async def call_list(
        self, method: str, path: str, *, json: Any = None, params: dict[str, str] | None = None
    ) -> list[Answer]:
        """``call`` for an endpoint answering a list of JSON objects."""
        data = await self.call(method, path, json=json, params=params)
        if not isinstance(data, list):
            raise Answer(self, method, path, data).wrong(
                f"{_kind(data)} where a list was expected")
        return [Answer(self, method, path, item).object() for item in data]

    def url_problem(self, url: str) -> str | None:
        """Why a URL from the forge must not be shown or recorded, if it must not."""
        if self._token and self._token in url:
            return "holds the token"
        if len(url) > URL_MAX_CHARS or not _SAFE_URL.fullmatch(url):
            return "is not an http(s) URL on one line"
        return None


class Answer:
    """One decoded answer of a forge endpoint, read field by field; anything of the wrong
    shape is a one-line ``ForgeError`` naming the endpoint and the field."""

    def __init__(self, http: ForgeHTTP, method: str, path: str, data: Any) -> None:
        self.http, self.method, self.path, self.data = http, method, path, data

    def wrong(self, what: str) -> ForgeError:
        return ForgeError(
            f"{self.http.name} answered {self.method} {self.path} with {what}: check that "
            f"api_url ({self.http.api_url}) is the {self.http.name} API"
        )

    def object(self) -> Answer:
        if not isinstance(self.data, dict):
            raise self.wrong(f"{_kind(self.data)} where a JSON object was expected")
        return self

    def int(self, key: str) -> int:
        value = self._get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise self.wrong(f"{key!r} not an integer ({_kind(value)})")
        return value

    def url(self, key: str) -> str:
        value = self._get(key)
        if not isinstance(value, str):
            raise self.wrong(f"{key!r} not a URL ({_kind(value)})")
        if problem := self.http.url_problem(value):
            raise self.wrong(f"{key!r} that {problem}")
        return value

    def text(self, key: str) -> str:
        value = self._get(key)
        if not isinstance(value, str):
            raise self.wrong(f"{key!r} not a string ({_kind(value)})")
        return value

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def _get(self, key: str) -> Any:
        if key not in self.data or self.data[key] is None:
            raise self.wrong(f"no {key!r}")
        return self.data[key]

    def state(self, key: str, states: dict[str, PRState]) -> PRState:
        value = self.text(key)
        if value not in states:
            shown = " ".join(redact(value[:40], [self.http._token] if self.http._token else [])
                             .split())
            raise self.wrong(f"{key!r} {shown!r}, none of {', '.join(states)}")
        return states[value]


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "a JSON object"


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
    except RecursionError:
        data = "(JSON nested too deeply to read)"
    except ValueError:
        data = resp.text
    text = _message_of(data)
    text = " ".join(redact(text, [token] if token else []).split())
    return "".join(ch if ch.isprintable() else "?" for ch in text[:DETAIL_MAX_CHARS])


def _message_of(data: Any, depth: int = 0) -> str:
    """GitHub: ``message`` + ``errors[].message``; GitLab: ``message`` as a string, a list,
    or a ``{field: [problems]}`` map, or ``error`` (read a few levels deep at most)."""
    if depth > 4:
        return "..."
    if isinstance(data, list):
        return "; ".join(_message_of(item, depth + 1) for item in data[:20])
    if isinstance(data, dict) and not ({"message", "error", "errors"} & data.keys()):
        return "; ".join(f"{key}: {_message_of(value, depth + 1)}"
                         for key, value in list(data.items())[:20])
    if not isinstance(data, dict):
        return str(data or "")[:DETAIL_MAX_CHARS * 4]
    parts = [_message_of(data.get("message") or data.get("error") or "", depth + 1)]
    errors = data.get("errors")
    for err in errors[:20] if isinstance(errors, list) else []:
        parts.append(_message_of(err.get("message") or err.get("code") or "", depth + 1)
                     if isinstance(err, dict) else _message_of(err, depth + 1))
    return "; ".join(p for p in parts if p)
