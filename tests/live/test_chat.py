"""``tandem chat`` through a real pseudo-terminal (pexpect): a task streams, Ctrl-C
interrupts it, the typed redirect steers the generation in flight, the job finishes
with the redirected edit, ``/undo`` rolls its checkpoint back, ``/quit`` leaves. Plus
``/deep`` forcing the tier of the next task's first step."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pexpect
import pytest

from orchestrator.chat import ChatSession
from orchestrator.demo import DEMO_TEST_CMD
from orchestrator.sim import ModelProfile, SimConfig, SimServer
from orchestrator.sim.server import ThreadedSim
from tests.fixtures_jobs import DEEP, FAST, write_policy

PLAN = ('{"steps": [{"intent": "Add a slugify(text) helper to shop/text.py", '
        '"files": ["shop/text.py"]}]}')
PR_TEXT = '{"title": "Add slugify", "summary": "Adds a slugify helper."}'


def _edit(joiner: str) -> str:
    return f"""shop/text.py
<<<<<<< SEARCH
def normalize(text: str) -> str:
=======
def slugify(text: str) -> str:
    return "{joiner}".join(text.lower().split())


def normalize(text: str) -> str:
>>>>>>> REPLACE
"""


PREAMBLE = "Thinking about the helper. " + " ".join(f"note{i}" for i in range(4000)) + "\n"


def _tape() -> list[dict[str, Any]]:
    return [{"match": {"contains": "STEERING:"}, "text": _edit("_")},
            {"match": {"contains": "PR FOR TASK"}, "text": PR_TEXT},
            {"match": {"model": DEEP, "contains": "REPOSITORY FILES:"}, "text": PLAN},
            {"match": {"model": DEEP, "contains": "STEP 1:"}, "text": _edit("+")},
            {"match": {"model": FAST, "contains": "STEP 1:"}, "text": PREAMBLE + _edit("-")}]


@pytest.fixture
def chat_sim() -> Iterator[ThreadedSim]:
    # The fast model streams its long answer for seconds: time to press Ctrl-C.
    profiles = [ModelProfile(name=FAST, ttft_ms=0, tokens_per_s=400),
                ModelProfile(name=DEEP, ttft_ms=0, tokens_per_s=20000)]
    config = SimConfig(models=profiles, tape=_tape(), steer_supported=True)
    with SimServer(config).run_in_thread() as sim:
        yield sim


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout


def _job_branch(repo: Path) -> str:
    branches = _git(repo, "branch", "--list", "tandem/*", "--format=%(refname:short)").split()
    assert len(branches) == 1, branches
    return branches[0]


def test_chat_task_interrupt_redirect_undo(
    tmp_path: Path, demo_repo: Path, chat_sim: ThreadedSim, _tandem_home: Path
) -> None:
    policy = write_policy(tmp_path / "p.yaml", chat_sim.base_url,
                          fast_extra={"steer_supported": True})
    env = {**os.environ, "TANDEM_HOME": str(_tandem_home), "TERM": "dumb"}
    child = pexpect.spawn(
        sys.executable, ["-m", "orchestrator", "chat", str(demo_repo), "--policy", str(policy),
                         "--test", DEMO_TEST_CMD],
        env=env, encoding="utf-8", timeout=60, dimensions=(40, 200))
    child.logfile_read = transcript = io.StringIO()  # shown when an expectation fails
    try:
        child.expect_exact("tandem> ")
        child.sendline("Add a slugify helper")
        child.expect_exact("note20 ")  # the fast model's answer is streaming
        child.sendcontrol("c")
        child.expect_exact("redirect> ")
        child.sendline("join the words with underscores")
        # The answer to the steer and the line saying how it was applied come from two
        # threads (the control socket's reply, the job's event): either may print first.
        # In place (response.steer) as a rule; when the machine is so loaded that the steer
        # reaches the server only as the answer ends, the gateway re-issues the request
        # instead. Either way the redirect must reach the model (checked below); the
        # in-place path itself is pinned by tests/live/test_gateway_steer.py.
        lines = [r"\[delivered to the in-flight generation\]",
                 r"\[steer (response\.steer|reissue) "]
        seen = {child.expect(lines)}
        seen.add(child.expect(lines))
        assert seen == {0, 1}, seen
        child.expect(r"job \S+: done, 1 step\(s\)")
        child.expect_exact("tandem> ")
        text = _git(demo_repo, "show", f"{_job_branch(demo_repo)}:shop/text.py")
        assert 'return "_".join' in text and 'return "-".join' not in text
        child.sendline("/undo")
        child.expect_exact("undone:")
        child.expect_exact("tandem> ")
        assert "def slugify" not in _git(demo_repo, "show",
                                         f"{_job_branch(demo_repo)}:shop/text.py")
        child.sendline("/quit")
        child.expect_exact("bye")
        child.expect(pexpect.EOF)
    except (pexpect.TIMEOUT, pexpect.EOF, AssertionError) as exc:
        raise AssertionError(f"chat transcript:\n{transcript.getvalue()[-4000:]}") from exc
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    assert "def slugify" not in (demo_repo / "shop/text.py").read_text()  # user's tree untouched


def test_deep_forces_the_next_tasks_first_step(
    tmp_path: Path, demo_repo: Path, chat_sim: ThreadedSim
) -> None:
    policy = write_policy(tmp_path / "p.yaml", chat_sim.base_url)
    out = io.StringIO()
    session = ChatSession(demo_repo, policy=str(policy), test_cmd=DEMO_TEST_CMD, out=out)
    session.handle("/deep")
    session.handle("Add a slugify helper")
    assert [s["tier"] for s in session.jobs[-1].steps] == ["deep"]
    assert 'return "+".join' in _git(demo_repo, "show",
                                     f"{session.jobs[-1].branch}:shop/text.py")
    assert "the next task's first step goes to the deep tier" in out.getvalue()
    session.handle("/undo")
    assert session.undo() == "nothing to undo"
