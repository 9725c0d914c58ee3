"""Tape matching, tape files, the tokenizer and synthetic text."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import SimConfigError
from orchestrator.sim import load_tape
from orchestrator.sim.prompt import Prompt, Turn
from orchestrator.sim.tape import Tape, validate_entries
from orchestrator.sim.tokens import count_tokens, synthetic_text, tokenize


def prompt(text: str, *, model: str = "m", instructions: str = "") -> Prompt:
    turns = [Turn("user", "earlier question"), Turn("assistant", "earlier answer"),
             Turn("user", text)]
    return Prompt(model=model, turns=turns, instructions=instructions)


def tape(*entries: dict) -> Tape:
    return Tape(validate_entries(list(entries)))


def test_first_match_wins_and_last_user_message_is_tested() -> None:
    t = tape({"match": {"contains": "earlier"}, "text": "A"},
             {"match": {"contains": ["fix", "bug"]}, "text": "B"},
             {"match": {"regex": r"test_\w+"}, "text": "C"},
             {"text": "D"})
    assert t.take(prompt("please fix this bug")).text == "B"
    assert t.take(prompt("run test_app now")).text == "C"
    assert t.take(prompt("fix it")).text == "D"  # 'contains' needs every string


def test_anywhere_includes_instructions_and_history() -> None:
    t = tape({"match": {"contains": "SECRET-RULE", "anywhere": True}, "text": "A"},
             {"match": {"contains": "earlier", "anywhere": True}, "text": "B"})
    assert t.take(prompt("x", instructions="obey SECRET-RULE")).text == "A"
    assert t.take(prompt("x")).text == "B"


def test_model_filter_and_times() -> None:
    t = tape({"match": {"model": "deep"}, "text": "deep answer", "times": 2})
    assert t.take(prompt("x", model="fast")) is None
    assert [t.take(prompt("x", model="deep")) is not None for _ in range(3)] == [
        True, True, False]
    t.reset()
    assert t.take(prompt("x", model="deep")) is not None


def test_load_yaml_and_jsonl(tmp_path: Path) -> None:
    yml = tmp_path / "t.yaml"
    yml.write_text("entries:\n  - match: {contains: hi}\n    text: hello\n"
                   "  - tool_calls: [{name: f, arguments: {a: 1}}]\n")
    entries = load_tape(yml)
    assert entries[0].match.contains == ["hi"] and entries[1].tool_calls[0].name == "f"
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text('{"match": {"regex": "^x"}, "text": "y"}\n\n{"text": "z"}\n')
    assert [e.text for e in load_tape(jsonl)] == ["y", "z"]


def test_bad_tapes_name_file_and_place(tmp_path: Path) -> None:
    jsonl = tmp_path / "bad.jsonl"
    jsonl.write_text('{"text": "ok"}\n{nope\n')
    with pytest.raises(SimConfigError, match=r"bad\.jsonl:2: not JSON"):
        load_tape(jsonl)
    yml = tmp_path / "bad.yaml"
    yml.write_text("- match: {regex: '('}\n")
    with pytest.raises(SimConfigError, match=r"bad\.yaml: entry 0: bad regex"):
        load_tape(yml)
    yml.write_text("- times: 0\n")
    with pytest.raises(SimConfigError, match=r"bad\.yaml: entry 0\.times"):
        load_tape(yml)
    with pytest.raises(SimConfigError, match="cannot read tape"):
        load_tape(tmp_path / "missing.yaml")


@pytest.mark.parametrize("text", ["", "hello world", "def f(x):\n    return x  \n",
                                  "naïve café, 3.14!", "averyveryverylongidentifier"])
def test_tokens_concatenate_back(text: str) -> None:
    assert "".join(tokenize(text)) == text


def test_tokenizer_rules() -> None:
    assert tokenize("Hello, world!") == ["Hello", ",", " world", "!"]
    assert tokenize("abcdefghij") == ["abcdefgh", "ij"]
    assert tokenize("a  \n") == ["a", "  \n"]


@pytest.mark.parametrize("n_tokens", [0, 1, 11, 12, 64, 500])
def test_synthetic_text_has_exactly_n_tokens(n_tokens: int) -> None:
    assert count_tokens(synthetic_text(n_tokens, seed=n_tokens)) == n_tokens
    assert synthetic_text(n_tokens, seed=3) == synthetic_text(n_tokens, seed=3)


def test_unmatched_error_mode_answers_400_on_every_endpoint() -> None:
    """``unmatched="error"`` (a job's own simulator): a request no entry matches is a 400
    ``no_tape_match`` naming the model and the message, in each API's own error shape; a
    matching one is answered as usual."""
    import httpx

    from orchestrator.sim import SimServer

    from .conftest import DEEP, unpaced_config

    user = [{"role": "user", "content": "nothing scripted"}]
    requests = {
        "/responses": {"model": DEEP, "input": "nothing scripted", "stream": True},
        "/chat/completions": {"model": DEEP, "messages": user, "stream": True},
        "/messages": {"model": DEEP, "max_tokens": 50, "messages": user, "stream": True},
    }
    with SimServer(unpaced_config(unmatched="error")).run_in_thread() as sim:
        for path, body in requests.items():
            response = httpx.post(sim.base_url + path, json=body, timeout=20,
                                  headers={"authorization": "Bearer k", "x-api-key": "k"})
            assert response.status_code == 400, (path, response.text)
            error = response.json()["error"]
            assert "tape has no answer" in error["message"], path
            assert DEEP in error["message"] and "nothing scripted" in error["message"]
        hello = httpx.post(sim.base_url + "/chat/completions", timeout=20, json={
            "model": DEEP, "messages": [{"role": "user", "content": "say hello"}]})
        assert hello.status_code == 200
        assert hello.json()["choices"][0]["message"]["content"] == "Hello from the simulator!"
