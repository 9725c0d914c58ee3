"""End-to-end jobs on the simulated provider with scripted tapes: the happy path, a gate
escalation, an escalation after failed verification, a budget pause then resume, a
malformed edit repaired, a served-model mismatch, approvals and rollback. Real git
repositories, real verification commands, the real graph and SQLite checkpointer."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from orchestrator.demo import DEMO_TASK, DEMO_TEST_CMD, TAPE_PATH
from orchestrator.events import read_events
from orchestrator.jobstore import JobRecord, load_job, new_job_id
from orchestrator.runner import rollback_job, run_job
from orchestrator.sim import SimConfig, SimServer, load_tape
from tests.fixtures_jobs import DEEP, FAST, quick_profiles, write_policy

ONE_STEP_PLAN = (
    '{"steps": [{"intent": "Add a slugify(text) helper to shop/text.py", '
    '"files": ["shop/text.py"]}]}'
)
SLUGIFY_EDIT = """shop/text.py
<<<<<<< SEARCH
def normalize(text: str) -> str:
=======
def slugify(text: str) -> str:
    return "-".join(text.lower().split())


def normalize(text: str) -> str:
>>>>>>> REPLACE
"""
PR_TEXT = '{"title": "Add slugify", "summary": "Adds a slugify helper."}'


def _git(cwd: str | Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout


def _job(repo: Path, policy: Path, task: str = DEMO_TASK, **fields: Any) -> JobRecord:
    job = JobRecord(job_id=new_job_id(), repo=str(repo), task=task, policy=str(policy),
                    test_cmd=DEMO_TEST_CMD, **fields)
    job.save()
    return job


def _run(job: JobRecord, resume_value: Any = None) -> JobRecord:
    return asyncio.run(run_job(job, resume_value=resume_value))


def _tape_sim(entries: list[dict[str, Any]]) -> SimServer:
    return SimServer(SimConfig(models=quick_profiles(), tape=entries))


def _base_tape(edit_entries: list[dict[str, Any]], *, plan: str = ONE_STEP_PLAN,
               pr_text: str = PR_TEXT) -> list[dict[str, Any]]:
    return [*edit_entries,
            {"match": {"model": DEEP, "contains": "REPOSITORY FILES:"}, "text": plan},
            {"match": {"model": FAST, "contains": "PR FOR TASK"}, "text": pr_text}]


def _receipts(job: JobRecord, **where: Any) -> list[Any]:
    return [r for r in job.receipts if all(getattr(r, k) == v for k, v in where.items())]


def test_happy_path_one_fast_step(tmp_path: Path, demo_repo: Path) -> None:
    tape = _base_tape([{"match": {"model": FAST, "contains": "STEP 1:"}, "text": SLUGIFY_EDIT}])
    with _tape_sim(tape).run_in_thread() as sim:
        policy = write_policy(tmp_path / "p.yaml", sim.base_url)
        job = _run(_job(demo_repo, policy, task="Add slugify"))
    assert job.status == "done", job.error
    assert [s["tier"] for s in job.steps] == ["fast"]
    edits = _receipts(job, phase="edit", kind="model_call")
    assert [(r.tier, r.served_model) for r in edits] == [("fast", FAST)]
    assert edits[0].tokens_out > 0 and edits[0].cost_usd > 0
    sha = job.steps[0]["checkpoint_sha"]
    assert "def slugify" in _git(job.worktree, "show", f"{sha}:shop/text.py")
    trailers = _git(job.worktree, "log", "-1", "--format=%(trailers)", sha)
    assert f"Tandem-Served-Model: {FAST}" in trailers and "Tandem-Tier: fast" in trailers
    assert Path(job.pr_result["bundle_dir"], "PR.md").exists()


def test_what_the_verification_writes_is_not_committed(tmp_path: Path,
                                                       demo_repo: Path) -> None:
    """The tests ran model-written code: what they write never reaches a commit (the gate
    judged only the edit); the worktree is put back and the checkpoint event says so."""
    tape = _base_tape([{"match": {"model": FAST, "contains": "STEP 1:"}, "text": SLUGIFY_EDIT}])
    writes = ("import pathlib; pathlib.Path('report.txt').write_text('generated'); "
              "p = pathlib.Path('shop/text.py'); p.write_text(p.read_text() + 'EXTRA = 1\\n')")
    with _tape_sim(tape).run_in_thread() as sim:
        policy = write_policy(tmp_path / "p.yaml", sim.base_url)
        job = _job(demo_repo, policy, task="Add slugify")
        job.test_cmd = f'{{python}} -c "{writes}"'
        job.save()
        job = _run(job)
    assert job.status == "done", job.error
    sha = job.steps[0]["checkpoint_sha"]
    text = _git(job.worktree, "show", f"{sha}:shop/text.py")
    assert "def slugify" in text and "EXTRA" not in text
    assert "report.txt" not in _git(job.worktree, "ls-tree", "-r", "--name-only", sha)
    assert _git(job.worktree, "status", "--porcelain", "--untracked-files=all") == ""
    [event] = [e for e in read_events(job.events_path) if e["type"] == "checkpoint"]
    assert sorted(w.split(":")[0] for w in event["warnings"]) == ["report.txt", "shop/text.py"]


def test_demo_gate_escalation_and_failed_verification(tmp_path: Path, demo_repo: Path,
                                                      demo_sim: SimServer) -> None:
    policy = write_policy(tmp_path / "p.yaml", demo_sim.base_url)
    job = _run(_job(demo_repo, policy))
    assert job.status == "done", job.error
    assert [s["tier"] for s in job.steps] == ["fast", "deep", "deep"]
    gate = _receipts(job, phase="gate", step=2)[0]
    assert gate.action == "escalate-redo" and gate.rule_id == "gate.sensitive-paths"
    assert job.steps[1]["rule_id"] == "gate.sensitive-paths"
    assert job.steps[2]["rule_id"] == "escalate.no-progress"
    assert any("same verification failure" in e for e in job.steps[2]["escalations"])
    # the failing fast attempts were discarded; only the deep fix was committed
    fast_edits = _receipts(job, phase="edit", step=3, tier="fast")
    assert len(fast_edits) == 2
    assert "+ 50) // 100" in _git(job.worktree, "show", "HEAD:shop/pricing.py")
    assert _git(job.worktree, "status", "--porcelain") == ""


def test_fast_review_corrects_the_auth_draft_instead_of_redoing_it(
        tmp_path: Path, demo_repo: Path, demo_sim: SimServer) -> None:
    default = _run(_job(demo_repo, write_policy(tmp_path / "d.yaml", demo_sim.base_url)))
    policy = write_policy(tmp_path / "r.yaml", demo_sim.base_url, extends="fast-review")
    job = _run(_job(demo_repo, policy))
    assert job.status == default.status == "done", job.error
    assert [s["tier"] for s in job.steps] == ["fast", "deep", "deep"]
    gate = _receipts(job, phase="gate", step=2)[0]
    assert gate.action == "escalate-review" and gate.rule_id == "gate.sensitive-paths"
    [review] = _receipts(job, phase="review", step=2)
    assert review.tier == "deep" and review.requested_model == DEEP
    assert review.rule_id == job.steps[1]["rule_id"] == "gate.sensitive-paths"
    # the fast draft was kept and corrected: no deep redo of the step
    assert _receipts(job, phase="edit", step=2, tier="deep") == []
    assert len(_receipts(job, phase="edit", step=2, tier="fast")) == 1
    # the corrections bring the step to the same code as the deep redo under default
    for path in ("shop/auth.py", "shop/api.py"):
        assert (_git(job.worktree, "show", f"{job.steps[1]['checkpoint_sha']}:{path}")
                == _git(default.worktree, "show", f"{default.steps[1]['checkpoint_sha']}:{path}"))


def _demo_answer(model: str, contains: str) -> str:
    return next(e.text or "" for e in load_tape(TAPE_PATH)
                if e.match.model == model and e.match.contains == [contains])


HEADER_PLAN = ('{"steps": [{"intent": "Let the orders API read an X-Api-Key header", '
               '"files": ["shop/api.py"]}]}')


@pytest.mark.parametrize("review", ["approve", "correction-does-not-apply"])
def test_fast_review_of_a_draft(tmp_path: Path, demo_repo: Path, review: str) -> None:
    """An approved draft is committed as the fast tier wrote it; a correction that does
    not apply sends the step to a deep redo from the last checkpoint."""
    answer = ("APPROVE\n" if review == "approve" else
              "shop/auth.py\n<<<<<<< SEARCH\nno such line\n=======\nx = 1\n>>>>>>> REPLACE\n")
    tape = _base_tape([
        {"match": {"model": DEEP, "contains": "STEP 1 REVIEW:"}, "text": answer},
        {"match": {"model": FAST, "contains": "STEP 1:"},
         "text": _demo_answer(FAST, "STEP 2:")},
        {"match": {"model": DEEP, "contains": "STEP 1:"},
         "text": _demo_answer(DEEP, "STEP 2:")},
    ], plan=HEADER_PLAN)
    with _tape_sim(tape).run_in_thread() as sim:
        policy = write_policy(tmp_path / "p.yaml", sim.base_url, extends="fast-review")
        job = _run(_job(demo_repo, policy, task="Read an X-Api-Key header"))
    assert job.status == "done", job.error
    [step] = job.steps
    assert step["rule_id"] == "gate.sensitive-paths"
    verdict = "approved the draft as written" if review == "approve" else "sent corrections"
    assert f"deep review {verdict}: gate.sensitive-paths" in step["escalations"][0]
    assert [r.tier for r in _receipts(job, phase="review")] == ["deep"]
    deep_edits = _receipts(job, phase="edit", tier="deep", kind="model_call")
    auth = _git(job.worktree, "show", "HEAD:shop/auth.py")
    assert "def key_from_headers" in auth
    if review == "approve":
        assert step["tier"] == "fast" and deep_edits == []
        assert "hmac" not in auth  # the draft as it was written
    else:
        assert step["tier"] == "deep" and len(deep_edits) == 1
        assert "review correction did not apply" in step["escalations"]
        assert "hmac.compare_digest" in auth and "x = 1" not in auth
        assert "key_from_headers(headers)" in _git(job.worktree, "show", "HEAD:shop/api.py")
    assert _git(job.worktree, "status", "--porcelain") == ""


def _user_branches(repo: Path) -> list[str]:
    refs = _git(repo, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads")
    return [line for line in refs.splitlines() if not line.startswith("refs/heads/tandem/")]


def test_user_repository_is_untouched(tmp_path: Path, demo_repo: Path,
                                      demo_sim: SimServer) -> None:
    (demo_repo / "notes.txt").write_text("user's uncommitted work\n")
    (demo_repo / "README.md").write_text("# edited by the user\n")
    _git(demo_repo, "add", "README.md")
    before = ((demo_repo / ".git" / "index").read_bytes(),
              (demo_repo / ".git" / "HEAD").read_bytes(), _git(demo_repo, "status", "--porcelain"),
              _user_branches(demo_repo))
    policy = write_policy(tmp_path / "p.yaml", demo_sim.base_url)
    job = _run(_job(demo_repo, policy))
    assert job.status == "done"
    after = ((demo_repo / ".git" / "index").read_bytes(),
             (demo_repo / ".git" / "HEAD").read_bytes(), _git(demo_repo, "status", "--porcelain"),
             _user_branches(demo_repo))
    assert after == before
    # the job's own branch is the only ref added
    assert job.branch and job.branch.startswith("tandem/")


def test_budget_pause_then_resume_with_raised_budget(tmp_path: Path, demo_repo: Path,
                                                     demo_sim: SimServer) -> None:
    policy = write_policy(tmp_path / "p.yaml", demo_sim.base_url,
                          budgets={"max_cost_usd": 0.0005})
    job = _run(_job(demo_repo, policy))
    assert job.status == "paused"
    assert "budget" in (job.pause_reason or "") and "cost_usd" in (job.pause_reason or "")
    calls_before = len(_receipts(job, kind="model_call"))
    job.overrides = ["budgets.max_cost_usd=10"]
    job = _run(job, resume_value={"note": None})
    assert job.status == "done", job.error
    assert len(job.steps) == 3
    # the calls made before the pause were not repeated
    plan_calls = _receipts(job, phase="plan", kind="model_call")
    assert len(plan_calls) == 1 and calls_before >= 1


def test_malformed_edit_is_repaired(tmp_path: Path, demo_repo: Path) -> None:
    bad = SLUGIFY_EDIT.replace("def normalize(text: str) -> str:\n=", "def normalise(x):\n=")
    tape = _base_tape([
        {"match": {"model": FAST, "contains": ["STEP 1", "could not be applied"]},
         "text": SLUGIFY_EDIT},
        {"match": {"model": FAST, "contains": "STEP 1:"}, "text": bad},
    ])
    with _tape_sim(tape).run_in_thread() as sim:
        policy = write_policy(tmp_path / "p.yaml", sim.base_url)
        job = _run(_job(demo_repo, policy, task="Add slugify"))
    assert job.status == "done", job.error
    assert [s["tier"] for s in job.steps] == ["fast"]
    assert len(_receipts(job, phase="edit", kind="model_call")) == 2
    events = (Path(job.dir) / "events.jsonl").read_text()
    assert "edit.rejected" in events and "Closest lines in shop/text.py" in events


@pytest.mark.parametrize("allowed", [False, True])
def test_served_model_mismatch(tmp_path: Path, demo_repo: Path, allowed: bool) -> None:
    tape = _base_tape([{"match": {"model": FAST, "contains": "STEP 1:"}, "text": SLUGIFY_EDIT,
                        "served_model": "gpt-4o-mini"}])
    with _tape_sim(tape).run_in_thread() as sim:
        policy = write_policy(tmp_path / "p.yaml", sim.base_url,
                              fast_extra={"allow_served_model_mismatch": allowed})
        job = _run(_job(demo_repo, policy, task="Add slugify"))
    edit = _receipts(job, phase="edit", kind="model_call")[0]
    assert (edit.requested_model, edit.served_model) == (FAST, "gpt-4o-mini")
    if allowed:
        assert job.status == "done"
    else:
        assert job.status == "paused"
        assert "gpt-4o-mini" in (job.pause_reason or "")
        assert job.steps == []


def test_each_resume_of_a_paused_node_makes_one_new_model_call(
    tmp_path: Path, demo_repo: Path
) -> None:
    """A node paused by a model failure starts again from its start on resume. It used to
    replay every earlier failed attempt first (the n-th resume paid for n+1 calls)."""
    tape = _base_tape([{"match": {"model": FAST, "contains": "STEP 1:"}, "text": SLUGIFY_EDIT,
                        "served_model": "gpt-4o-mini"}])
    with _tape_sim(tape).run_in_thread() as sim:
        policy = write_policy(tmp_path / "p.yaml", sim.base_url)
        job = _run(_job(demo_repo, policy, task="Add slugify"))
        calls = [len(_receipts(job, phase="edit", kind="model_call"))]
        for _ in range(3):
            job = _run(job, resume_value={"note": None})
            assert job.status == "paused" and "gpt-4o-mini" in (job.pause_reason or "")
            calls.append(len(_receipts(job, phase="edit", kind="model_call")))
        edit_requests = [r for r in sim.requests if r["model"] == FAST]
    assert calls == [1, 2, 3, 4]
    assert len(edit_requests) == 4 + 0  # no PR call: the step never finished
    assert job.budget["model_calls"] == 5  # the plan and four edits, each counted once


def test_rollback_then_resume_redoes_later_steps(tmp_path: Path, demo_repo: Path,
                                                 demo_sim: SimServer) -> None:
    policy = write_policy(tmp_path / "p.yaml", demo_sim.base_url)
    job = _run(_job(demo_repo, policy))
    assert job.status == "done"
    step1 = job.steps[0]["checkpoint_sha"]
    sha = asyncio.run(rollback_job(job, 1))
    assert sha == step1
    assert _git(job.worktree, "rev-parse", "HEAD").strip() == step1
    job = load_job(job.job_id)
    assert job.status == "paused"
    job = _run(job)
    assert job.status == "done", job.error
    steps = _git(job.worktree, "log", "--format=%(trailers:key=Tandem-Step,valueonly)",
                 f"{job.base_sha}..HEAD").split()
    assert steps == ["3", "2", "1"]
    assert _git(job.worktree, "rev-parse", "HEAD~2").strip() == step1


def _tandem_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a new process (same TANDEM_HOME): a restart between pause and answer."""
    import os
    import sys

    return subprocess.run([sys.executable, "-m", "orchestrator", *args], env=dict(os.environ),
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("answer", ["approve", "reject"])
def test_approval_pause_survives_restart(tmp_path: Path, demo_repo: Path,
                                         demo_sim: SimServer, answer: str) -> None:
    policy = write_policy(tmp_path / "p.yaml", demo_sim.base_url,
                          approvals={"security_sensitive": True})
    job = _run(_job(demo_repo, policy))
    assert job.status == "paused", job.error
    assert (job.pause_reason or "").startswith("approval")
    assert [s["step"] for s in job.steps] == [1]
    # a plain resume is refused: the job waits for a human decision
    refused = _tandem_cli("resume", job.job_id)
    assert refused.returncode == 2 and "tandem approve" in refused.stderr
    if answer == "approve":
        out = _tandem_cli("approve", job.job_id, "--note", "reviewed", "--json")
        assert out.returncode == 0, out.stderr
        job = load_job(job.job_id)
        assert job.status == "done"
        assert [s["tier"] for s in job.steps] == ["fast", "deep", "deep"]
        approvals = _receipts(job, phase="approval")
        assert [(a.step, a.action) for a in approvals] == [(2, "proceed")]
    else:
        out = _tandem_cli("reject", job.job_id, "--reason", "needs a security review")
        assert out.returncode == 1
        job = load_job(job.job_id)
        assert job.status == "cancelled"
        assert "needs a security review" in (job.error or "")
        assert [s["step"] for s in job.steps] == [1]
        assert _git(job.worktree, "status", "--porcelain") == ""
        assert "key_from_headers" not in _git(job.worktree, "show", "HEAD:shop/auth.py")


def test_demo_cli_json_and_bundle_applies_with_git_am(tmp_path: Path) -> None:
    """`tandem demo --json --pr bundle` (the README's first command, bundle made explicit),
    then `git am` of its bundle onto the base branch of a fresh clone gives exactly the job
    branch's tree."""
    import json
    import os
    import sys

    env = {**os.environ, "TANDEM_HOME": str(tmp_path / "home")}
    cmd = [sys.executable, "-m", "orchestrator", "demo", "--json", "--pr", "bundle", "--dir",
           str(tmp_path / "shop")]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    tiers = {r["tier"] for r in summary["receipts"] if r["phase"] == "edit"}
    assert tiers == {"fast", "deep"}
    assert len(summary["escalations"]) >= 2
    assert all(len(sha) == 40 for sha in summary["checkpoints"])
    bundle = Path(summary["pr_bundle"])
    clone = tmp_path / "clone"
    _git(tmp_path, "clone", "-q", str(tmp_path / "shop"), str(clone))
    patches = sorted(str(p) for p in (bundle / "patches").glob("*.patch"))
    assert len(patches) == 3
    _git(clone, "-c", "user.name=t", "-c", "user.email=t@e", "am", "-q", *patches)
    assert (_git(clone, "rev-parse", "HEAD^{tree}")
            == _git(summary["worktree"], "rev-parse", "HEAD^{tree}"))
    assert TAPE_PATH.exists()


def test_plan_that_never_validates_pauses_the_job(tmp_path: Path, demo_repo: Path) -> None:
    tape = [{"match": {"model": DEEP, "contains": "REPOSITORY FILES:"},
             "text": "Sure! Step one: add slugify."},
            {"match": {"model": DEEP, "contains": "REPAIR:"}, "text": '{"steps": []}'}]
    with _tape_sim(tape).run_in_thread() as sim:
        policy = write_policy(tmp_path / "p.yaml", sim.base_url)
        job = _run(_job(demo_repo, policy, task="Add slugify"))
    assert job.status == "paused"
    assert "plan did not validate after 1 repairs" in (job.pause_reason or "")
    assert len(_receipts(job, phase="plan", kind="model_call")) == 2


def test_approval_before_the_pull_request(tmp_path: Path, demo_repo: Path) -> None:
    tape = _base_tape([{"match": {"model": FAST, "contains": "STEP 1:"}, "text": SLUGIFY_EDIT}])
    with _tape_sim(tape).run_in_thread() as sim:
        policy = write_policy(tmp_path / "p.yaml", sim.base_url, approvals={"before_pr": True})
        job = _run(_job(demo_repo, policy, task="Add slugify"))
        assert job.status == "paused" and (job.pause_reason or "").startswith("approval")
        assert job.pr_result is None and len(job.steps) == 1
        job = _run(load_job(job.job_id), resume_value={"note": "no decision"})
        assert job.status == "paused"  # a plain resume is not an answer
        job = _run(load_job(job.job_id), resume_value={"approved": True, "note": "ship it"})
    assert job.status == "done"
    assert Path(job.pr_result["bundle_dir"], "PR.md").exists()
    assert [r.rule_id for r in _receipts(job, phase="approval")] == ["approvals.before_pr"]


def test_run_refuses_the_unscripted_simulator(demo_repo: Path) -> None:
    """The shipped policies point at the embedded simulator; without a tape it could only
    answer with filler text, so `tandem run` says what to do instead of starting a job."""
    out = _tandem_cli("run", str(demo_repo), "Add slugify")
    assert out.returncode == 2
    assert "sim://" in out.stderr and "--tape" in out.stderr and "Traceback" not in out.stderr
    assert "no jobs yet" in _tandem_cli("jobs").stdout


def _auth_edit(name: str) -> str:
    return (f"shop/auth.py\n<<<<<<< SEARCH\n    return API_KEYS.get(key)\n=======\n"
            f"    return API_KEYS.get(key)\n\n\ndef {name}(key: str) -> bool:\n"
            f"    return key in API_KEYS\n>>>>>>> REPLACE\n")


def test_each_gate_escalation_belongs_to_its_own_step(tmp_path: Path, demo_repo: Path) -> None:
    """Two steps whose fast drafts both trip the gate in their first edit: each step's
    record holds its own escalation only, and its own timing."""
    plan = ('{"steps": [{"intent": "Add has_key", "files": ["shop/api.py"]}, '
            '{"intent": "Add known_key", "files": ["shop/api.py"]}]}')
    tape = [{"match": {"model": FAST, "contains": "STEP 1:"}, "text": _auth_edit("has_key")},
            {"match": {"model": DEEP, "contains": "STEP 1:"}, "text": _auth_edit("has_key")},
            {"match": {"model": FAST, "contains": "STEP 2:"},
             "text": _auth_edit("known_key").replace("    return API_KEYS.get(key)\n=",
                                                     "    return key in API_KEYS\n=")},
            {"match": {"model": DEEP, "contains": "STEP 2:"},
             "text": _auth_edit("known_key").replace("    return API_KEYS.get(key)\n=",
                                                     "    return key in API_KEYS\n=")},
            {"match": {"model": DEEP, "contains": "REPOSITORY FILES:"}, "text": plan},
            {"match": {"model": FAST, "contains": "PR FOR TASK"}, "text": PR_TEXT}]
    with _tape_sim(tape).run_in_thread() as sim:
        policy = write_policy(tmp_path / "p.yaml", sim.base_url)
        job = _run(_job(demo_repo, policy, task="Two key helpers"))
    assert job.status == "done", job.error
    assert [s["tier"] for s in job.steps] == ["deep", "deep"]
    for record in job.steps:
        assert len(record["escalations"]) == 1, record["escalations"]
        assert record["escalations"][0].startswith("gate.sensitive-paths")
    from orchestrator.events import read_events

    done = [e["ts"] for e in read_events(job.events_path) if e["type"] == "checkpoint"]
    assert job.steps[1]["duration_ms"] <= (done[1] - done[0]) * 1000  # timed from its start
    assert "def known_key" in _git(job.worktree, "show", "HEAD:shop/auth.py")


def test_a_secret_in_the_plan_reaches_no_commit_or_log(
    tmp_path: Path, demo_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plan is model text, and its intents become commit subjects that may be pushed
    at once: secrets in them are redacted when the plan arrives."""
    key = "sk-proj-Qm7XvR2kLp9ZtB4wNc8Hs1Fd"
    monkeypatch.setenv("TANDEM_TEST_FAST_KEY", key)
    aws = "AKIAQ3EGUX7RW2MNZP5T"
    plan = ('{"steps": [{"intent": "Add a slugify helper (deploy key ' + aws + ', api key '
            + key + ')", "files": ["shop/text.py"]}]}')
    tape = _base_tape([{"match": {"model": FAST, "contains": "STEP 1:"}, "text": SLUGIFY_EDIT}],
                      plan=plan)
    with _tape_sim(tape).run_in_thread() as sim:
        policy = write_policy(tmp_path / "p.yaml", sim.base_url,
                              fast_extra={"api_key_env": "TANDEM_TEST_FAST_KEY"})
        job = _run(_job(demo_repo, policy, task="Add slugify"))
    assert job.status == "done", job.error
    log = _git(job.worktree, "log", "--format=%B",
               f"{job.base_sha}..{job.steps[0]['checkpoint_sha']}")
    assert "Add a slugify helper (deploy key [REDACTED:" in log
    written = [log, job.events_path.read_text(),
               *(p.read_text() for p in Path(job.pr_result["bundle_dir"]).rglob("*")
                 if p.is_file())]
    for text in written:
        assert aws not in text and key not in text


def test_a_key_the_pr_writer_repeats_is_redacted_not_a_refused_delivery(
    tmp_path: Path, demo_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job's own key (no known format: only its value tells it) written by the model
    into the PR summary is redacted; the final outgoing scan refused the whole delivery."""
    key = "plain-Wq8Lz3Rt7Yh2Kd5Nm9Xc"
    monkeypatch.setenv("TANDEM_TEST_FAST_KEY", key)
    pr_text = '{"title": "Add slugify", "summary": "Adds a slugify helper. Key: ' + key + '"}'
    tape = _base_tape([{"match": {"model": FAST, "contains": "STEP 1:"}, "text": SLUGIFY_EDIT}],
                      pr_text=pr_text)
    with _tape_sim(tape).run_in_thread() as sim:
        policy = write_policy(tmp_path / "p.yaml", sim.base_url,
                              fast_extra={"api_key_env": "TANDEM_TEST_FAST_KEY"})
        job = _run(_job(demo_repo, policy, task="Add slugify"))
    assert job.status == "done", job.error
    body = (Path(job.pr_result["bundle_dir"]) / "PR.md").read_text()
    assert "Adds a slugify helper. Key: [REDACTED" in body and key not in body


def test_a_key_printed_by_the_tests_is_kept_out_of_state_and_prompts(
    tmp_path: Path, demo_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Verification output feeds the next prompt and the job's saved state: a key in it
    (here the fast tier's own, which a test could find on the machine) is redacted."""
    key = "sk-proj-Wx4Lq8Zr2Nv6Tb1Pk9Jd3Hs7"
    monkeypatch.setenv("TANDEM_TEST_FAST_KEY", key)
    tape = _base_tape([{"match": {"contains": "STEP 1"}, "text": SLUGIFY_EDIT}])
    with _tape_sim(tape).run_in_thread() as sim:
        policy = write_policy(tmp_path / "p.yaml", sim.base_url,
                              fast_extra={"api_key_env": "TANDEM_TEST_FAST_KEY"})
        job = _job(demo_repo, policy, task="Add slugify")
        leak = tmp_path / "found-on-the-machine.txt"
        leak.write_text(f"FAILED test_x: key {key} rejected")
        job.test_cmd = f"{{python}} -c \"print(open('{leak}').read()); exit(1)\""
        job.save()
        job = _run(job)
    assert job.status == "paused", job.error
    home = Path(os.environ["TANDEM_HOME"])
    stored = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.suffix in (".sqlite", ".db") or "sqlite" in p.name for p in stored)
    for path in stored:
        assert key.encode() not in path.read_bytes(), path
    assert "key [REDACTED:" in job.events_path.read_text()  # the summary, redacted


REFUSED_KEY = "plain-Tq6Vw2Hx9Lm4Zs8Rb3Nf"
# The model names a file after the job's own key: the refusal quotes the path.
KEYED_EDIT = f"/{REFUSED_KEY}\n<<<<<<< SEARCH\n=======\nx = 1\n>>>>>>> REPLACE\n"


@pytest.mark.parametrize("case", ["escalated-then-done", "paused-on-deep", "plan"])
def test_reasons_that_quote_model_text_are_redacted_everywhere(
    case: str, tmp_path: Path, demo_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Escalation and pause reasons quote error messages, which quote the model (a refused
    path, here): the job's key in them reaches no record, state, log, commit or PR."""
    monkeypatch.setenv("TANDEM_TEST_FAST_KEY", REFUSED_KEY)
    deep_answer = SLUGIFY_EDIT if case == "escalated-then-done" else KEYED_EDIT
    plan = ('{"steps": [{"intent": "Add slugify", "files": ["/' + REFUSED_KEY + '"]}]}'
            if case == "plan" else ONE_STEP_PLAN)
    tape = _base_tape([{"match": {"model": FAST, "contains": "STEP 1"}, "text": KEYED_EDIT},
                       {"match": {"model": DEEP, "contains": "STEP 1"}, "text": deep_answer}],
                      plan=plan)
    tape.append({"match": {"model": DEEP}, "text": plan})  # the plan's repair: the same
    with _tape_sim(tape).run_in_thread() as sim:
        policy = write_policy(tmp_path / "p.yaml", sim.base_url,
                              fast_extra={"api_key_env": "TANDEM_TEST_FAST_KEY"})
        job = _run(_job(demo_repo, policy, task="Add slugify"))
    said = job.pause_reason or " ".join(job.steps[0]["escalations"])
    assert "[REDACTED:" in said, said
    if case == "escalated-then-done":
        assert job.status == "done", job.error
        body = (Path(job.pr_result["bundle_dir"]) / "PR.md").read_text()
        assert "[REDACTED:" in body
    else:
        assert job.status == "paused", job.error
    home = Path(os.environ["TANDEM_HOME"])
    for path in [p for p in home.rglob("*") if p.is_file()]:
        assert REFUSED_KEY.encode() not in path.read_bytes(), path
    assert REFUSED_KEY not in _git(demo_repo, "log", "--all", "--format=%B")


def test_git_config_written_by_the_tests_is_put_back(
    tmp_path: Path, demo_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tests run the repository's (and the model's) code: git config they write would
    make Tandem's next git calls run commands (an SSH command or a credential helper at
    the push, with the agent and credentials the tests were not given). It is put back
    before Tandem runs git again, and the event says which files."""
    home = tmp_path / "user-home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    tape = _base_tape([{"match": {"model": FAST, "contains": "STEP 1:"}, "text": SLUGIFY_EDIT}])
    with _tape_sim(tape).run_in_thread() as sim:
        policy = write_policy(tmp_path / "p.yaml", sim.base_url)
        job = _job(demo_repo, policy, task="Add slugify")
        user_branch = subprocess.run(["git", "symbolic-ref", "HEAD"], cwd=demo_repo,
                                     capture_output=True, text=True).stdout.strip()
        user_tip = subprocess.run(["git", "rev-parse", "HEAD"], cwd=demo_repo,
                                  capture_output=True, text=True).stdout.strip()
        job.test_cmd = ("sh -c 'git config core.sshCommand \"touch ssh-ran\" && "
                        "git config --global credential.helper \"!touch helper-ran\" && "
                        f"git symbolic-ref HEAD {user_branch}'")
        job.save()
        job = _run(job)
    assert job.status == "done", job.error
    # the checkpoint moved the job's branch, not the user's one HEAD had been pointed at
    assert subprocess.run(["git", "rev-parse", user_branch], cwd=demo_repo, capture_output=True,
                          text=True).stdout.strip() == user_tip
    assert job.head_sha != user_tip
    local = subprocess.run(["git", "config", "--get", "core.sshCommand"], cwd=demo_repo,
                           capture_output=True, text=True)
    assert local.returncode == 1 and local.stdout == ""  # not set
    assert not (home / ".gitconfig").exists()
    restored = [e["git_files_restored"] for e in read_events(job.events_path)
                if e["type"] == "verify" and "git_files_restored" in e]
    assert len(restored) == 1
    assert sorted(Path(p).name for p in restored[0]) == [".gitconfig", "HEAD", "config"]


def test_policy_files_written_by_the_tests_are_put_back(tmp_path: Path,
                                                       demo_repo: Path) -> None:
    """A policy the tests rewrote would point the next run's tiers (and the keys sent
    with each request) at a server of their choosing: the user's policy layer and the
    job's policy file are put back like git's configuration."""
    user_policy = Path(os.environ["TANDEM_HOME"]) / "policy.yaml"
    tape = _base_tape([{"match": {"model": FAST, "contains": "STEP 1:"}, "text": SLUGIFY_EDIT}])
    with _tape_sim(tape).run_in_thread() as sim:
        policy = write_policy(tmp_path / "p.yaml", sim.base_url)
        before = policy.read_bytes()
        job = _job(demo_repo, policy, task="Add slugify")
        evil = "tiers: {fast: {models: [{provider: chat-completions, base_url: 'http://x'}]}}"
        job.test_cmd = (f"sh -c 'echo \"{evil}\" > {user_policy} && "
                        f"echo \"{evil}\" >> {policy}'")
        job.save()
        job = _run(job)
    assert job.status == "done", job.error
    assert not user_policy.exists() and policy.read_bytes() == before
    restored = [e["git_files_restored"] for e in read_events(job.events_path)
                if e["type"] == "verify" and "git_files_restored" in e]
    assert [sorted(restored[0])] == [sorted([str(user_policy), str(policy.resolve())])]


def test_a_request_the_tape_does_not_script_pauses_the_job_at_once(
    tmp_path: Path, demo_repo: Path
) -> None:
    """A job on the embedded simulator (policy at sim://, a --tape): a request no entry
    matches is an error naming it, not filler text streamed up to the output limit (32,000
    tokens on the fast tier, 128,000 on the deep one)."""
    import time

    import yaml

    tape = tmp_path / "tape.yaml"
    tape.write_text(yaml.safe_dump({"entries": _base_tape([])}))  # no answer for step 1
    job = _job(demo_repo, Path("default"), task="Add slugify", tape=str(tape))
    start = time.monotonic()
    job = _run(job)
    assert time.monotonic() - start < 30
    assert job.status == "paused", (job.status, job.error)
    assert "no answer for this request" in (job.pause_reason or "")
    assert "STEP 1" in (job.pause_reason or "")
