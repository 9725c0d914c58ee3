"""Policy files that cannot be used, through the real `tandem`: one line naming where the
problem is (the file, the ``extends`` line that names a missing parent), exit status 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.demo import TAPE_PATH
from tests.cli_helpers import run_cli


def _one_line_error(code: int, err: str) -> str:
    assert code == 2, err
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err.strip()


def test_a_policy_file_that_is_not_utf8_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe bad")
    code, out, err = run_cli(capsys, "policy", "check", str(binary), "--json")
    assert _one_line_error(code, err) == (
        f"tandem: error: {binary}: not UTF-8 text (at byte 0): save the policy as UTF-8")
    assert json.loads(out) == {"error": f"{binary}: not UTF-8 text (at byte 0): save the "
                                        "policy as UTF-8", "exit_code": 2}


def test_a_repository_policy_that_is_not_utf8_stops_the_run(
    capsys: pytest.CaptureFixture[str], demo_repo: Path,
) -> None:
    (demo_repo / ".tandem").mkdir()
    (demo_repo / ".tandem" / "policy.yaml").write_bytes(b"name: caf\xe9\n")
    code, out, err = run_cli(capsys, "run", str(demo_repo), "Add slugify", "--tape",
                             str(TAPE_PATH), "--pr", "none", "--json")
    line = _one_line_error(code, err)
    assert line.endswith(".tandem/policy.yaml: not UTF-8 text (at byte 9): save the policy "
                         "as UTF-8")
    assert json.loads(out)["exit_code"] == 2


def test_a_missing_parent_is_reported_at_its_extends_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    child = tmp_path / "p.yaml"
    child.write_text("name: child\nextends: nosuchparent\n")
    code, _, err = run_cli(capsys, "policy", "check", str(child))
    assert _one_line_error(code, err).startswith(
        f"tandem: error: {child}:2: extends: nosuchparent: no such policy file or built-in "
        "name (built-ins: ")
