"""Pre-edit routing and the post-edit gate on real diffs made with git."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from orchestrator.errors import ConfigError
from orchestrator.policy import Policy, load_policy
from orchestrator.router import (
    SECRET_RULE_ID,
    StepFacts,
    compile_matchers,
    gate_diff,
    route_step,
)
from orchestrator.security.diff import parse_diff
from orchestrator.security.globs import compile_glob

NO_USER = Path("/nonexistent/policy.yaml")
TOKEN = "ghp_" + "aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hJ6"


@pytest.fixture(scope="module")
def default() -> Policy:
    return load_policy("default", user_path=NO_USER)


def git_diff(repo: Path, changes: dict[str, str]) -> str:
    """Write ``changes`` into the repo and return ``git diff`` (new files included)."""
    for rel, text in changes.items():
        target = repo / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    return subprocess.run(["git", "diff", "--cached"], cwd=repo, check=True,
                          capture_output=True, text=True).stdout


def test_plain_edit_stays_on_fast(default: Policy, git_repo: Path) -> None:
    diff = git_diff(git_repo, {"app.py": "def add(a, b):\n    return a + b + 0\n"})
    decision = gate_diff(default, diff, tier="fast")
    assert (decision.action, decision.tier, decision.rule_id) == ("proceed", "fast", "gate.default")
    assert decision.features["files"] == ["app.py"]


def test_shell_injection_sink_escalates(default: Policy, git_repo: Path) -> None:
    diff = git_diff(git_repo, {"app.py": "import subprocess\n\ndef add(a, b):\n"
                               "    return subprocess.run(f'echo {a}', shell=True)\n"})
    decision = gate_diff(default, diff, tier="fast")
    assert decision.action == "escalate-redo" and decision.tier == "deep"
    assert decision.security_escalation
    risky = next(m for m in decision.rules if m.id == "gate.risky-code")
    assert "command" in risky.features["categories"]
    linter = next(m for m in decision.rules if m.id == "gate.linter")
    assert any(f.startswith("B602@app.py:4") for f in linter.features["linter"])
    # The same diff already parsed (as the graph hands it over) decides the same way.
    again = gate_diff(default, parse_diff(diff), tier="fast")
    assert (again.action, again.tier, [m.id for m in again.rules]) == (
        decision.action, decision.tier, [m.id for m in decision.rules])


@pytest.mark.parametrize(
    ("path", "text", "category"),
    [
        ("web/render.js", "el.innerHTML = userInput;\n", "escaping"),
        ("lib/merge.js", "if (key === '__proto__') { continue; }\n", "prototype-pollution"),
        ("srv/files.go", "package srv\n\nfunc f(p string) string { return filepath.Clean(p) }\n",
         "path"),
        ("srv/run.go", "package srv\n\nfunc f(a string) { exec.Command(\"sh\", \"-c\", a) }\n",
         "command"),
        ("app/load.py", "import pickle\n\ndef load(b):\n    return pickle.loads(b)\n",
         "deserialization"),
        ("app/views.py", "def go(r):\n    return redirect(r.GET['next'])\n", "redirect"),
    ],
)
def test_risky_patterns_per_language(
    default: Policy, git_repo: Path, path: str, text: str, category: str
) -> None:
    decision = gate_diff(default, git_diff(git_repo, {path: text}), tier="fast", run_linter=False)
    assert decision.security_escalation
    assert category in decision.features["pattern_scores"]


def test_secret_in_diff_is_blocked_even_if_policy_disables_the_rule(git_repo: Path) -> None:
    policy = load_policy("fast-only", user_path=NO_USER,
                         overrides=["gate_rules.gate.secret.enabled=false"])
    diff = git_diff(git_repo, {"config.py": f"GITHUB = '{TOKEN}'\n"})
    decision = gate_diff(policy, diff, tier="deep")
    assert decision.action == "block" and decision.rule_id == SECRET_RULE_ID
    assert TOKEN not in decision.model_dump_json()
    assert decision.features["secrets"][0]["path"] == "config.py"


def test_multi_file_and_sensitive_paths(default: Policy, git_repo: Path) -> None:
    diff = git_diff(git_repo, {"a.py": "x = 1\n", "b.py": "y = 2\n"})
    assert gate_diff(default, diff, tier="fast").rule_id == "gate.multi-file"
    diff = git_diff(git_repo, {"pkg/auth/views.py": "x = 1\n"})
    decision = gate_diff(default, parse_only(diff, "pkg/auth/views.py"), tier="fast")
    assert decision.rule_id == "gate.sensitive-paths"


def parse_only(diff: str, path: str) -> str:
    """The part of a multi-file diff that concerns ``path``."""
    chunks = diff.split("diff --git ")
    return "".join("diff --git " + c for c in chunks if c.startswith(f"a/{path} "))


def test_escalation_from_deep_is_a_no_op_but_approval_stays(git_repo: Path) -> None:
    diff = git_diff(git_repo, {"app.py": "import pickle\nx = pickle.loads(b'')\n"})
    default = load_policy("default", user_path=NO_USER)
    assert gate_diff(default, diff, tier="deep", run_linter=False).action == "proceed"
    strict = load_policy("strict", user_path=NO_USER)
    decision = gate_diff(strict, diff, tier="deep", run_linter=False)
    assert decision.action == "require-approval"
    assert decision.rule_id == "gate.risky-code"


def test_linter_counts_only_added_lines(default: Policy) -> None:
    old = "import subprocess\nsubprocess.call('ls', shell=True)\n"
    new = old + "x = 1\n"
    diff = "--- a/m.py\n+++ b/m.py\n@@ -1,2 +1,3 @@\n import subprocess\n" \
           " subprocess.call('ls', shell=True)\n+x = 1\n"
    decision = gate_diff(default, diff, tier="fast", files={"m.py": new})
    assert decision.features["linter"] == []


def test_route_step_rules(default: Policy) -> None:
    quick = route_step(default, StepFacts("rename a variable", ["app/util.py"]))
    assert (quick.tier, quick.action, quick.rule_id) == ("fast", "proceed", "route.default")
    multi = route_step(default, StepFacts("refactor", ["a.py", "b.py"]))
    assert (multi.tier, multi.rule_id) == ("deep", "route.multi-file")
    sec = route_step(default, StepFacts("fix the CSRF check on login", ["app/views.py"]))
    assert sec.tier == "deep" and sec.rule_id == "route.security-intent"
    big = route_step(default, StepFacts("edit", ["a.py"], context_tokens=120_000))
    assert big.rule_id == "route.large-context"
    again = route_step(default, StepFacts("edit", ["a.py"], failures=2, same_failure_twice=True))
    assert again.rule_id == "route.repeated-failure"


def test_strict_route_requires_approval_and_forced_tier() -> None:
    strict = load_policy("strict", user_path=NO_USER)
    d = route_step(strict, StepFacts("rotate the session token", ["app/auth/tokens.py"]))
    assert (d.tier, d.action) == ("deep", "require-approval")
    forced = route_step(strict, StepFacts("tidy imports", ["a.py"], forced_tier="fast"))
    assert (forced.tier, forced.rule_id) == ("fast", "route.forced-tier")
    with pytest.raises(ConfigError, match="unknown tier 'turbo'"):
        route_step(strict, StepFacts("x", [], forced_tier="turbo"))
    with pytest.raises(ConfigError, match="unknown tier"):
        gate_diff(strict, "", tier="turbo")


def test_diff_parser_tracks_new_line_numbers() -> None:
    diff = ("diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n"
            "@@ -10,3 +10,4 @@\n a\n-b\n+c\n+d\n e\n"
            "diff --git a/gone.go b/gone.go\n--- a/gone.go\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n")
    parsed = parse_diff(diff)
    assert parsed.paths == ["x.py", "gone.go"]
    assert parsed.files[0].added == [(11, "c"), (12, "d")]
    assert parsed.files[1].deleted and parsed.files[1].language == "go"
    assert parsed.lines_changed == 4


def test_task_text_condition_needs_both_vocabulary_and_code(default: Policy) -> None:
    diff = "--- a/m.py\n+++ b/m.py\n@@ -1 +1,3 @@\n x = 1\n+if size > LIMIT:\n+    raise E()\n"
    plain = gate_diff(default, diff, tier="fast", run_linter=False)
    assert not plain.security_escalation  # one weak signal alone
    vuln = gate_diff(default, diff, tier="fast", run_linter=False,
                     task_text="Denial of service: attackers can send huge bodies")
    assert vuln.rule_id == "gate.security-task"
    match = next(m for m in vuln.rules if m.id == "gate.security-task")
    assert "attackers" in match.features["task_text"]


def test_identifier_aware_auth_pattern(default: Policy) -> None:
    diff = "--- a/s.js\n+++ b/s.js\n@@ -1 +1,2 @@\n x\n+if (!user.checkPermission(doc)) deny();\n"
    decision = gate_diff(default, diff, tier="fast", run_linter=False)
    assert "auth" in decision.features["pattern_scores"]


def test_api_key_values_in_use_are_blocked(
    default: Policy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "plain-looking-value-42")
    diff = "--- a/c.txt\n+++ b/c.txt\n@@ -1 +1,2 @@\n x\n+key plain-looking-value-42\n"
    decision = gate_diff(default, diff, tier="fast", run_linter=False)
    assert decision.action == "block"
    assert "plain-looking-value-42" not in decision.model_dump_json()
    assert decision.features["secrets"][0]["kind"] == "known-secret"


def test_an_added_approval_rule_keeps_the_deep_redo_of_a_security_match(
    default: Policy, git_repo: Path, tmp_path: Path
) -> None:
    """A repository may add a rule that asks for approval on the fast tier; it must not
    cancel the deep tier that a security rule asked for (the strongest action decides,
    the deepest tier asked for applies)."""
    repo = tmp_path / "policy-repo"  # not git_repo: its diff would include the policy
    (repo / ".tandem").mkdir(parents=True)
    (repo / ".tandem/policy.yaml").write_text(
        "gate_rules:\n  - {id: repo.review-everything, category: other, when: {}, tier: fast,"
        " action: require-approval}\n")
    layered = load_policy("default", user_path=NO_USER, repo=repo)
    diff = git_diff(git_repo, {"app/views.py": "import os\n\ndef thumb(request):\n"
                                               "    os.system('convert ' + request.GET['f'])\n"})
    plain = gate_diff(default, diff, tier="fast", run_linter=False)
    assert (plain.tier, plain.action) == ("deep", "escalate-redo")
    decision = gate_diff(layered, diff, tier="fast", run_linter=False)
    assert (decision.tier, decision.action) == ("deep", "require-approval")


def test_compiled_matchers_leave_nothing_to_compile_in_a_step(default: Policy,
                                                              git_repo: Path) -> None:
    compile_glob.cache_clear()
    compile_matchers(default)
    compiled = compile_glob.cache_info()
    assert compiled.currsize >= len(default.sensitive_paths)
    facts = StepFacts(step_text="Fix the login redirect", predicted_files=["web/auth/views.py"],
                      context_tokens=10, failures=0)
    assert route_step(default, facts).tier == "deep"
    diff = git_diff(git_repo, {"web/auth/views.py": "def login():\n    return 1\n"})
    assert gate_diff(default, diff, tier="fast", task_text=facts.step_text).action != "proceed"
    after = compile_glob.cache_info()
    assert (after.misses, after.currsize) == (compiled.misses, compiled.currsize)
