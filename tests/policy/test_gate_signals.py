"""The gate's structural signals on real ``git diff`` output: unchanged lines next to a
change, the name of the function a change is in, guards in Go, and the bandit plugin
loading that must stay quiet without hiding real failures."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from orchestrator.policy import Policy, load_policy
from orchestrator.router import gate_diff
from orchestrator.security.diff import parse_diff
from orchestrator.security.linter import lint_changes
from orchestrator.security.scan import function_names, near_context
from tests.policy.test_gate_patterns import change

NO_USER = Path("/nonexistent/policy.yaml")
# Ten unchanged lines around the change keep git's three context lines free of other code.
FILLER = "".join(f"    step{i} = {i}\n" for i in range(10))


@pytest.fixture(scope="module")
def default() -> Policy:
    return load_policy("default", user_path=NO_USER)


def gate(policy: Policy, diff: str) -> dict[str, float]:
    return gate_diff(policy, diff, tier="fast", run_linter=False).features["pattern_scores"]


def test_near_context_keeps_only_lines_next_to_a_change(git_repo: Path) -> None:
    before = "def f(a):\n" + FILLER + "    x = a\n" + FILLER + "    return x\n"
    after = before.replace("    x = a\n", "    x = int(a)\n")
    parsed = parse_diff(change(git_repo, "m.py", before, after))
    near = near_context(parsed.files[0], window=2)
    assert near == ["    step8 = 8", "    step9 = 9", "    step0 = 0", "    step1 = 1"]


def test_sink_next_to_a_change_counts_weakly(default: Policy, git_repo: Path) -> None:
    before = ("import subprocess\n\ndef run(cmd):\n" + FILLER
              + "    return subprocess.run(\n        cmd,\n    )\n")
    after = before.replace("        cmd,\n", "        cmd,\n        timeout=5,\n")
    scores = gate(default, change(git_repo, "run.py", before, after))
    assert scores == {"command": 0.25}  # one weak signal: not escalated on its own


def test_vocabulary_next_to_a_change_does_not_count(default: Policy, git_repo: Path) -> None:
    before = "def show(user):\n    password_hint = user.hint\n    return len(user.name)\n"
    after = before.replace("len(user.name)", "len(user.name) + 1")
    assert "auth" not in gate(default, change(git_repo, "show.py", before, after))


def test_function_names_from_headers_and_definitions(git_repo: Path) -> None:
    before = "def check_redirect_url(url):\n" + FILLER + "    return url\n"
    after = before.replace("    return url\n", "    return url.strip()\n")
    parsed = parse_diff(change(git_repo, "r.py", before, after))
    assert parsed.files[0].sections == ["def check_redirect_url(url):"]
    assert function_names(parsed.files[0]) == ["check_redirect_url"]
    go = parse_diff("--- a/a.go\n+++ b/a.go\n@@ -1,2 +1,2 @@\n"
                    " func (s *Server) verifyToken(t string) error {\n-\treturn nil\n+\treturn x\n")
    assert function_names(go.files[0]) == ["verifyToken"]
    js = parse_diff("--- a/a.js\n+++ b/a.js\n@@ -1,2 +1,2 @@\n"
                    " exports.sanitizeName = function (n) {\n-  return n\n+  return m\n")
    assert function_names(js.files[0]) == ["sanitizeName"]


def test_guard_in_a_security_function_escalates(default: Policy, git_repo: Path) -> None:
    before = "def check_redirect_url(url):\n" + FILLER + "    return url\n"
    after = before.replace("    return url\n", "    if not url:\n        return None\n"
                                                "    return url\n")
    scores = gate(default, change(git_repo, "r.py", before, after))
    assert scores == {"input-check": 0.25, "security-function": 0.25}


def test_guard_in_an_ordinary_validate_method_stays_on_fast(default: Policy,
                                                           git_repo: Path) -> None:
    before = "class Range:\n    def validate(self, value):\n" + FILLER + "        return value\n"
    after = before.replace("        return value\n", "        if value is None:\n"
                                                     "            return None\n"
                                                     "        return value\n")
    scores = gate(default, change(git_repo, "rng.py", before, after))
    assert scores == {"input-check": 0.25}


def test_go_guard_returning_nil_after_a_validation_call(default: Policy, git_repo: Path) -> None:
    before = "package s\n\nfunc read(k *Key) (*Key, error) {\n" + FILLER.replace("    ", "\t") \
        + "\treturn k, nil\n}\n"
    after = before.replace("\treturn k, nil\n", "\tif err := check.ValidateKey(k); err != nil {\n"
                                                "\t\treturn nil, nil\n\t}\n\treturn k, nil\n")
    scores = gate(default, change(git_repo, "s/read.go", before, after))
    assert scores == {"input-check": 0.25, "validation-call": 0.25}


def test_go_nil_check_alone_stays_on_fast(default: Policy, git_repo: Path) -> None:
    before = "package s\n\nfunc size(k *Key) int {\n\treturn k.n\n}\n"
    after = before.replace("\treturn k.n\n", "\tif k == nil {\n\t\treturn 0\n\t}\n\treturn k.n\n")
    assert gate(default, change(git_repo, "s/size.go", before, after)) == {}


def test_unused_formatter_failures_are_quiet_but_plugin_failures_are_not(
    caplog: pytest.LogCaptureFixture,
) -> None:
    lint_changes(parse_diff("--- a/m.py\n+++ b/m.py\n@@ -0,0 +1 @@\n+x = 1\n"))
    loader = logging.getLogger("stevedore.extension")
    with caplog.at_level(logging.ERROR):
        loader.error("Could not load %r: %s", "sarif", "No module named 'sarif_om'")
        loader.error("Could not load %r: %s", "any_other_test", "No module named 'x'")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["Could not load 'any_other_test': No module named 'x'"]
