"""The command line as a user and a script see it, each case through the real `tandem`
in a subprocess on real git repositories: bad input (a --test that cannot be split, a
TANDEM_HOME that cannot be written, a typo in `resume -s`) is one line on stderr with exit
status 2 and leaves nothing behind; ``--json`` keeps stdout to one JSON document, on
failure and on Ctrl-C too; a long task comes on stdin; and what a job's record holds
(errors, reasons, multi-line tasks) is printed as text, one job per line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from orchestrator.demo import TAPE_PATH
from orchestrator.jobstore import JobRecord, list_jobs, load_job, new_job_id
from orchestrator.receipts import Receipt


def _tandem(*args: str, env: dict[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator", *args],
                          env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)


def _one_line_error(out: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr and out.stderr.count("\n") == 1, out.stderr
    for needle in needles:
        assert needle in out.stderr, out.stderr


def test_a_test_command_that_cannot_be_split_is_refused_before_the_job(
    demo_repo: Path,
) -> None:
    unbalanced = _tandem("run", str(demo_repo), "Add slugify", "--tape", str(TAPE_PATH),
                         "--pr", "none", "--test", 'pytest "-q')
    _one_line_error(unbalanced, "--test", "no closing quotation")
    empty = _tandem("run", str(demo_repo), "Add slugify", "--tape", str(TAPE_PATH),
                    "--pr", "none", "--test", " ")
    _one_line_error(empty, "--test ' ' is empty")
    queued = _tandem("submit", str(demo_repo), "Add slugify", "--test", "a 'b",
                     "--redis-url", "redis://127.0.0.1:1")
    _one_line_error(queued, "--test", "no closing quotation")
    assert list_jobs() == []


def _json_error(out: subprocess.CompletedProcess[str]) -> dict[str, object]:
    doc = json.loads(out.stdout)  # the whole of stdout is one JSON document
    assert isinstance(doc, dict) and doc["exit_code"] == out.returncode != 0, out.stdout
    assert "Traceback" not in out.stderr and str(doc["error"]) in out.stderr
    return doc


def test_json_output_is_json_on_stdout_when_the_command_fails(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    cases = {
        "usage": _tandem("run", str(tmp_path / "missing"), "x", "--json"),
        "not a repository": _tandem("run", str(tmp_path / "plain"), "x", "--json"),
        "unknown job": _tandem("show", "no-such-job", "--json"),
        "unknown policy": _tandem("policy", "check", str(tmp_path / "p.yaml"), "--json"),
        "rollback": _tandem("rollback", "no-such-job", "--to", "1", "--json"),
    }
    for name, out in cases.items():
        doc = _json_error(out)
        assert out.returncode == 2, (name, out.stderr)
        assert doc["error"], name
    assert "is not a git repository" in str(_json_error(cases["not a repository"])["error"])
    # Without --json, stdout stays empty on an error, as before.
    plain = _tandem("show", "no-such-job")
    assert plain.returncode == 2 and plain.stdout == ""
    # --json after `--` is an argument, not the option.
    after = _tandem("show", "--", "--json")
    assert after.returncode == 2 and after.stdout == ""


def test_ctrl_c_during_run_with_json_leaves_a_resumable_job_and_json(
    tmp_path: Path, demo_repo: Path,
) -> None:
    started, flag = tmp_path / "started", tmp_path / "hold"
    flag.touch()
    test_cmd = (f"{{python}} -c \"import os, time\nopen('{started}', 'w').close()\n"
                f"while os.path.exists('{flag}'): time.sleep(0.02)\"")
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "run", str(demo_repo), "Add slugify",
         "--tape", str(TAPE_PATH), "--pr", "none", "--test", test_cmd, "--json"],
        env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not started.exists():  # the verification of step 1 has begun
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "tandem resume" in err
    doc = json.loads(out)
    assert doc["status"] == "interrupted" and doc["exit_code"] == 130
    job = load_job(str(doc["job_id"]))
    assert (job.status, job.pause_reason) == ("paused", "interrupted")


def test_a_task_longer_than_the_command_line_is_read_from_stdin(
    demo_repo: Path, redis_url: str,
) -> None:
    # Linux refuses a single argument over 128 KiB: such a task can only come on stdin.
    task = "Add slugify\n" + "Context line.\n" * 30_000
    queued = subprocess.run(
        [sys.executable, "-m", "orchestrator", "submit", str(demo_repo), "-", "--json",
         "--redis-url", redis_url, "--prefix", "cli-stdin"],
        input=task, env=dict(os.environ), capture_output=True, text=True, timeout=60)
    assert queued.returncode == 0, queued.stderr
    assert json.loads(queued.stdout)["task"] == task
    nothing = subprocess.run(
        [sys.executable, "-m", "orchestrator", "run", str(demo_repo), "-", "--tape",
         str(TAPE_PATH)], stdin=subprocess.DEVNULL, env=dict(os.environ),
        capture_output=True, text=True, timeout=60)
    _one_line_error(nothing, "the task is empty")
    assert list_jobs() == []


def test_show_prints_brackets_in_untrusted_text_literally() -> None:
    """A job's error, pause reason, escalations and a served model's name come from
    tests, repositories and providers: `[/tmp/x]` in them is text, not rich markup."""
    failed = JobRecord(job_id=new_job_id(), repo="/r", task="t", status="failed",
                       error="test failed in [/tmp/x] [bold]x[/bold] [/]",
                       steps=[{"step": 1, "escalations": ["no progress: [/] twice"]}])
    failed.save()
    receipt = Receipt(job_id=failed.job_id, step=1, phase="edit", kind="model_call",
                      tier="fast", served_model="m[/x]")
    failed.events_path.write_text(json.dumps({"type": "receipt",
                                              "receipt": receipt.model_dump(mode="json")}) + "\n")
    paused = JobRecord(job_id=new_job_id(), repo="/r", task="t", status="paused",
                       pause_reason="budget: cost [/] over the limit")
    paused.save()
    out = _tandem("show", failed.job_id)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    assert "error: test failed in [/tmp/x] [bold]x[/bold] [/]" in out.stdout
    assert "escalation: no progress: [/] twice" in out.stdout and "m[/x]" in out.stdout
    out = _tandem("show", paused.job_id)
    assert out.returncode == 0, out.stderr
    assert "paused: budget: cost [/] over the limit" in out.stdout


def test_show_a_job_delivered_with_pr_none_names_its_branch() -> None:
    job = JobRecord(job_id=new_job_id(), repo="/r", task="t", status="done",
                    branch="tandem/t-1", pr_result={"kind": "none"})
    job.save()
    out = _tandem("show", job.job_id)
    assert out.returncode == 0, out.stderr
    assert "pull request: None" not in out.stdout
    assert "branch tandem/t-1" in out.stdout and f"tandem pr {job.job_id} --pr github" in out.stdout


def test_a_tandem_home_that_cannot_be_created_is_one_clear_error(
    tmp_path: Path, demo_repo: Path,
) -> None:
    (tmp_path / "a-file").write_text("")
    env = {"TANDEM_HOME": str(tmp_path / "a-file" / "home")}  # not creatable, even by root
    run = _tandem("run", str(demo_repo), "Add slugify", "--tape", str(TAPE_PATH), "--pr",
                  "none", env=env)
    _one_line_error(run, f"TANDEM_HOME {tmp_path / 'a-file' / 'home'} cannot be written",
                    "set TANDEM_HOME")
    demo = _tandem("demo", "--dir", str(tmp_path / "shop2"), "--json", env=env)
    assert json.loads(demo.stdout)["exit_code"] == demo.returncode == 2, demo.stderr
    assert "Traceback" not in demo.stderr and not (tmp_path / "shop2").exists()
    chat = _tandem("chat", str(demo_repo), env=env)
    _one_line_error(chat, "cannot be written")


def test_a_bad_override_on_resume_is_not_saved_into_the_job(demo_repo: Path) -> None:
    job = JobRecord(job_id=new_job_id(), repo=str(demo_repo), task="t", status="paused",
                    pause_reason="budget: cost over the limit",
                    overrides=["budgets.max_steps=9"])
    job.save()
    out = _tandem("resume", job.job_id, "-s", "budgets.max_cost_usd=abc")
    _one_line_error(out, "budgets.max_cost_usd", "valid number")
    # The typo did not stick: the job resumes as it was, with a corrected override.
    assert load_job(job.job_id).overrides == ["budgets.max_steps=9"]


def test_jobs_lists_a_multi_line_task_on_one_line() -> None:
    ids = [new_job_id() for _ in range(2)]
    JobRecord(job_id=ids[0], repo="/r", task="Fix the bug\n\nDetails:\n- one").save()
    JobRecord(job_id=ids[1], repo="/r", task="Short").save()
    out = _tandem("jobs")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 2 and all(line.split()[0] in ids for line in lines), out.stdout
    assert "Fix the bug Details: - one" in out.stdout


def test_jobs_says_which_record_it_could_not_read() -> None:
    good = JobRecord(job_id=new_job_id(), repo="/r", task="Readable")
    good.save()
    damaged = JobRecord(job_id=new_job_id(), repo="/r", task="Damaged")
    damaged.save()
    record = damaged.events_path.parent / "job.json"
    record.write_text('{"job_id": "' + damaged.job_id + '", "repo": ')  # cut short
    not_an_object = JobRecord(job_id=new_job_id(), repo="/r", task="List")
    not_an_object.save()
    other = not_an_object.events_path.parent / "job.json"
    other.write_text("[]")  # JSON, but not a record: no traceback either
    out = _tandem("jobs")
    assert out.returncode == 0, out.stderr
    assert good.job_id in out.stdout and damaged.job_id not in out.stdout
    assert f"warning: {record}: cannot be read, left out of the list" in out.stderr
    assert f"warning: {other}: cannot be read, left out of the list (TypeError" in out.stderr
    as_json = _tandem("jobs", "--json")
    assert [j["job_id"] for j in json.loads(as_json.stdout)] == [good.job_id]
    assert str(record) in as_json.stderr


def test_a_damaged_graph_state_file_is_one_clear_error(
    _tandem_home: Path, demo_repo: Path,
) -> None:
    (_tandem_home / "state.sqlite").write_bytes(b"not a database, e.g. cut short" * 100)
    run = _tandem("run", str(demo_repo), "Add slugify", "--tape", str(TAPE_PATH), "--pr",
                  "none")
    _one_line_error(run, f"graph state {_tandem_home / 'state.sqlite'}: file is not a database",
                    "move the file aside")
    job = JobRecord(job_id=new_job_id(), repo=str(demo_repo), task="t", status="done",
                    worktree=str(demo_repo))
    job.save()
    rollback = _tandem("rollback", job.job_id, "--to", "1")
    _one_line_error(rollback, "file is not a database")
