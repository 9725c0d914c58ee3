"""A repository policy may only lower retry counts, make PR delivery more conservative, and
not touch what acts with the user's token or machine (where the PR goes, what it triggers).

Each policy is a real ``.tandem/policy.yaml`` in a real git repository, loaded as the CLI
and the runner load it (``load_policy(..., repo=...)``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import PolicyError
from orchestrator.policy import Policy, load_policy
from orchestrator.security.tighten import FIELD_RULES, LOWER, RULED_SECTIONS, USER_ONLY
from tests.cli_helpers import run_cli

NO_USER = Path("/nonexistent/policy.yaml")


def _repo_policy(repo: Path, text: str) -> Path:
    path = repo / ".tandem" / "policy.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _refused(repo: Path, path: Path, line: int, field: str, user: Path = NO_USER) -> str:
    with pytest.raises(PolicyError) as info:
        load_policy("default", user_path=user, repo=repo)
    err = info.value
    assert (err.file, err.line, err.field) == (str(path), line, field)
    text = str(err)
    assert text.startswith(f"{path}:{line}: {field}: a repository policy may only tighten")
    assert "\n" not in text
    return text


@pytest.mark.parametrize(
    ("text", "line", "field"),
    [
        ("retries:\n  same_tier_verify: 3\n", 2, "retries.same_tier_verify"),
        ("retries:\n  deep_failures_before_pause: 50\n", 2, "retries.deep_failures_before_pause"),
        ("name: repo\nretries:\n  edit_repairs: 2\n", 3, "retries.edit_repairs"),
        ("retries: {plan_repairs: 9}\n", 1, "retries.plan_repairs"),
    ],
)
def test_repo_policy_cannot_raise_a_retry_count(
    git_repo: Path, text: str, line: int, field: str
) -> None:
    path = _repo_policy(git_repo, text)
    message = _refused(git_repo, path, line, field)
    assert f"raises {field}" in message and "may only lower it" in message


def test_repo_policy_cannot_raise_retries_above_the_users(git_repo: Path, tmp_path: Path) -> None:
    """The limit is the trusted layers' value, not the built-in one."""
    user = tmp_path / "user.yaml"
    user.write_text("retries:\n  same_tier_verify: 1\n")
    path = _repo_policy(git_repo, "retries:\n  same_tier_verify: 2\n")
    _refused(git_repo, path, 2, "retries.same_tier_verify", user=user)


def test_repo_policy_may_lower_retries_and_limits(git_repo: Path) -> None:
    _repo_policy(git_repo, "retries:\n  same_tier_verify: 0\n  deep_failures_before_pause: 1\n"
                 "  edit_repairs: 0\n  plan_repairs: 0\n"
                 "checkpoint:\n  max_file_bytes: 200000\n")
    policy = load_policy("default", user_path=NO_USER, repo=git_repo)
    assert policy.retries.model_dump() == {"same_tier_verify": 0, "deep_failures_before_pause": 1,
                                           "edit_repairs": 0, "plan_repairs": 0}
    assert policy.checkpoint.max_file_bytes == 200_000


def test_repo_policy_cannot_raise_the_checkpoint_size_cap(git_repo: Path) -> None:
    path = _repo_policy(git_repo, "checkpoint:\n  max_file_bytes: 500000000\n")
    _refused(git_repo, path, 2, "checkpoint.max_file_bytes")


@pytest.mark.parametrize(
    ("text", "line", "field"),
    [
        ("pr:\n  labels: [deploy-preview]\n", 2, "pr.labels"),
        ("pr:\n  base: release\n", 2, "pr.base"),
        ("pr:\n  title_prefix: '[skip ci] '\n", 2, "pr.title_prefix"),
        ("checkpoint:\n  message_prefix: '[skip ci]'\n", 2, "checkpoint.message_prefix"),
        ("checkpoint:\n  push_remote: upstream\n", 2, "checkpoint.push_remote"),
    ],
)
def test_repo_policy_cannot_change_where_the_pr_goes_or_what_it_triggers(
    git_repo: Path, text: str, line: int, field: str
) -> None:
    path = _repo_policy(git_repo, text)
    message = _refused(git_repo, path, line, field)
    assert "only the user's own policy may set it" in message


def test_repo_policy_cannot_publish_a_draft_pr(git_repo: Path) -> None:
    path = _repo_policy(git_repo, "budgets:\n  max_steps: 10\npr:\n  draft: false\n")
    assert "turns off a safety setting (pr.draft)" in _refused(git_repo, path, 4, "pr.draft")


def test_repo_policy_cannot_turn_on_a_pr_the_user_turned_off(
    git_repo: Path, tmp_path: Path
) -> None:
    user = tmp_path / "user.yaml"
    user.write_text("pr:\n  enabled: false\n")
    path = _repo_policy(git_repo, "pr:\n  enabled: true\n")
    message = _refused(git_repo, path, 2, "pr.enabled", user=user)
    assert "turns on pr.enabled" in message


def test_repo_policy_may_make_delivery_more_conservative(git_repo: Path, tmp_path: Path) -> None:
    user = tmp_path / "user.yaml"
    user.write_text("pr:\n  draft: false\n  labels: [tandem]\n  base: main\n")
    _repo_policy(git_repo, "pr:\n  draft: true\n  labels: [tandem]\n  base: main\n"
                 "approvals:\n  before_pr: true\n")
    policy = load_policy("default", user_path=user, repo=git_repo)
    assert (policy.pr.draft, policy.pr.labels, policy.pr.base) == (True, ["tandem"], "main")
    assert policy.approvals.before_pr
    _repo_policy(git_repo, "pr:\n  enabled: false\n")
    assert not load_policy("default", user_path=user, repo=git_repo).pr.enabled


def test_user_and_command_line_may_still_set_the_user_only_fields(
    git_repo: Path, tmp_path: Path
) -> None:
    user = tmp_path / "user.yaml"
    user.write_text("retries:\n  same_tier_verify: 5\npr:\n  draft: false\n  labels: [bot]\n"
                    "  base: develop\n  title_prefix: 'tandem: '\n")
    _repo_policy(git_repo, "retries:\n  edit_repairs: 0\n")
    overrides = ["retries.plan_repairs=3", "pr.labels=[bot, ci]"]
    policy = load_policy("default", user_path=user, repo=git_repo, overrides=overrides)
    assert (policy.retries.same_tier_verify, policy.retries.edit_repairs) == (5, 0)
    assert policy.retries.plan_repairs == 3
    assert (policy.pr.draft, policy.pr.base, policy.pr.title_prefix) == (False, "develop",
                                                                          "tandem: ")
    assert policy.pr.labels == ["bot", "ci"]


def test_cli_policy_check_refuses_a_repo_label_in_one_line(
    git_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _repo_policy(git_repo, "pr:\n  labels: [auto-merge]\n")
    code, out, err = run_cli(capsys, "policy", "check", "default", "--repo", str(git_repo))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"{path}:2: pr.labels: a repository policy may only tighten" in err


def test_every_field_of_the_ruled_sections_has_a_rule() -> None:
    """A field added to one of these sections needs a decision before repositories may use it."""
    listed = set(FIELD_RULES)
    for section in RULED_SECTIONS:
        model = Policy.model_fields[section].annotation
        assert model is not None
        for field in model.model_fields:
            assert (section, field) in listed, f"{section}.{field} has no tighten-only rule"
    assert all(section in RULED_SECTIONS for section, _ in listed)
    assert all(rule == LOWER for (s, _), (rule, _) in FIELD_RULES.items() if s == "retries")
    assert {f for (s, f), (rule, _) in FIELD_RULES.items() if s == "pr" and rule == USER_ONLY} \
        == {"base", "title_prefix", "labels"}


def test_shipped_policies_still_load_under_an_empty_repo_policy(git_repo: Path) -> None:
    _repo_policy(git_repo, "name: repo\n")
    for name in ("default", "strict", "fast-review", "fast-only", "deep-only"):
        assert load_policy(name, user_path=NO_USER, repo=git_repo).name == "repo"
