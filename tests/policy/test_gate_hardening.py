"""Untrusted input against the router and the gate: hostile regexes in a repository's
policy, huge and binary diffs, path tricks, and secrets written in disguise."""

from __future__ import annotations

import base64
import subprocess
import time
from pathlib import Path

import pytest

from orchestrator import router
from orchestrator.errors import PolicyError
from orchestrator.policy import Policy, load_policy
from orchestrator.router import (
    REPO_POLICY_RULE_ID,
    UNSCANNED_RULE_ID,
    Decision,
    StepFacts,
    gate_diff,
    route_step,
)
from orchestrator.secrets import find_secrets, redact

NO_USER = Path("/nonexistent/policy.yaml")
TOKEN = "ghp_" + "aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hJ6"


@pytest.fixture(scope="module")
def default() -> Policy:
    return load_policy("default", user_path=NO_USER)


def _repo_policy(tmp_path: Path, text: str) -> Path:
    repo = tmp_path / "repo"
    (repo / ".tandem").mkdir(parents=True)
    (repo / ".tandem/policy.yaml").write_text(text)
    return repo


# --- hostile regexes ------------------------------------------------------------------


@pytest.mark.parametrize("pattern", [
    r"(a+)+$",           # nested quantifier: exponential
    r"(\w*)*x",
    r"(a|aa)+$",         # a repeated alternation: exponential
    r"\w*\w*x",          # two quantifiers over the same text: polynomial
    r"(a)\1+",           # a back-reference
    r"(?=(a+)+b)",       # the same inside a look-ahead
])
def test_a_backtracking_regex_in_a_repo_policy_is_refused_at_load(tmp_path: Path,
                                                                  pattern: str) -> None:
    repo = _repo_policy(tmp_path, "route_rules:\n  - id: repo.slow\n    category: security\n"
                                  f"    when:\n      step_text: ['{pattern}']\n")
    with pytest.raises(PolicyError, match="backtrack") as info:
        load_policy("default", user_path=NO_USER, repo=repo)
    assert info.value.field == "route_rules.repo.slow.when.step_text"
    assert info.value.line == 5 and "\n" not in str(info.value)


def test_task_text_regexes_are_checked_too(tmp_path: Path) -> None:
    repo = _repo_policy(tmp_path, "gate_rules:\n  - id: repo.slow\n    category: security\n"
                                  "    when: {task_text: ['(x+x+)+y']}\n")
    with pytest.raises(PolicyError, match="backtrack") as info:
        load_policy("default", user_path=NO_USER, repo=repo)
    assert info.value.field == "gate_rules.repo.slow.when.task_text"


def test_the_worst_accepted_regex_cannot_stall_the_router(tmp_path: Path) -> None:
    # the costliest shapes that pass the check, against a megabyte of text they never match
    repo = _repo_policy(tmp_path, "route_rules:\n  - id: repo.words\n    category: security\n"
                                  "    when: {step_text: ['\\w*x', '[^x]*x', '.*x', 'a?a?a?a?']}\n"
                                  "gate_rules:\n  - id: repo.task\n    category: security\n"
                                  "    when: {task_text: ['\\w+x', '(?:ab)?c*x']}\n")
    policy = load_policy("default", user_path=NO_USER, repo=repo)
    text = "a" * 1_000_000
    start = time.perf_counter()
    route_step(policy, StepFacts(text, ["a.py"]))
    gate_diff(policy, "", tier="fast", task_text=text, run_linter=False)
    # Without the cap on the text a pattern reads, '\w*x' alone backtracks quadratically
    # over the megabyte (hours); with it the whole decision takes well under a second
    # (0.5 s seen on a busy 2-core CI machine), so the bound leaves room for slow machines.
    assert time.perf_counter() - start < 10


# --- diffs from git: paths, modes, links, binary content -------------------------------


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout


def _commit(repo: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        target = repo / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "base")


def _staged(repo: Path, *flags: str) -> str:
    _git(repo, "add", "-A")
    return _git(repo, "diff", "--cached", *flags)


def _rules(decision: Decision) -> set[str]:
    return {m.id for m in decision.rules}


@pytest.mark.parametrize(("old", "new"), [("docs/notes.py", "auth/notes.py"),
                                          ("auth/notes.py", "docs/notes.py")])
def test_a_rename_into_or_out_of_a_sensitive_path_counts_both_sides(
    default: Policy, git_repo: Path, old: str, new: str
) -> None:
    _commit(git_repo, {old: "X = 1\n"})
    (git_repo / new).parent.mkdir(parents=True, exist_ok=True)
    (git_repo / old).rename(git_repo / new)
    diff = _staged(git_repo, "-M")
    assert f"rename from {old}" in diff
    decision = gate_diff(default, diff, tier="fast", run_linter=False)
    assert decision.rule_id == "gate.sensitive-paths"
    assert decision.rules[0].features["paths"] == ["auth/notes.py"]


def test_case_variations_of_sensitive_paths_still_match(default: Policy, git_repo: Path) -> None:
    _commit(git_repo, {"AUTH/Login.PY": "X = 1\n", ".Tandem/Policy.YAML": "a: 1\n"})
    (git_repo / "AUTH/Login.PY").write_text("X = 2\n")
    decision = gate_diff(default, _staged(git_repo), tier="fast", run_linter=False)
    assert decision.rule_id == "gate.sensitive-paths"
    (git_repo / ".Tandem/Policy.YAML").write_text("a: 2\n")
    decision = gate_diff(default, _staged(git_repo), tier="deep", run_linter=False)
    assert (decision.action, decision.rule_id) == ("block", REPO_POLICY_RULE_ID)


def test_a_model_never_edits_the_repository_policy(git_repo: Path) -> None:
    """Not even on the deepest tier, and not in the baseline that escalates nothing."""
    _commit(git_repo, {".tandem/policy.yaml": "budgets: {max_steps: 3}\n"})
    (git_repo / ".tandem/policy.yaml").unlink()
    deleted = _staged(git_repo)
    (git_repo / "moved.yaml").write_text("budgets: {max_steps: 3}\n")
    for policy in (load_policy("default", user_path=NO_USER),
                   load_policy("fast-only", user_path=NO_USER)):
        for diff in (deleted, _staged(git_repo, "-M")):
            decision = gate_diff(policy, diff, tier=policy.deepest_tier, run_linter=False)
            assert (decision.action, decision.rule_id) == ("block", REPO_POLICY_RULE_ID)
            assert decision.security_escalation


def test_a_file_made_executable_escalates(default: Policy, git_repo: Path) -> None:
    _commit(git_repo, {"tools/run.sh": "echo hi\n"})
    (git_repo / "tools/run.sh").chmod(0o755)
    diff = _staged(git_repo)
    assert "new mode 100755" in diff
    decision = gate_diff(default, diff, tier="fast", run_linter=False)
    assert decision.rule_id == "gate.executable"
    assert decision.rules[0].features["executable"] == ["tools/run.sh"]


@pytest.mark.parametrize(("target", "rule"), [
    ("../notes.txt", "gate.symlink"),
    ("../../.git/hooks/pre-commit", "gate.symlink-escape"),
    ("../../../outside", "gate.symlink-escape"),
    ("/etc/passwd", "gate.symlink-escape"),
    ("../../.TANDEM/policy.yaml", "gate.symlink-escape"),
])
def test_symbolic_links_escalate_and_escaping_ones_need_a_person(
    default: Policy, git_repo: Path, target: str, rule: str
) -> None:
    (git_repo / "lib/sub").mkdir(parents=True)
    (git_repo / "lib/sub/link").symlink_to(target)
    diff = _staged(git_repo)
    assert "new file mode 120000" in diff
    decision = gate_diff(default, diff, tier="fast", run_linter=False)
    assert decision.rule_id == rule
    assert "gate.symlink" in _rules(decision)


@pytest.mark.parametrize("path", [
    ".github/workflows/ci.yml", ".gitlab-ci.yml", "Jenkinsfile", "setup.py", "pyproject.toml",
    "web/package.json", "Makefile", "tests/conftest.py", ".gitattributes", ".gitmodules",
])
def test_ci_build_and_git_config_files_escalate(default: Policy, git_repo: Path,
                                                path: str) -> None:
    _commit(git_repo, {path: "a = 1\n"})
    (git_repo / path).write_text("a = 2\n")
    decision = gate_diff(default, _staged(git_repo), tier="fast", run_linter=False)
    assert "gate.build-and-ci" in _rules(decision)
    assert decision.action == "escalate-redo" and decision.security_escalation
    route = route_step(default, StepFacts("bump the version", [path]))
    assert route.tier == "deep"


def test_binary_changes_are_judged_by_path_and_need_a_person(default: Policy,
                                                             git_repo: Path) -> None:
    _commit(git_repo, {"auth/keys.bin": b"\x00\x01old"})
    (git_repo / "auth/keys.bin").write_bytes(b"\x00\x02new")
    for flags in ((), ("--binary",)):
        diff = _staged(git_repo, *flags)
        assert ("GIT binary patch" if flags else "Binary files") in diff
        decision = gate_diff(default, diff, tier="fast", run_linter=False)
        assert {"gate.sensitive-paths", "gate.binary"} <= _rules(decision)
        assert decision.action == "require-approval"
    # a plain diff's "Binary files" line has no git header before it
    plain = "Binary files a/assets/logo.png and b/assets/logo.png differ\n"
    decision = gate_diff(default, plain, tier="fast", run_linter=False)
    assert decision.rule_id == "gate.binary"
    assert decision.features["files"] == ["assets/logo.png"]


def test_a_huge_diff_is_not_scanned_but_goes_to_a_person(
    default: Policy, monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = "".join(f"+row_{i} = compute(item_{i}, offset={i})  # generated\n"
                   for i in range(60_000))  # 3 MB; 20 MB take about 2.5 s
    diff = ("diff --git a/data/gen.py b/data/gen.py\nnew file mode 100644\n--- /dev/null\n"
            f"+++ b/data/gen.py\n@@ -0,0 +1,60000 @@\n{body}")

    def no_scan(*_args: object) -> None:
        raise AssertionError("a diff over the scan limit was pattern-scanned")

    # The pattern scan and the linter are what grew with the diff (a 27 MB diff took
    # 14.9 s); neither may run on it.
    monkeypatch.setattr(router, "scan", no_scan)
    monkeypatch.setattr(router, "lint_changes", no_scan)
    decision = gate_diff(default, diff, tier="fast")
    assert (decision.action, decision.rule_id) == ("require-approval", UNSCANNED_RULE_ID)
    assert decision.tier == "deep" and decision.security_escalation
    one_line = f"--- a/m.js\n+++ b/m.js\n@@ -1 +1 @@\n-a\n+{'x' * 3_000_000}\n"
    decision = gate_diff(default, one_line, tier="fast", run_linter=False)
    assert decision.rule_id == UNSCANNED_RULE_ID  # never a silent pass


def test_a_huge_diff_is_still_searched_for_secrets(default: Policy) -> None:
    body = "+x = 1\n" * 200_000 + f"+token = \"{TOKEN}\"\n"
    diff = f"--- a/big.py\n+++ b/big.py\n@@ -0,0 +1,200001 @@\n{body}"
    decision = gate_diff(default, diff, tier="fast", run_linter=False)
    assert decision.action == "block" and decision.features["secrets"]


# --- secrets in disguise -----------------------------------------------------------------

AWS = "AKIA" + "Q3EGRTZPLMN4XJ7W"
STRIPE = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"
PEM = "-----BEGIN RSA " + "PRIVATE KEY-----"


@pytest.mark.parametrize("text", [
    f'key = "{AWS[:10]}" + "{AWS[10:]}"',                       # joined on one line
    f'TOKEN = "{TOKEN[:20]}" "{TOKEN[20:]}"',                     # implicit concatenation
    f'token = ("{TOKEN[:20]}"\n         "{TOKEN[20:]}")',         # continued on the next line
    f"const k = '{STRIPE[:12]}' +\n  '{STRIPE[12:]}';",
    f'$k = "{STRIPE[:12]}" . "{STRIPE[12:]}";',
    f'blob = "{base64.b64encode(AWS.encode()).decode()}"',         # base64
    f"x: {base64.urlsafe_b64encode(TOKEN.encode()).decode()}",
    f'data = "{base64.b64encode((PEM + chr(10) + "MIIEpAIBAAKCAQEA3Tz2").encode()).decode()}"',
    f'h = "{AWS.encode().hex()}"',                                 # hex
    f'{{"aws_access_key_id": "{AWS}"}}',                           # JSON and YAML values
    "aws_secret_access_key: Zq8vL3nR7tX2pW9kM4jH6fD1sA5gB0cE8yU3iO7p",
])
def test_split_and_encoded_secrets_are_blocked(default: Policy, text: str) -> None:
    body = "".join(f"+{line}\n" for line in text.split("\n"))
    n = text.count("\n") + 1
    diff = f"--- a/app/conf.py\n+++ b/app/conf.py\n@@ -1 +1,{n + 1} @@\n x = 1\n{body}"
    decision = gate_diff(default, diff, tier="deep", run_linter=False)
    assert decision.action == "block" and decision.features["secrets"]
    assert decision.features["secrets"][0]["line"] == 2
    for finding in find_secrets(text):
        for part in (AWS[:10], AWS[10:], TOKEN[20:], STRIPE[12:]):
            assert part not in finding.excerpt
    assert all(part not in redact(text) for part in (AWS[10:], TOKEN[20:], STRIPE[12:]))


def test_a_known_key_split_or_encoded_is_found() -> None:
    key = "k3y-" + "Zq8vL3nR7tX2pW9k"
    assert find_secrets(f'a = "{key[:8]}" + "{key[8:]}"', [key])
    assert find_secrets(f"b = {base64.b64encode(key.encode()).decode()}", [key])


def test_a_private_key_with_crlf_line_endings_is_blocked(default: Policy,
                                                        git_repo: Path) -> None:
    (git_repo / "deploy").mkdir()
    (git_repo / "deploy/id_rsa.txt").write_bytes(
        f"{PEM}\r\nMIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM2Tv\r\n"
        "-----END RSA PRIVATE KEY-----\r\n".encode())
    decision = gate_diff(default, _staged(git_repo), tier="deep", run_linter=False)
    assert decision.action == "block"
    assert [s["kind"] for s in decision.features["secrets"]] == ["private-key"]


@pytest.mark.parametrize("text", [
    'digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"',
    'id = "123e4567-e89b-12d3-a456-426614174000"',
    '"integrity": "sha512-3x8Fhb0ZrOPyQF2mX4bzqQzRRBMtyjGkcuQJz1UHV0w8nVXlT6qGb6GXY3i7Xr5d'
    'Vg1j6Mg0nEMaEg2TkA7rWQ==",',
    '    {file = "foo-1.0.tar.gz", hash = "sha256:2c0b3bc2d2b5d7f2c4e6c6b1f0c8e4e4a7a4b0a3e1'
    'c2d5f6a7b8c9d0e1f2a3b4"},',
    "github.com/pkg/errors v0.9.1 h1:FEBLx1zS214owpjy7qsBeixbURkuhQAwrK5UwLGTwt4=",
    'rev = "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3"',
    'icon = "iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAYAAAAf8/9hAAAABHNCSVQICAgIfAhkiAAAAAlwSFlzAAAL"',
    'msg = "hello " + "world"',
    'name = "test_" + "something_really_long_for_a_fixture_name"',
])
def test_hashes_uuids_and_lock_files_are_not_secrets(text: str) -> None:
    assert find_secrets(text) == []
