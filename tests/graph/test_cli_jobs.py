"""The job commands under the conditions of unattended use: a job stopped by a signal is
recorded as interrupted and resumes; a second process cannot run a job that is running;
input refused at the start leaves no job record behind; and the messages for a wrong
repository, an ambiguous job id or a rejected job say what to do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.errors import JobBusy
from orchestrator.jobstore import JobRecord, job_lock, list_jobs, load_job, new_job_id
from orchestrator.sim.server import ThreadedSim
from tests.fixtures_jobs import write_policy


def _tandem(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], env=dict(os.environ),
                          capture_output=True, text=True, timeout=timeout)


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


def _events(job_id: str) -> list[str]:
    path = load_job(job_id).events_path
    return [json.loads(line)["type"] for line in path.read_text().splitlines()] \
        if path.exists() else []


def test_a_stopped_job_is_recorded_as_interrupted_and_resumes(
    tmp_path: Path, demo_repo: Path, demo_sim: ThreadedSim
) -> None:
    flag = tmp_path / "slow"
    flag.touch()
    # Verification of step 1 blocks while the flag exists: the signal lands mid-step.
    test_cmd = (f"{{python}} -c \"import os, time\nwhile os.path.exists('{flag}'): "
                "time.sleep(0.05)\"")
    policy = write_policy(tmp_path / "p.yaml", demo_sim.base_url)
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "run", str(demo_repo),
                             "Add slugify", "-p", str(policy), "--test", test_cmd],
                            env=dict(os.environ), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = list_jobs()
            if found and "step.start" in _events(found[0].job_id):
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the job never started its first step")
        job_id = found[0].job_id
        assert [j.job_id for j in list_jobs()] == [job_id]
        busy = _tandem("resume", job_id)  # the job runs: a second process is refused
        assert busy.returncode == 2 and "is running in another process" in busy.stderr
        time.sleep(0.5)
        stop = _tandem("cancel", job_id)  # no Redis: SIGTERM to the process running it
        assert stop.returncode == 0 and f"SIGTERM to pid {proc.pid}" in stop.stdout
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert f"job {job_id} interrupted" in err and f"tandem resume {job_id}" in err
    job = load_job(job_id)
    assert (job.status, job.pause_reason) == ("paused", "interrupted")
    assert "job.interrupted" in _events(job_id)
    flag.unlink()
    done = _tandem("resume", job_id, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "done"


def test_a_record_left_running_by_a_dead_process_shows_interrupted(tmp_path: Path) -> None:
    job = JobRecord(job_id=new_job_id(), repo=str(tmp_path), task="t", status="running")
    job.save()
    listed = json.loads(_tandem("jobs", "--json").stdout)
    assert [(j["status"], j["pause_reason"]) for j in listed] == [
        ("paused", "interrupted: resume it")]
    with job_lock(job):  # while a process holds the job, it is running
        assert json.loads(_tandem("jobs", "--json").stdout)[0]["status"] == "running"
        with pytest.raises(JobBusy, match=f"pid {os.getpid()}"), job_lock(job):
            pass


def test_input_refused_at_the_start_leaves_no_record(tmp_path: Path, demo_repo: Path,
                                                     demo_sim: ThreadedSim) -> None:
    policy = write_policy(tmp_path / "p.yaml", demo_sim.base_url)
    empty = tmp_path / "empty"
    empty.mkdir()
    _git(empty, "init", "-q")
    no_commits = _tandem("run", str(empty), "Add slugify", "-p", str(policy))
    bad_base = _tandem("run", str(demo_repo), "Add slugify", "-p", str(policy),
                       "--base", "no-such-ref")
    for out in (no_commits, bad_base):
        assert out.returncode == 2, out.stderr
        assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    bad_policy = _tandem("demo", "-p", "no-such-policy", "--dir", str(tmp_path / "shop2"))
    assert bad_policy.returncode == 2 and not (tmp_path / "shop2").exists()
    no_token = _tandem("run", str(demo_repo), "Add slugify", "-p", str(policy), "--pr",
                       "github")
    assert no_token.returncode == 2 and "GITHUB_TOKEN is not set" in no_token.stderr
    assert list_jobs() == []


def test_wrong_repository_paths_and_empty_task(tmp_path: Path, demo_repo: Path) -> None:
    (demo_repo / "sub").mkdir()
    inside = _tandem("run", str(demo_repo / "sub"), "x")
    assert inside.returncode == 2
    assert f"is inside the git repository {demo_repo.resolve()}; pass the" in inside.stderr
    bare = tmp_path / "bare.git"
    _git(tmp_path, "clone", "-q", "--bare", str(demo_repo), str(bare))
    out = _tandem("run", str(bare), "x")
    assert out.returncode == 2 and "is a bare git repository" in out.stderr
    empty_task = _tandem("run", str(demo_repo), "  ")
    assert empty_task.returncode == 2 and "the task is empty" in empty_task.stderr
    assert list_jobs() == []


def test_job_ids_prefixes_and_a_rejected_job(tmp_path: Path) -> None:
    ids = ["20261204-100000-aaaaaa", "20261204-100001-bbbbbb"]
    for job_id in ids:
        JobRecord(job_id=job_id, repo=str(tmp_path), task="t", status="cancelled",
                  error="pull request rejected: not now").save()
    ambiguous = _tandem("show", "20261204")
    assert ambiguous.returncode == 2 and "matches 2 jobs" in ambiguous.stderr
    assert load_job("20261204-100001").job_id == ids[1]
    rejected = _tandem("resume", ids[0])
    assert rejected.returncode == 2 and "was rejected or cancelled" in rejected.stderr


def test_a_tandem_home_that_is_a_file_is_one_clear_error(tmp_path: Path) -> None:
    home = tmp_path / "home-file"
    home.write_text("")
    env = {**os.environ, "TANDEM_HOME": str(home)}
    for args in (["demo"], ["jobs"]):
        out = subprocess.run([sys.executable, "-m", "orchestrator", *args], env=env,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 2
        assert out.stderr == (f"tandem: error: TANDEM_HOME {home} is a file: it must name a "
                              "folder (it is created if missing)\n")


def test_show_finds_a_local_job_with_a_redis_url_set(tmp_path: Path) -> None:
    job = JobRecord(job_id=new_job_id(), repo=str(tmp_path), task="local task", status="done")
    job.save()
    env = {**os.environ, "TANDEM_REDIS_URL": "redis://127.0.0.1:1/0"}  # nothing listens
    out = subprocess.run([sys.executable, "-m", "orchestrator", "show", job.job_id, "--json"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["task"] == "local task"
