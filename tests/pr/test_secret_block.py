"""A secret in the diff, the history, a commit message or the PR body blocks delivery:
nothing is pushed, no request is sent, no bundle is written, and the secret appears in no
log line, error message, state file or outgoing body."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from orchestrator.errors import SecretDetected
from orchestrator.pr import ForgeConfig, PRContent, deliver, render_pr
from orchestrator.receipts import Receipt

from .conftest import GITHUB_TOKEN, ForgeStandIn, JobRepo

# An AWS access key id in the documented format (not the documented EXAMPLE key).
PLANTED = "AKIA" + "Q7ZT3B5XK2M9R4WD"


def _cfg(forge: ForgeStandIn, kind: str = "github") -> ForgeConfig:
    if kind == "bundle":
        return ForgeConfig(kind="bundle")
    return ForgeConfig(kind="github", repo="octo/app", api_url=forge.github_url)


def _everything_written(root: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in root.rglob("*") if p.is_file())


async def _blocked(job: JobRepo, forge: ForgeStandIn, tmp_path: Path, content: PRContent,
                   caplog: pytest.LogCaptureFixture, kind: str = "github") -> str:
    caplog.set_level(logging.DEBUG)
    state = tmp_path / "state"
    with pytest.raises(SecretDetected) as err:
        await deliver(job.worktree, job.branch, job.base_sha, content, _cfg(forge, kind), state)
    msg = str(err.value)
    assert PLANTED not in msg and GITHUB_TOKEN not in msg and "\n" not in msg
    assert "nothing was pushed or sent" in msg
    assert job.remote_sha() is None  # nothing pushed
    assert forge.requests == []  # nothing sent
    assert not state.exists() or PLANTED not in _everything_written(state)
    assert not (state / "bundle").exists()
    assert PLANTED not in caplog.text and GITHUB_TOKEN not in caplog.text
    return msg


CLEAN = PRContent(title="Add config", summary="Adds config.", body="Adds config.\n")


@pytest.mark.parametrize("kind", ["github", "bundle"])
async def test_secret_in_the_diff_blocks_the_pr(
    kind: str, job_repo: JobRepo, forge: ForgeStandIn, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    job_repo.commit_step(3, {"settings.py": f"DEBUG = False\nAWS_KEY_ID = '{PLANTED}'\n"},
                         "fast", "spark-sim")
    msg = await _blocked(job_repo, forge, tmp_path, CLEAN, caplog, kind)
    assert "file settings.py:2 (aws-access-key)" in msg


async def test_secret_added_then_removed_still_blocks(
    job_repo: JobRepo, forge: ForgeStandIn, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The net diff is clean, but the history would carry the key to the remote."""
    job_repo.commit_step(3, {"keys.env": f"KEY={PLANTED}\n"}, "fast", "spark-sim")
    job_repo.commit_step(4, {"keys.env": None}, "fast", "spark-sim")
    await _blocked(job_repo, forge, tmp_path, CLEAN, caplog)


async def test_secret_in_a_commit_message_blocks(
    job_repo: JobRepo, forge: ForgeStandIn, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    job_repo.commit_step(3, {"x.txt": "x\n"}, "fast", "spark-sim",
                         subject=f"Use key {PLANTED} for now")
    msg = await _blocked(job_repo, forge, tmp_path, CLEAN, caplog)
    assert "message line 1" in msg


async def test_secret_in_the_rendered_body_blocks(
    job_repo: JobRepo, forge: ForgeStandIn, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    receipt = Receipt(job_id="j", step=1, phase="gate", kind="decision", action="escalate-redo",
                      reasons=[f"found {PLANTED} in config"])
    content = render_pr("j", "task", "title", "summary", [], [], [receipt], {})
    msg = await _blocked(job_repo, forge, tmp_path, content, caplog)
    assert "PR body line" in msg


async def test_the_forge_token_itself_in_the_diff_blocks(
    job_repo: JobRepo, forge: ForgeStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token in no known format is still caught: delivery scans for its exact value."""
    token = "plain-forge-token-7d1c9e"
    monkeypatch.setenv("GITHUB_TOKEN", token)
    job_repo.commit_step(3, {"notes.md": f"ask ops, token is {token}\n"}, "fast", "spark-sim")
    with pytest.raises(SecretDetected) as err:
        await deliver(job_repo.worktree, job_repo.branch, job_repo.base_sha, CLEAN,
                      _cfg(forge), tmp_path / "state")
    assert "notes.md:1 (known-secret)" in str(err.value) and token not in str(err.value)
    assert job_repo.remote_sha() is None and forge.requests == []


async def test_known_secret_values_passed_by_the_caller_block(
    job_repo: JobRepo, forge: ForgeStandIn, tmp_path: Path
) -> None:
    value = "db-pw-4f9Qx2"
    job_repo.commit_step(3, {"conf.ini": f"[db]\nhost = localhost # {value}\n"}, "fast", "s")
    with pytest.raises(SecretDetected, match="conf.ini:2"):
        await deliver(job_repo.worktree, job_repo.branch, job_repo.base_sha, CLEAN,
                      _cfg(forge), tmp_path / "state", known_secrets=[value])
    assert job_repo.remote_sha() is None and forge.requests == []


@pytest.mark.parametrize("files", [
    {"fixture.dat": b"\0\nAWS_KEY_ID=" + PLANTED.encode() + b"\n"},  # git calls it binary
    {".gitattributes": "*.cfg -diff\n", "app.cfg": f"key = {PLANTED}\n"},  # so does this rule
], ids=["nul-byte", "gitattributes"])
async def test_a_secret_in_a_file_git_calls_binary_blocks(
    files: dict[str, str | bytes | None], job_repo: JobRepo, forge: ForgeStandIn,
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """A binary patch would hide the content from the scan: it reads every file as text."""
    job_repo.commit_step(3, files, "fast", "spark-sim")
    msg = await _blocked(job_repo, forge, tmp_path, CLEAN, caplog, "bundle")
    assert "(aws-access-key)" in msg
