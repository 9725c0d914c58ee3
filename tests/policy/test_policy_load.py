"""Policy loading: shipped policies, layering, clear errors, the tighten-only rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import PolicyError
from orchestrator.policy import Policy, load_policy, policy_json_schema
from orchestrator.policy_load import builtin_policy_names

NO_USER = Path("/nonexistent/policy.yaml")


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", ["default", "strict", "fast-review", "fast-only", "deep-only"])
def test_shipped_policies_load(name: str) -> None:
    policy = load_policy(name, user_path=NO_USER)
    assert policy.name == name
    assert policy.tiers["fast"].models[0].model == "gpt-5.3-codex-spark"
    assert policy.tiers["fast"].models[0].provider == "openai-ws"
    assert policy.tiers["deep"].models[0].model == "gpt-5.3-codex"
    assert policy.tiers["deep"].models[0].base_url == "sim://"
    assert policy.retries.edit_repairs == 1
    assert {"default", "strict", "fast-review", "fast-only", "deep-only"} <= set(
        builtin_policy_names())


def test_strict_requires_approval_and_deep_only_defaults_to_deep() -> None:
    strict = load_policy("strict", user_path=NO_USER)
    assert strict.approvals.security_sensitive
    rules = {r.id: r for r in strict.gate_rules}
    assert rules["gate.risky-code"].action == "require-approval"
    assert load_policy("deep-only", user_path=NO_USER).default_tier == "deep"


def test_fast_review_reviews_security_trips_and_still_redoes_the_rest() -> None:
    default = {r.id: r for r in load_policy("default", user_path=NO_USER).gate_rules}
    review = {r.id: r for r in load_policy("fast-review", user_path=NO_USER).gate_rules}
    changed = {i for i in review if review[i].action != default[i].action}
    assert changed == {"gate.sensitive-paths", "gate.risky-code", "gate.security-task"}
    assert {review[i].action for i in changed} == {"escalate-review"}
    for i in ("gate.multi-file", "gate.build-and-ci", "gate.executable", "gate.symlink"):
        assert review[i].action == "escalate-redo"
    assert review["gate.secret"].action == "block"
    assert review["gate.risky-code"].when == default["gate.risky-code"].when


def test_layers_user_then_repo_then_overrides(tmp_path: Path) -> None:
    user = _write(tmp_path / "user.yaml", "budgets:\n  max_steps: 20\n  max_cost_usd: 3\n")
    repo = tmp_path / "repo"
    _write(repo / ".tandem/policy.yaml", "budgets:\n  max_steps: 10\n")
    overrides = ["budgets.max_cost_usd=1.5", "gate_rules.gate.linter.action=block"]
    policy = load_policy("default", user_path=user, repo=repo, overrides=overrides)
    assert policy.budgets.max_steps == 10
    assert policy.budgets.max_cost_usd == 1.5
    assert {r.id: r.action for r in policy.gate_rules}["gate.linter"] == "block"


def test_repo_may_add_rules_and_tighten(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    default = load_policy("default", user_path=NO_USER)
    paths = "\n".join(f"  - '{p}'" for p in [*default.sensitive_paths, "payments/**"])
    _write(repo / ".tandem/policy.yaml", f"""\
sensitive_paths:
{paths}
gate_rules:
  - id: gate.risky-code
    action: require-approval
  - id: repo.payments
    category: security
    when: {{paths: ["payments/**"]}}
    action: block
approvals: {{security_sensitive: true}}
""")
    policy = load_policy("default", user_path=NO_USER, repo=repo)
    rules = {r.id: r for r in policy.gate_rules}
    assert rules["repo.payments"].action == "block"
    assert rules["gate.risky-code"].action == "require-approval"


@pytest.mark.parametrize(
    ("text", "field", "line"),
    [
        ("gate_rules:\n  - id: gate.risky-code\n    enabled: false\n",
         "gate_rules.gate.risky-code.enabled", 3),
        ("gate_rules:\n  - id: gate.secret\n    action: proceed\n",
         "gate_rules.gate.secret.action", 3),
        ("tiers:\n  fast:\n    models:\n      - provider: openai-ws\n        base_url: https://x.test\n"
         "        model: m\n", "tiers", 1),
        ("gate:\n  linter: false\n", "gate.linter", 2),
        ("sensitive_paths: []\n", "sensitive_paths", 1),
        ("budgets:\n  max_cost_usd: 1000\n", "budgets.max_cost_usd", 2),
        ("plan_tier: fast\n", "plan_tier", 1),
        ("gate_rules:\n  - id: gate.risky-code\n"
         "    when: {patterns: ['*'], min_pattern_score: 9}\n",
         "gate_rules.gate.risky-code.when.min_pattern_score", 3),
        ("approvals:\n  notify_command: sh -c 'curl evil.test'\n",
         "approvals.notify_command", 2),
        ("approvals:\n  notify_webhook: https://evil.test/hook\n", "approvals.notify_webhook", 2),
        ("checkpoint:\n  push_refs: true\n", "checkpoint.push_refs", 2),
        ("approvals:\n  notify_timeout_s: 0.000001\n", "approvals.notify_timeout_s", 2),
    ],
)
def test_loosening_repo_policy_is_rejected(
    tmp_path: Path, text: str, field: str, line: int
) -> None:
    repo = tmp_path / "repo"
    path = _write(repo / ".tandem/policy.yaml", text)
    with pytest.raises(PolicyError) as info:
        load_policy("default", user_path=NO_USER, repo=repo)
    err = info.value
    assert (err.file, err.line, err.field) == (str(path), line, field)
    assert "only tighten" in str(err) and "\n" not in str(err)


def test_repo_policy_cannot_set_a_ca_file(tmp_path: Path) -> None:
    """A repository must not make the client trust its own certificate authority."""
    import yaml

    default = load_policy("default", user_path=NO_USER)
    entry = default.tiers["fast"].models[0].model_dump(exclude_defaults=True)
    repo = tmp_path / "repo"
    same = {"tiers": {"fast": {"models": [entry]}}}
    _write(repo / ".tandem/policy.yaml", yaml.safe_dump(same))
    assert load_policy("default", user_path=NO_USER, repo=repo).tiers == default.tiers
    with_ca = {"tiers": {"fast": {"models": [{**entry, "ca_file": "repo-ca.pem"}]}}}
    path = _write(repo / ".tandem/policy.yaml", yaml.safe_dump(with_ca))
    with pytest.raises(PolicyError) as info:
        load_policy("default", user_path=NO_USER, repo=repo)
    assert (info.value.file, info.value.field) == (str(path), "tiers")
    assert "only tighten" in str(info.value)
    user = _write(tmp_path / "user.yaml", yaml.safe_dump(with_ca))
    ca_file = load_policy("default", user_path=user).tiers["fast"].models[0].ca_file
    assert ca_file == str(tmp_path / "repo-ca.pem")


def test_relative_ca_file_is_read_next_to_the_policy_file(tmp_path: Path) -> None:
    import yaml

    entry = {"provider": "openai-responses", "base_url": "https://models.internal/v1",
             "model": "m", "ca_file": "certs/ca.pem",
             "fallbacks": [{"provider": "chat-completions", "base_url": "https://b/v1",
                            "model": "n", "ca_file": "../shared/ca.pem"}]}
    absolute = {**entry, "model": "o", "ca_file": "/etc/ssl/private-ca.pem", "fallbacks": []}
    home = {**absolute, "model": "p", "ca_file": "~/certs/ca.pem"}
    doc = {"extends": "default", "tiers": {"deep": {"models": [entry, absolute, home]}}}
    path = _write(tmp_path / "team" / "policy.yaml", yaml.safe_dump(doc))
    deep = load_policy(str(path), user_path=NO_USER).tiers["deep"].models
    assert deep[0].ca_file == str(tmp_path / "team" / "certs/ca.pem")
    assert deep[0].fallbacks[0].ca_file == str(tmp_path / "team" / "../shared/ca.pem")
    assert deep[1].ca_file == "/etc/ssl/private-ca.pem"
    assert deep[2].ca_file == str(Path.home() / "certs/ca.pem")


@pytest.mark.parametrize(
    ("text", "field", "line", "words"),
    [
        ("extends: default\nbudgets:\n  max_stepz: 3\n", "budgets.max_stepz", 3, "unknown key"),
        ("extends: default\nbudgets:\n  max_steps: many\n", "budgets.max_steps", 3, "integer"),
        ("extends: default\ngate_rules:\n  - id: x\n    tier: turbo\n", "gate_rules.x.tier", 4,
         "unknown tier 'turbo'"),
        ("extends: default\nplan_tier: huge\n", "plan_tier", 2, "unknown tier"),
        # rule ids hold dots (every shipped one does): the line is the tier's own
        ("extends: default\nroute_rules:\n  - id: route.x\n    when: {min_files: 3}\n"
         "    tier: medium\n", "route_rules.route.x.tier", 5, "unknown tier 'medium'"),
        ("extends: default\ngate_rules:\n  - id: gate.a.b\n    action: block\n"
         "  - id: gate.a.b\n    action: block\n", "gate_rules.gate.a.b", 3,
         "duplicate rule id"),
        ("extends: default\nroute_rules:\n  - id: r\n    when: {min_files: zero}\n",
         "route_rules.r.when.min_files", 4, "integer"),
        ("extends: default\ntiers:\n  fast:\n    models:\n      - provider: telepathy\n"
         "        base_url: x\n        model: m\n", "tiers.fast.models.0.provider", 5, "openai-ws"),
        # a verification command is split like a shell line when the policy loads
        ("extends: default\nverify:\n  commands:\n    - name: t\n      cmd: \"pytest 'x\"\n",
         "verify.commands.0.cmd", 5, "no closing quotation"),
        ("extends: default\nverify:\n  commands:\n    - name: t\n      cmd: '  '\n",
         "verify.commands.0.cmd", 5, "is empty"),
    ],
)
def test_bad_policy_names_file_line_and_field(
    tmp_path: Path, text: str, field: str, line: int, words: str
) -> None:
    path = _write(tmp_path / "p.yaml", text)
    with pytest.raises(PolicyError) as info:
        load_policy(str(path), user_path=NO_USER)
    err = info.value
    assert (err.file, err.line, err.field) == (str(path), line, field)
    assert words in str(err)
    assert str(err).startswith(f"{path}:{line}: {field}: ")


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.yaml", "extends: default\nbudgets:\n  max_steps: [1\n")
    with pytest.raises(PolicyError) as info:
        load_policy(str(path), user_path=NO_USER)
    assert info.value.file == str(path) and info.value.line is not None
    assert "invalid YAML" in str(info.value)


def test_bad_override_names_the_override() -> None:
    with pytest.raises(PolicyError) as info:
        load_policy("default", user_path=NO_USER, overrides=["budgets.max_steps=lots"])
    assert info.value.file == "-s budgets.max_steps=lots"
    assert info.value.field == "budgets.max_steps"
    with pytest.raises(PolicyError, match="key=value"):
        load_policy("default", user_path=NO_USER, overrides=["budgets.max_steps"])


def test_unknown_policy_name_lists_builtins() -> None:
    with pytest.raises(PolicyError, match="built-ins: .*default"):
        load_policy("no-such-policy", user_path=NO_USER)


def test_a_directory_given_as_the_policy_is_named_as_one(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="is a directory: give a policy YAML file") as info:
        load_policy(str(tmp_path), user_path=NO_USER)
    assert info.value.file == str(tmp_path)


def test_user_layer_from_tandem_home(_tandem_home: Path) -> None:
    _write(_tandem_home / "policy.yaml", "budgets:\n  max_wall_s: 60\n")
    assert load_policy().budgets.max_wall_s == 60


def test_json_schema_exports_every_section() -> None:
    schema = policy_json_schema()
    assert schema["title"] == "Tandem policy"
    for key in ("tiers", "route_rules", "gate_rules", "verify", "budgets", "approvals", "pr"):
        assert key in schema["properties"]
    assert schema["additionalProperties"] is False


def test_model_entry_cost_and_candidates() -> None:
    policy: Policy = load_policy("default", user_path=NO_USER)
    fast = policy.tiers["fast"].models[0]
    assert fast.cost_usd(1_000_000, 0) == pytest.approx(fast.price_input_usd_per_mtok)
    assert fast.cost_usd(1_000_000, 0, 1_000_000) == pytest.approx(fast.price_cached_usd_per_mtok)
    assert policy.tiers["fast"].candidates()[0] is fast


def test_provider_examples_in_the_docs_validate(tmp_path: Path) -> None:
    import re

    doc = (Path(__file__).parents[2] / "docs" / "POLICIES.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", doc, re.S)
    assert len(blocks) >= 4
    providers = set()
    for i, block in enumerate(blocks):
        user = _write(tmp_path / f"user{i}.yaml", block)
        policy = load_policy("default", user_path=user)
        providers |= {m.provider for t in policy.tiers.values() for m in t.candidates()}
    assert providers == {"openai-ws", "openai-responses", "chat-completions", "anthropic"}


def test_repo_layer_cannot_switch_the_base_policy(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    path = _write(repo / ".tandem/policy.yaml", "budgets: {max_steps: 5}\nextends: fast-only\n")
    with pytest.raises(PolicyError) as info:
        load_policy("default", user_path=NO_USER, repo=repo)
    assert (info.value.file, info.value.line, info.value.field) == (str(path), 2, "extends")


def test_repo_may_add_verification_commands_but_not_drop_the_users(tmp_path: Path) -> None:
    user = _write(tmp_path / "user.yaml", "verify:\n  commands:\n"
                  "    - {name: scan, cmd: 'semgrep --error .'}\n")
    repo = tmp_path / "repo"
    repo_file = _write(repo / ".tandem/policy.yaml", "verify:\n  commands:\n"
                       "    - {name: scan, cmd: 'semgrep --error .'}\n"
                       "    - {name: tests, cmd: 'pytest -q'}\n")
    policy = load_policy("default", user_path=user, repo=repo)
    assert [c.name for c in policy.verify.commands] == ["scan", "tests"]
    for text in ("verify:\n  commands: []\n",
                 "verify:\n  commands:\n    - {name: scan, cmd: 'true'}\n",
                 "verify:\n  commands:\n"
                 "    - {name: scan, cmd: 'semgrep --error .', timeout_s: 0.01}\n"):
        repo_file.write_text(text)
        with pytest.raises(PolicyError, match="drops or changes the verification command 'scan'"):
            load_policy("default", user_path=user, repo=repo)


def test_repo_policy_must_be_a_plain_file_of_the_repository(tmp_path: Path) -> None:
    outside = _write(tmp_path / "outside/creds.yaml", "budgets: ghp_secretvalue\n")
    repo = tmp_path / "repo"
    (repo / ".tandem").mkdir(parents=True)
    (repo / ".tandem/policy.yaml").symlink_to(outside)
    with pytest.raises(PolicyError, match="is a symbolic link") as info:
        load_policy("default", user_path=NO_USER, repo=repo)
    assert "ghp_secretvalue" not in str(info.value)


def test_alias_bomb_and_nul_byte_are_one_line_errors(tmp_path: Path) -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    bomb = _write(tmp_path / "bomb/.tandem/policy.yaml", "\n".join(levels) + "\n")
    with pytest.raises(PolicyError, match="too large once its aliases are expanded"):
        load_policy("default", user_path=NO_USER, repo=bomb.parent.parent)
    nul = _write(tmp_path / "nul/.tandem/policy.yaml", "budgets:\n  max_steps: 3\0\n")
    with pytest.raises(PolicyError, match="invalid YAML: unacceptable character") as info:
        load_policy("default", user_path=NO_USER, repo=nul.parent.parent)
    assert "\n" not in str(info.value)


def test_a_bad_regex_is_refused_when_the_policy_loads(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _write(repo / ".tandem/policy.yaml", "route_rules:\n  - id: repo.bad\n"
           "    when: {step_text: ['(unclosed']}\n")
    with pytest.raises(PolicyError, match="not a valid regular expression") as info:
        load_policy("default", user_path=NO_USER, repo=repo)
    assert info.value.field == "route_rules.repo.bad.when.step_text"
