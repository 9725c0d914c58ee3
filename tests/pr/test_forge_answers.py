"""A forge that answers well-formed JSON of the wrong shape, and PRs closed or merged on the
forge after an earlier delivery (the forge stand-in, a real bare remote).

Shapes as documented: GitHub https://docs.github.com/en/rest/pulls/pulls (``number``,
``html_url``, ``state`` "open"/"closed", ``merged``/``merged_at``); GitLab
https://docs.gitlab.com/api/merge_requests/ (``iid``, ``web_url``, ``state``
"opened"/"closed"/"merged"/"locked").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import ForgeError
from orchestrator.pr import ForgeConfig, PRContent, deliver

from .conftest import GITHUB_TOKEN, GITLAB_TOKEN, ForgeStandIn, JobRepo

CONTENT = PRContent(title="Add mul", summary="Adds mul().", body="Adds mul().\n")
GH_PULLS, GL_MRS = "/repos/octo/app/pulls", "/projects/group%2Fapp/merge_requests"


def _cfg(kind: str, forge: ForgeStandIn, **kw: Any) -> ForgeConfig:
    if kind == "github":
        return ForgeConfig(kind="github", repo="octo/app", api_url=forge.github_url, **kw)
    return ForgeConfig(kind="gitlab", repo="group/app", api_url=forge.gitlab_url, **kw)


async def _deliver(job: JobRepo, cfg: ForgeConfig, state: Path) -> Any:
    return await deliver(job.worktree, job.branch, job.base_sha, CONTENT, cfg, state)


SHAPES = [
    # (kind, method answered, answer, words the message must hold)
    ("github", "GET", {"message": "ok"}, ["GET " + GH_PULLS, "a list"]),
    ("github", "GET", [["not", "a", "pull"]], ["GET " + GH_PULLS, "a JSON object"]),
    ("github", "POST", [{"number": 1}], ["POST " + GH_PULLS, "a JSON object", "a list"]),
    ("github", "POST", {"html_url": "https://x.invalid/pull/1", "state": "open"},
     ["POST " + GH_PULLS, "no 'number'"]),
    ("github", "POST", {"number": "7", "html_url": "https://x.invalid/pull/7", "state": "open"},
     ["POST " + GH_PULLS, "'number'", "not an integer"]),
    ("github", "POST", {"number": True, "html_url": "https://x.invalid/pull/1",
                        "state": "open"}, ["'number'", "not an integer"]),
    ("github", "POST", {"number": 3, "state": "open"}, ["POST " + GH_PULLS, "no 'html_url'"]),
    ("github", "POST", {"number": 3, "html_url": 12, "state": "open"}, ["'html_url'"]),
    ("github", "POST", {"number": 3, "html_url": "https://x.invalid/pull/3\nInjected"},
     ["'html_url'"]),
    ("github", "POST", {"number": 3, "html_url": "https://x.invalid/pull/3", "state": 1},
     ["'state'"]),
    ("github", "POST", None, ["POST " + GH_PULLS, "nothing where a JSON object"]),
    ("gitlab", "GET", {"message": "ok"}, ["GET " + GL_MRS, "a list"]),
    ("gitlab", "POST", {"id": 9, "web_url": "https://x.invalid/-/merge_requests/1",
                        "state": "opened"}, ["POST " + GL_MRS, "no 'iid'"]),
    ("gitlab", "POST", {"iid": 1.5, "web_url": "https://x.invalid/-/merge_requests/1",
                        "state": "opened"}, ["'iid'", "not an integer"]),
    ("gitlab", "POST", {"iid": 1, "state": "opened"}, ["no 'web_url'"]),
    ("gitlab", "POST", {"iid": 1, "web_url": "https://x.invalid/1", "state": "weird"},
     ["'state'", "weird"]),
]


@pytest.mark.parametrize(("kind", "method", "answer", "words"), SHAPES,
                         ids=[f"{s[0]}-{s[1]}-{i}" for i, s in enumerate(SHAPES)])
async def test_an_answer_of_the_wrong_shape_is_one_forge_error(
    kind: str, method: str, answer: Any, words: list[str], job_repo: JobRepo,
    forge: ForgeStandIn, tmp_path: Path,
) -> None:
    forge.fail_next(200 if method == "GET" else 201, answer, method=method)
    with pytest.raises(ForgeError) as err:
        await _deliver(job_repo, _cfg(kind, forge), tmp_path / "state")
    msg = str(err.value)
    assert type(err.value) is ForgeError and "\n" not in msg
    assert msg.startswith("GitHub" if kind == "github" else "GitLab")
    for word in words:
        assert word in msg
    assert GITHUB_TOKEN not in msg and GITLAB_TOKEN not in msg


async def test_a_gitlab_user_of_the_wrong_shape_is_one_forge_error(
    job_repo: JobRepo, forge: ForgeStandIn, tmp_path: Path
) -> None:
    forge.fail_next(200, [{"username": "alice"}], method="GET", path="/api/v4/users")
    with pytest.raises(ForgeError, match=r"GET /users .*no 'id'") as err:
        await _deliver(job_repo, _cfg("gitlab", forge, reviewers=["alice"]), tmp_path / "state")
    assert type(err.value) is ForgeError


async def test_a_url_holding_the_token_is_refused_and_never_written(
    job_repo: JobRepo, forge: ForgeStandIn, tmp_path: Path
) -> None:
    forge.fail_next(201, {"number": 1, "state": "open",
                          "html_url": f"https://x.invalid/pull/1?t={GITHUB_TOKEN}"},
                    method="POST")
    with pytest.raises(ForgeError, match="'html_url' that holds the token") as err:
        await _deliver(job_repo, _cfg("github", forge), tmp_path / "state")
    assert GITHUB_TOKEN not in str(err.value)
    assert GITHUB_TOKEN not in (tmp_path / "state" / "pr.json").read_text()


@pytest.mark.parametrize("kind", ["github", "gitlab"])
async def test_a_merged_pr_is_not_edited_and_delivery_says_it_was_merged(
    kind: str, job_repo: JobRepo, forge: ForgeStandIn, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    first = await _deliver(job_repo, _cfg(kind, forge, labels=["tandem"]), state)
    forge.merge(1)
    pushed = job_repo.remote_sha()
    job_repo.commit_step(3, {"extra.txt": "more\n"}, "fast", "spark-sim")
    forge.requests.clear()
    with pytest.raises(ForgeError) as err:
        await _deliver(job_repo, _cfg(kind, forge, labels=["tandem"]), state)
    msg = str(err.value)
    assert "\n" not in msg and "was merged" in msg and str(first.url) in msg
    assert "nothing was pushed" in msg
    assert [r.method for r in forge.calls()] == ["GET"]  # read, never PATCH/PUT
    assert job_repo.remote_sha() == pushed and len(forge.pulls) == 1


@pytest.mark.parametrize("kind", ["github", "gitlab"])
async def test_a_closed_pr_is_not_edited_and_a_new_one_is_opened(
    kind: str, job_repo: JobRepo, forge: ForgeStandIn, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    await _deliver(job_repo, _cfg(kind, forge), state)
    forge.pulls[1]["state"] = "closed"
    old_title = forge.pulls[1]["title"]
    forge.requests.clear()
    result = await _deliver(job_repo, _cfg(kind, forge), state)
    assert (result.number, result.updated) == (2, False)
    assert forge.calls("PATCH") == forge.calls("PUT") == []
    assert forge.pulls[1]["title"] == old_title and forge.pulls[1]["state"] == "closed"


DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize("status", [201, 500])
async def test_json_nested_beyond_reason_is_one_forge_error(
    status: int, job_repo: JobRepo, forge: ForgeStandIn, tmp_path: Path
) -> None:
    forge.fail_next(status, DEEP, method="POST")
    with pytest.raises(ForgeError) as err:
        await _deliver(job_repo, _cfg("github", forge), tmp_path / "state")
    msg = str(err.value)
    assert "\n" not in msg and "POST /repos/octo/app/pulls" in msg and str(status) in msg
    assert len(msg) < 600



@pytest.mark.parametrize("errors", [5, "text", {"a": 1}, [{"message": {"x": ["deep"]}}, 7]])
async def test_an_error_answer_of_any_shape_is_one_line(
    errors: Any, job_repo: JobRepo, forge: ForgeStandIn, tmp_path: Path
) -> None:
    forge.fail_next(422, {"message": "Validation Failed", "errors": errors}, method="POST")
    with pytest.raises(ForgeError, match="422: Validation Failed") as err:
        await _deliver(job_repo, _cfg("github", forge), tmp_path / "state")
    assert "\n" not in str(err.value)


async def test_terminal_escapes_in_a_forge_error_are_not_passed_on(
    job_repo: JobRepo, forge: ForgeStandIn, tmp_path: Path
) -> None:
    forge.fail_next(422, {"message": "Validation \x1b[2JFailed\x07"}, method="POST")
    with pytest.raises(ForgeError, match="422: Validation") as err:
        await _deliver(job_repo, _cfg("github", forge), tmp_path / "state")
    assert "\x1b" not in str(err.value) and "\x07" not in str(err.value)


async def test_a_merge_request_deleted_on_the_forge_is_replaced(
    job_repo: JobRepo, forge: ForgeStandIn, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    await _deliver(job_repo, _cfg("gitlab", forge), state)
    del forge.pulls[1]  # an owner deleted it
    forge.requests.clear()
    result = await _deliver(job_repo, _cfg("gitlab", forge), state)
    assert not result.updated and len(forge.pulls) == 1 and forge.calls("PUT") == []
    assert [r.method for r in forge.calls()] == ["GET", "GET", "POST"]
