"""Running the real CLI entry point in-process, as a user's shell would (exit status,
stdout, stderr)."""

from __future__ import annotations

import pytest

from orchestrator.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = 0
    try:
        main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err
