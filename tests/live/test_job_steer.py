"""A whole job steered from another process: `tandem steer JOB "..." --json` while the
fast model streams its edit; `tandem show JOB --follow --json` tails the same job from a
third process and sees the stream and the steer. The redirected edit is the one applied
and checkpointed; the receipt records the steer."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from orchestrator.demo import DEMO_TEST_CMD
from orchestrator.jobstore import JobRecord, new_job_id
from orchestrator.runner import run_job
from orchestrator.sim.server import ThreadedSim
from tests.fixtures_jobs import write_policy
from tests.live.test_chat import _git, chat_sim  # noqa: F401 - the fixture

STEER = "join the words with underscores"


def _tandem(home: Path, *args: str, **kw: Any) -> subprocess.Popen[str]:
    env = {**os.environ, "TANDEM_HOME": str(home)}
    return subprocess.Popen([sys.executable, "-m", "orchestrator", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def test_steer_a_running_job_from_the_cli(
    tmp_path: Path, demo_repo: Path, chat_sim: ThreadedSim, _tandem_home: Path  # noqa: F811
) -> None:
    policy = write_policy(tmp_path / "p.yaml", chat_sim.base_url,
                          fast_extra={"steer_supported": True})
    job = JobRecord(job_id=new_job_id(), repo=str(demo_repo), task="Add a slugify helper",
                    policy=str(policy), test_cmd=DEMO_TEST_CMD, pr="none")
    job.save()
    streaming = threading.Event()

    def on_event(event: dict[str, Any]) -> None:
        if event["type"] == "model.progress" and event.get("phase") == "edit":
            streaming.set()

    result: dict[str, JobRecord] = {}
    runner = threading.Thread(target=lambda: result.update(
        job=asyncio.run(run_job(job, listeners=(on_event,)))))
    runner.start()
    follower = _tandem(_tandem_home, "show", job.job_id, "--follow", "--json")
    assert streaming.wait(timeout=60)
    steer = _tandem(_tandem_home, "steer", job.job_id, STEER, "--json")
    out, err = steer.communicate(timeout=60)
    runner.join(timeout=120)
    followed, _ = follower.communicate(timeout=60)

    assert steer.returncode == 0, err
    assert json.loads(out)["status"] == "delivered"
    assert json.loads(out)["id"].startswith("steer-")  # as in steer.received and .applied
    done = result["job"]
    assert done.status == "done", done.error
    text = _git(demo_repo, "show", f"{done.branch}:shop/text.py")
    assert 'return "_".join' in text and "note1 " not in text
    [edit] = [r for r in done.receipts if r.phase == "edit" and r.kind == "model_call"]
    assert edit.steer == STEER and edit.features["steered"] == ["response.steer"]
    kinds = [json.loads(line)["type"] for line in followed.splitlines()]
    assert "model.progress" in kinds and "steer.received" in kinds
    assert kinds.index("steer.received") < kinds.index("steer.applied")
    assert kinds[-1] == "job.done"


def test_steer_cli_for_a_job_that_is_not_running(_tandem_home: Path) -> None:
    proc = _tandem(_tandem_home, "steer", "nope", "hello")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert err.startswith("tandem: error: job nope is not running") and "Traceback" not in err
