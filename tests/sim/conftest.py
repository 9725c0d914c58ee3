"""Fixtures for the simulator tests: a real server on a loopback port, the official SDK."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from openai import OpenAI

from orchestrator.sim import ModelProfile, SimConfig, SimServer
from orchestrator.sim.server import ThreadedSim

FAST = "gpt-5.3-codex-spark"
DEEP = "gpt-5.3-codex"

TAPE = [
    {"match": {"contains": "say hello"}, "text": "Hello from the simulator!"},
    {"match": {"contains": "edit app"},
     "tool_calls": [{"name": "apply_edit", "arguments": {"path": "app.py", "line": 3}}]},
    {"match": {"contains": "second turn"}, "text": "Second answer."},
]


def unpaced_config(**overrides: object) -> SimConfig:
    """Real model names, no pacing: fast tests."""
    models = [ModelProfile(name=FAST), ModelProfile(name=DEEP), ModelProfile(name="sim-bench")]
    values: dict[str, object] = {"models": models, "tape": TAPE}
    values.update(overrides)
    return SimConfig.model_validate(values)


@pytest.fixture
def sim() -> Iterator[ThreadedSim]:
    with SimServer(unpaced_config()).run_in_thread() as running:
        yield running


@pytest.fixture
def client(sim: ThreadedSim) -> Iterator[OpenAI]:
    with OpenAI(base_url=sim.base_url, api_key="sk-test", max_retries=0, timeout=20) as c:
        yield c
