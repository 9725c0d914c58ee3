"""Secret detection: provider formats, generic credentials, known values, no false alarms."""

from __future__ import annotations

import pytest

from orchestrator.secrets import find_secrets, redact

# Built at run time so that this file itself never holds a secret-shaped literal.
GITHUB = "ghp_" + "aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hJ6"
SAMPLES = {
    "aws-access-key": "AKIA" + "2E0A8F3B244C9986",
    "github-token": GITHUB,
    "gitlab-token": "glpat-" + "x9Yz3Kq7Lm2Np8Rs4Tv6",
    "slack-token": "xoxb-" + "1234567890-abcdefABCDEF",
    "stripe-key": "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc",
    "openai-key": "sk-proj-" + "Ab3De6Gh9Jk2Mn5Pq8St1Vw4",
    "anthropic-key": "sk-ant-" + "api03-Ab3De6Gh9Jk2Mn5Pq8St1Vw4",
    "google-api-key": "AIza" + "SyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q",
    "jwt": "eyJhbGciOiJIUzI1NiJ9." + "eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n",
}


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_provider_formats_are_found_and_redacted(kind: str) -> None:
    value = SAMPLES[kind]
    text = f"line one\nclient = make(key='{value}')\n"
    findings = find_secrets(text)
    assert [(f.kind, f.line) for f in findings] == [(kind, 2)]
    assert value not in findings[0].excerpt
    assert f"[REDACTED:{kind}]" in findings[0].excerpt
    out = redact(text)
    assert value not in out
    assert out.startswith("line one\n") and out.endswith("')\n")


def test_private_key_block_is_redacted_entirely() -> None:
    body = "MIIEowIBAAKCAQEAx1y2z3"
    text = f"a = 1\n-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----\nb = 2\n"
    findings = find_secrets(text)
    assert [(f.kind, f.line) for f in findings] == [("private-key", 2)]
    out = redact(text)
    assert body not in out
    assert out.startswith("a = 1\n") and out.endswith("b = 2\n")


def test_high_entropy_credential_assignments() -> None:
    text = (
        'db_password = "Zx9kLp2Qw8vRt5"\n"client_secret": "q8F2mZ0pL4xN7cV1"\n'
        "API_TOKEN=Hs8d7Fk2Lq9Pz3Xw\n"
    )
    findings = find_secrets(text)
    assert [(f.kind, f.line) for f in findings] == [("credential-assignment", n) for n in (1, 2, 3)]
    assert "Zx9kLp2Qw8vRt5" not in redact(text)


@pytest.mark.parametrize(
    "text",
    [
        'password = os.environ["DB_PASSWORD"]',
        'password = "changeme"',
        'api_key = "xxxxxxxxxxxxxxxx"',
        'API_KEY = "your-api-key-here"',
        "token = get_token(request)",
        'tokenizer = "bert-base-uncased-12"',
        'secret_name = "prod/db/credentials"',
        'password = "${DB_PASSWORD}"',
        'aws_key = "AKIAIOSFODNN7EXAMPLE"',
        "password_field = forms.CharField(widget=forms.PasswordInput)",
        'api_key: "{{ env.API_KEY }}"',
        "def check_password(self, raw_password):",
        "risk-assessment-for-the-whole-project",
    ],
)
def test_ordinary_code_is_not_a_secret(text: str) -> None:
    assert find_secrets(text) == []
    assert redact(text) == text


def test_known_values_are_found_anywhere() -> None:
    text = "Authorization: Bearer s3cr3t-value-42\n"
    findings = find_secrets(text, known_values=["s3cr3t-value-42", ""])
    assert [(f.kind, f.line) for f in findings] == [("known-secret", 1)]
    assert redact(text, ["s3cr3t-value-42"]) == "Authorization: Bearer [REDACTED:known-secret]\n"


def test_diff_lines_are_scanned() -> None:
    diff = f"+++ b/settings.py\n@@ -1 +1,2 @@\n x = 1\n+GITHUB_TOKEN = '{GITHUB}'\n"
    findings = find_secrets(diff)
    assert [(f.kind, f.line) for f in findings] == [("github-token", 4)]


def test_quick_prefilters_keep_every_finding() -> None:
    """Lines are only fully scanned when a cheap hint matches; every pattern still fires
    (JSON event lines, code, env files), and ordinary event lines stay untouched."""
    import json

    from orchestrator.secrets import redact

    for line in ("DB_PASSWORD=Zx9Qw8Er7Ty6Ui5Op4As3Df2",
                 "export AUTH_KEY: Zx9Qw8Er7Ty6Ui5Op4As3Df2"):  # env-file lines: on their own
        assert "[REDACTED:" in redact(line), line
    secret_lines = [
        'api_key = "Zx9Qw8Er7Ty6Ui5Op4As3"', '{"client_secret": "Zx9Qw8Er7Ty6Ui5Op4As3"}',
        "token := `Zx9Qw8Er7Ty6Ui5Op4As3`", "auth_key => 'Zx9Qw8Er7Ty6Ui5Op4As3'",
        "AKIAIOSFODNN7ABCDEFG", "ghp_" + "a1" * 18, "sk-proj-" + "Ab3" * 8,
        "xoxb-1234567890-abcdef", "eyJhbGciOiJI.eyJzdWIiOiIx.SflKxwRJSMeKKF2QT4",
    ]
    for line in secret_lines:
        assert "[REDACTED:" in redact(line), line
        assert "[REDACTED:" in redact(json.dumps({"text": line})), line
    event = json.dumps({"type": "receipt", "tokens_in": 1234, "rule_id": "gate.secret",
                        "features": {"keys": ["a"], "token_count": 3}})
    assert redact(event) == event


@pytest.mark.parametrize(("text", "redacted"), [
    ('{"cmd": "API_TOKEN=Hx9kP2mQ7vL4nR8t make test"}',
     '{"cmd": "API_TOKEN=[REDACTED:credential-assignment] make test"}'),
    ('{"out": "DB_PASSWORD=Hx9kP2mQ7vL4nR8t\\nok"}',
     '{"out": "DB_PASSWORD=[REDACTED:credential-assignment]\\nok"}'),
    ("GITHUB_TOKEN=Hx9kP2mQ7vL4nR8tab; make",
     "GITHUB_TOKEN=[REDACTED:credential-assignment]; make"),
])
def test_inline_env_assignments_are_redacted(text: str, redacted: str) -> None:
    assert redact(text) == redacted


@pytest.mark.parametrize("text", [
    "call(token=request_token_value)",  # a keyword argument, not the environment
    "MY_TOKEN=$TOKEN_FROM_THE_ENVIRONMENT make",  # a reference, not a value
    "API_KEY=ABCDEFGHIJKLMNOPQRST",  # one character class: not a key
    "SECRET_KEY=short",
])
def test_inline_env_lookalikes_are_left_alone(text: str) -> None:
    assert redact(text) == text
