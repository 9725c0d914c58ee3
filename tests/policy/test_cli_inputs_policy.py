"""Bad input to ``tandem policy`` and ``tandem models``: one line, exit status 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_helpers import run_cli


def one_line_error(code: int, err: str) -> str:
    assert code == 2, err
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err.strip()


def test_schema_into_missing_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "missing" / "x.json"
    code, out, err = run_cli(capsys, "policy", "schema", "-o", str(target))
    line = one_line_error(code, err)
    assert line == (f"tandem: error: -o {target}: cannot write the schema: "
                    "No such file or directory (create the folder first)")
    assert out == ""


def test_schema_to_a_file_still_works(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "schema.json"
    code, _, _ = run_cli(capsys, "policy", "schema", "-o", str(target))
    assert code == 0 and "properties" in json.loads(target.read_text())


@pytest.mark.parametrize("argv", [
    ("policy", "check", "default"),
    ("policy", "explain", "--diff", "{diff}"),
])
def test_missing_repo_folder_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: tuple[str, ...]
) -> None:
    diff = tmp_path / "change.diff"
    diff.write_text("--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a\n+b\n")
    missing = tmp_path / "nonexistent"
    args = [a.format(diff=diff) for a in argv]
    code, out, err = run_cli(capsys, *args, "--repo", str(missing))
    assert code == 2 and out == "" and "Traceback" not in err
    assert f"Invalid value for '--repo': Directory '{missing}' does not exist." in err


@pytest.mark.parametrize("content", [b"", b"just some notes\nnot a diff\n",
                                     bytes(range(256)) * 4])
def test_explain_without_file_changes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: bytes
) -> None:
    junk = tmp_path / "junk.diff"
    junk.write_bytes(content)
    code, out, err = run_cli(capsys, "policy", "explain", "--diff", str(junk), "--no-linter")
    assert one_line_error(code, err) == (
        f"tandem: error: {junk}: no file changes found "
        "(expected a unified diff, e.g. from git diff)")
    assert "gate" not in out


def test_explain_real_diff_still_judged(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    diff = tmp_path / "change.diff"
    diff.write_text("--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a = 1\n+a = 2\n")
    code, out, _ = run_cli(capsys, "policy", "explain", "--diff", str(diff), "--no-linter",
                           "--repo", str(tmp_path))
    assert code == 0 and "gate: tier=" in out


def test_unknown_key_reported_before_missing_tiers(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    policy = tmp_path / "unknownkey.yaml"
    policy.write_text("foo: 1\n")
    code, _, err = run_cli(capsys, "policy", "check", str(policy))
    assert one_line_error(code, err) == (
        f"tandem: error: {policy}:1: foo: unknown key (check the spelling; "
        "`tandem policy schema` lists the keys)")


def test_missing_tiers_says_how_to_extend(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    policy = tmp_path / "partial.yaml"
    policy.write_text("budgets:\n  max_steps: 3\n")
    code, _, err = run_cli(capsys, "policy", "check", str(policy))
    assert one_line_error(code, err) == (
        f"tandem: error: {policy}: tiers: Field required (a policy that changes only some "
        "settings starts with 'extends: default')")


def test_models_check_json_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "models", "check", "--help")
    assert code == 0
    json_line = next(line for line in out.splitlines() if "--json" in line)
    assert "Print the results as JSON." in json_line
