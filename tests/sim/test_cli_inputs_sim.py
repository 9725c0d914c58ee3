"""Bad input to ``tandem sim`` and bad tape files: one line, exit status 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import SimConfigError
from orchestrator.sim import load_tape
from tests.cli_helpers import run_cli

NO_ENTRIES = "no tape entries (expected a list of entries, or a mapping with 'entries:')"


def test_port_out_of_range(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "sim", "--port", "99999")
    assert code == 2 and out == "" and "Traceback" not in err
    assert "Invalid value for '--port': 99999 is not in the range 0<=x<=65535." in err


@pytest.mark.timeout(30)  # a regression would serve filler text forever
@pytest.mark.parametrize("content", [
    "",
    "{}\n",
    "entries: []\n",
    "extends: default\nbudgets:\n  max_steps: 3\n",  # a policy file, not a tape
])
def test_tape_without_entries(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str
) -> None:
    tape = tmp_path / "tape.yaml"
    tape.write_text(content)
    code, out, err = run_cli(capsys, "sim", "--port", "0", "--tape", str(tape))
    assert code == 2 and out == "" and "Traceback" not in err
    assert err == f"tandem: error: {tape}: {NO_ENTRIES}\n"


def test_empty_jsonl_tape(tmp_path: Path) -> None:
    tape = tmp_path / "tape.jsonl"
    tape.write_text("\n\n")
    with pytest.raises(SimConfigError, match="no tape entries"):
        load_tape(tape)


@pytest.mark.timeout(30)
def test_invalid_tape_yaml_is_one_line_with_the_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    tape = tmp_path / "tape.yaml"
    tape.write_text("entries:\n  - match: {contains: [\n")
    code, out, err = run_cli(capsys, "sim", "--port", "0", "--tape", str(tape))
    assert code == 2 and out == "" and "Traceback" not in err
    assert err.count("\n") == 1 and "<unicode string>" not in err
    assert err.startswith(f"tandem: error: {tape}:3: invalid YAML: ")


@pytest.mark.timeout(30)
def test_binary_tape(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    tape = tmp_path / "tape.yaml"
    tape.write_bytes(bytes(range(128, 256)))
    code, _, err = run_cli(capsys, "sim", "--port", "0", "--tape", str(tape))
    assert code == 2 and "Traceback" not in err
    assert err == f"tandem: error: {tape}: not a text file (a tape is UTF-8 YAML or JSONL)\n"


def test_tape_with_entries_still_loads(tmp_path: Path) -> None:
    tape = tmp_path / "tape.yaml"
    tape.write_text("entries:\n  - match: {contains: hi}\n    text: hello\n")
    assert [e.text for e in load_tape(tape)] == ["hello"]


def test_demo_tape_points_at_existing_docs() -> None:
    from orchestrator.demo import TEMPLATE_DIR

    demo_tape = Path(TEMPLATE_DIR).parent / "tape.yaml"
    first = demo_tape.read_text().splitlines()[0]
    doc = first.split("see ")[1].split(" for")[0]
    root = Path(__file__).resolve().parents[2]
    assert (root / doc).is_file(), first
