"""A malformed Redis URL is one line naming where it came from, never redis-py's
``ValueError``; bad benchmark counts, and a submission with a bad policy, override,
repository path or base ref, are refused before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.config import reset_settings
from tests.cli_helpers import run_cli

USE = "(use redis://host:port/db, rediss:// or unix://)"


@pytest.mark.parametrize("argv", [
    ("cancel", "x"),
    ("submit", ".", "task"),
    ("worker",),
    ("jobs",),
    ("show", "x"),
    ("bench", "queue"),
])
@pytest.mark.parametrize("url", ["notaurl", "http://host:6379/0", "redis:/host"])
def test_bad_redis_url_option(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], url: str
) -> None:
    code, out, err = run_cli(capsys, *argv, "--redis-url", url)
    assert code == 2 and out == ""
    assert err == f"tandem: error: --redis-url {url!r}: not a Redis URL {USE}\n"


def test_bad_port_in_redis_url(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "cancel", "x", "--redis-url", "redis://host:abc/0")
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("tandem: error: --redis-url 'redis://host:abc/0': not a valid Redis "
                          "URL: ")


@pytest.mark.parametrize("argv", [
    ("cancel", "x"),
    ("jobs",),
    ("show", "x"),
    ("steer", "x", "hello"),
    ("approve", "x"),
    ("reject", "x", "--reason", "no"),
])
def test_bad_redis_url_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, argv: tuple[str, ...]
) -> None:
    monkeypatch.setenv("TANDEM_REDIS_URL", "notaurl")
    reset_settings()
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == ""
    assert err == f"tandem: error: TANDEM_REDIS_URL 'notaurl': not a Redis URL {USE}\n"


def test_bad_redis_url_variable_for_chat(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TANDEM_REDIS_URL", "localhost:6379")
    reset_settings()
    code, _, err = run_cli(capsys, "chat", str(tmp_path))
    assert code == 2
    assert err == f"tandem: error: TANDEM_REDIS_URL 'localhost:6379': not a Redis URL {USE}\n"


def test_password_not_shown(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "cancel", "x", "--redis-url", "http://u:secret@host:1/0")
    assert code == 2 and "secret" not in err


@pytest.mark.parametrize(("argv", "option"), [
    (("queue", "--jobs", "0"), "--jobs"),
    (("queue", "--checkpoints", "0"), "--checkpoints"),
    (("queue", "--jobs", "-5"), "--jobs"),
    (("steer", "--steers", "0", "--warmup", "0", "--cli-steers", "0"), "--steers"),
    (("steer", "--warmup", "-1"), "--warmup"),
    (("steer", "--cli-steers", "-1"), "--cli-steers"),
    (("transport", "--requests", "0", "--no-tls"), "--requests"),
    (("transport", "--tokens", "0"), "--tokens"),
    (("transport", "--repeats", "0"), "--repeats"),
    (("checkpoint", "--repeat", "0"), "--repeat"),
])
def test_bench_counts_below_minimum(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], option: str
) -> None:
    code, out, err = run_cli(capsys, "bench", *argv)
    assert code == 2 and out == "" and "Traceback" not in err
    assert f"Invalid value for '{option}'" in err and "is not in the range" in err


@pytest.mark.parametrize(("extra", "expected"), [
    (["--policy", "no-such-policy"], "no-such-policy: no such policy file or built-in name"),
    (["-s", "budgets.max_steps=many"], "budgets.max_steps"),
    (["--base-ref", "no-such-ref"], "base ref 'no-such-ref' is not a commit"),
    (["SUB"], "is inside the git repository"),
])
def test_submit_checks_what_it_can_before_queueing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, extra: list[str], expected: str
) -> None:
    """Refused here, before a worker takes the job (no Redis is contacted: none listens)."""
    import subprocess

    repo = tmp_path / "repo"
    (repo / "sub").mkdir(parents=True)
    for args in (["init", "-q"], ["-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q",
                                  "--allow-empty", "-m", "init"]):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)
    target = str(repo / "sub") if extra == ["SUB"] else str(repo)
    options = [] if extra == ["SUB"] else extra
    code, out, err = run_cli(capsys, "submit", target, "task", *options,
                             "--redis-url", "redis://127.0.0.1:1/0")
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert expected in err
