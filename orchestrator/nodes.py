"""The graph's nodes: plain async functions of (state, runtime) returning partial updates.

Each node is wrapped by ``step_node``, the one place control-flow exceptions are caught:
a budget breach, a model provider failure or a served-model mismatch ends the node with
an update that saves what its calls cost and goes to ``hold``, where the job pauses (a
LangGraph interrupt); a resume goes back to the node that stopped, which starts again
from its start, once (so nothing before its model calls may have lasting effects);
``Escalate`` routes to the escalate node.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from agents.base import StructuredOutputError
from agents.editor import edit_request, propose_edit
from agents.planner import make_plan
from agents.pr_writer import write_pr_text
from agents.reviewer import review_draft
from orchestrator import budget
from orchestrator.errors import (
    BudgetExceeded,
    EditApplyError,
    Escalate,
    InvalidModelOutput,
    ModelError,
    UnsafePath,
)
from orchestrator.events import redact_tree
from orchestrator.jobctx import JobRuntime
from orchestrator.receipts import Receipt
from orchestrator.router import StepFacts, gate_diff, route_step
from orchestrator.security.diff import parse_diff
from orchestrator.state import JobState, StepRecord
from orchestrator.verify import run_all
from orchestrator.workspace import parse_edits

Update = dict[str, Any]
Node = Callable[[JobState, JobRuntime], Awaitable[Update]]
_MAX_FILE_CHARS = 60_000


def step_node(fn: Node) -> Callable[[JobState, Runtime[JobRuntime]], Awaitable[Update]]:
    async def wrapper(state: JobState, runtime: Runtime[JobRuntime]) -> Update:
        rt = runtime.context
        idx = state.get("step_index", 0)
        in_step = idx < len(state.get("plan", []))
        # What this node spent before it paused (a resume re-runs it from its start) is
        # spent: it is carried over from the pause, not taken from the state again.
        usage, rt.carried_usage = rt.carried_usage or state.get("usage"), None
        # The wall budget counts running time: the clock goes on from where it stopped.
        usage = budget.resume_clock(usage or budget.new_usage())
        rt.gateway.begin(usage, step=idx + 1 if in_step else None,
                         rule_id=state.get("route_rule") if in_step else None,
                         steps_done=len(state.get("steps_done", [])))
        await rt.fenced()  # a node may restore or write the worktree before anything else
        while True:
            try:
                update = await fn(state, rt)
                break
            except Escalate as exc:
                update = _escalated(state, exc)
                break
            except (BudgetExceeded, ModelError) as exc:
                # The pause is a node of its own: pausing here, inside this node, would
                # replay every earlier failed attempt of it on each resume (a paid call
                # each), as LangGraph re-runs an interrupted node from its start.
                kind = "budget" if isinstance(exc, BudgetExceeded) else "model"
                update = {"next": "hold",
                          "hold": {"kind": kind, "reason": str(exc), "node": fn.__name__}}
                break
        update["usage"] = rt.gateway.usage
        budget.stop_clock(update["usage"])
        return _redacted(update, rt)

    # Not functools.wraps: LangGraph reads the wrapper's own signature to inject `runtime`.
    wrapper.__name__ = wrapper.__qualname__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


_TEXT_KEYS = ("escalations", "observation", "gate_reasons", "approval_reasons", "hold")


def _redacted(update: Update, rt: JobRuntime) -> Update:
    """``update`` with its free texts redacted. Reasons and notes quote error messages,
    which quote model output (a refused path, a line that failed to apply): from the
    state they reach the job record, ``tandem show``, pause notifications, the next
    prompt and the PR body, so a secret in them is replaced here, once, for all nodes."""
    for key in _TEXT_KEYS:
        if update.get(key) is not None:
            update[key] = redact_tree(update[key], rt.redact)
    return update


def _escalated(state: JobState, exc: Escalate) -> Update:
    """The update that sends the step to the escalate node."""
    return {"next": "escalate", "observation": state.get("observation"),
            "route_rule": exc.rule_id or "escalate",
            "escalations": [*state.get("escalations", []), exc.reason]}


def _decision_receipt(rt: JobRuntime, state: JobState, phase: str, decision: Any) -> None:
    rt.events.receipt(Receipt(
        job_id=rt.job.job_id, step=state.get("step_index", 0) + 1, phase=phase,  # type: ignore[arg-type]
        kind="decision", tier=decision.tier, rule_id=decision.rule_id, action=decision.action,
        reasons=list(decision.reasons), features=_jsonable(decision.features),
    ))


def _jsonable(features: dict[str, Any]) -> dict[str, Any]:
    return {k: (sorted(v) if isinstance(v, set) else v) for k, v in features.items()}


def _at_top(state: JobState, rt: JobRuntime) -> bool:
    """Is the step already on the tier escalations go to (nothing left to escalate to)?"""
    return state["tier"] == rt.policy.review_tier


def _with(state: JobState, update: Update) -> JobState:
    """The state as the next node would see it after ``update``."""
    return cast(JobState, {**state, **update})


def _current(state: JobState) -> tuple[int, dict[str, Any]]:
    idx = state.get("step_index", 0)
    return idx + 1, state["plan"][idx]


# --- prepare and plan -----------------------------------------------------------------


@step_node
async def prepare(state: JobState, rt: JobRuntime) -> Update:
    rt.events.emit("job.prepared", worktree=str(rt.ws.path), branch=rt.ws.branch,
                   base_sha=rt.ws.base_sha)
    return {"base_sha": rt.ws.base_sha, "checkpoint_sha": rt.ws.base_sha, "pending_edits": [],
            "steps_done": [], "step_index": 0, "next": "plan"}


@step_node
async def plan(state: JobState, rt: JobRuntime) -> Update:
    files = rt.tracked_files()
    try:
        result = await make_plan(rt.gateway, tier=rt.policy.plan_tier, task=state["task"],
                                 repo_files=files, repairs=rt.policy.retries.plan_repairs)
    except StructuredOutputError as exc:  # pauses the job (resume asks again)
        raise InvalidModelOutput(f"the plan did not validate after "
                                 f"{rt.policy.retries.plan_repairs} repairs: {exc}") from exc
    steps = [s.model_dump() for s in result.steps]
    for step in steps:  # model text: it reaches commit messages, prompts and the PR
        step["intent"] = rt.redact(step["intent"])
    rt.events.emit("plan", steps=steps)
    return {"plan": steps, "step_index": 0, "next": "route"}


# --- one step: route, edit, gate, review, verify, escalate, checkpoint ----------------------


@step_node
async def route(state: JobState, rt: JobRuntime) -> Update:
    step_no, step = _current(state)
    facts = StepFacts(step_text=step["intent"], predicted_files=step.get("files", []),
                      context_tokens=_context_tokens(rt, step), failures=0,
                      forced_tier=state.get("forced_tier"))
    decision = route_step(rt.policy, facts)
    _decision_receipt(rt, state, "route", decision)
    rt.events.emit("step.start", step=step_no, intent=step["intent"], tier=decision.tier,
                   rule=decision.rule_id)
    fresh: Update = {"tier": decision.tier, "route_rule": decision.rule_id, "pending_edits": [],
                     "observation": None, "edit_attempts": 0, "tier_failures": 0,
                     "deep_failures": 0, "signatures": [], "escalations": [],
                     "gate_reasons": [], "verification": [], "step_started_ts": time.time(),
                     "forced_tier": None}
    if decision.action == "block":
        return {**fresh, "next": "done", "status": "failed",
                "escalations": [f"blocked by {decision.rule_id}: {'; '.join(decision.reasons)}"]}
    # A step that needs approval is still edited first: the human decides on the diff and
    # the test results, before the step is committed.
    approval = decision.action == "require-approval"
    routed: Update = {**fresh, "approval_required": approval,
                      "approval_reasons": list(decision.reasons) if approval else []}
    # The step's first edit runs in this super-step (one graph checkpoint fewer per
    # step); retries and escalations go through the edit node. Routing is pure, so a
    # crash mid-edit simply routes again on resume.
    rt.gateway.rule_id = decision.rule_id
    routed_state = _with(state, routed)
    try:
        edited = await _edit(routed_state, rt)
    except Escalate as exc:  # the new step's fields must survive the escalation
        edited = _escalated(routed_state, exc)
    return {**routed, **edited}


def _context_tokens(rt: JobRuntime, step: dict[str, Any]) -> int:
    chars = sum(len(c or "") for c in _read_files(rt, step.get("files", [])).values())
    return chars // 4


def _read_files(rt: JobRuntime, paths: list[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for rel in paths:
        try:
            out[rel] = rt.read_text(rel, max_chars=_MAX_FILE_CHARS)
        except (UnsafePath, EditApplyError):
            continue
    return out


@step_node
async def edit(state: JobState, rt: JobRuntime) -> Update:
    """Another attempt at the step: a repair, a retry or an escalated redo."""
    return await _edit(state, rt)


async def _edit(state: JobState, rt: JobRuntime) -> Update:
    step_no, step = _current(state)
    tier = state["tier"]
    files = _read_files(rt, step.get("files", []))
    turns = edit_request(task=state["task"], step_no=step_no, intent=step["intent"],
                         files=files, observation=state.get("observation"))
    text = await propose_edit(rt.gateway, tier=tier, turns=turns)
    await rt.fenced()
    try:
        rt.ws.apply_edits(parse_edits(text))
    except (EditApplyError, UnsafePath) as exc:
        attempts = state.get("edit_attempts", 0) + 1
        rt.events.emit("edit.rejected", step=step_no, tier=tier, error=str(exc))
        note = f"STEP {step_no}: your edit could not be applied: {exc}"
        if attempts <= rt.policy.retries.edit_repairs:
            return {"observation": note, "edit_attempts": attempts, "next": "edit"}
        return _failed_attempt(state, rt, f"edit did not apply on {tier}: {exc}", note)
    rt.events.emit("edit.applied", step=step_no, tier=tier)
    applied: Update = {"pending_edits": [*state.get("pending_edits", []), text],
                       "observation": None}
    # The gate runs in this super-step (one graph checkpoint fewer per edit); an edit
    # that dies before its gate decision is redone on resume, like any unfinished node.
    return {**applied, **await _gate(_with(state, applied), rt)}


@step_node
async def gate(state: JobState, rt: JobRuntime) -> Update:
    """The gate as its own node: after a reviewer's correction."""
    return await _gate(state, rt)


async def _gate(state: JobState, rt: JobRuntime) -> Update:
    diff = rt.ws.edits_diff(state["checkpoint_sha"])
    # The linter sees the whole new content of changed Python files (paths from the diff).
    parsed = parse_diff(diff)
    changed = [f.path for f in parsed.files if not f.deleted]
    files = {p: text for p in changed if p.endswith(".py")
             and (text := rt.read_text(p, max_chars=None)) is not None}
    decision = gate_diff(rt.policy, parsed, tier=state["tier"], task_text=state["task"],
                         files=files)
    _decision_receipt(rt, state, "gate", decision)
    reasons = list(decision.reasons)
    action = decision.action
    if action == "block":
        note = "Your edit was blocked and discarded: " + "; ".join(reasons)
        return _failed_attempt(state, rt, f"gate blocked: {'; '.join(reasons)}", note)
    at_top = _at_top(state, rt)
    wants_other_tier = decision.tier != state["tier"]
    if action in ("escalate-redo", "require-approval") and not at_top and wants_other_tier:
        raise Escalate("; ".join(reasons), rule_id=decision.rule_id)
    if action == "escalate-review" and not at_top:  # the review is this rule's doing
        return {"next": "review", "gate_action": action, "gate_reasons": reasons,
                "route_rule": decision.rule_id}
    update: Update = {"next": "verify", "gate_action": action, "gate_reasons": reasons}
    if action == "require-approval":
        update["approval_required"] = True
        update["approval_reasons"] = [*state.get("approval_reasons", []), *reasons]
    return update


@step_node
async def review(state: JobState, rt: JobRuntime) -> Update:
    step_no, step = _current(state)
    diff = rt.ws.diff(state["checkpoint_sha"])
    result = await review_draft(rt.gateway, tier=rt.policy.review_tier, task=state["task"],
                                step_no=step_no, intent=step["intent"], diff=diff,
                                reasons=state.get("gate_reasons", []))
    verdict = "approved the draft as written" if result.approved else "sent corrections"
    escalations = [*state.get("escalations", []), f"{rt.policy.review_tier} review {verdict}: "
                   + "; ".join(state.get("gate_reasons", []))]
    if result.approved:
        return {"next": "verify", "escalations": escalations}
    await rt.fenced()
    try:
        rt.ws.apply_edits(parse_edits(result.edits))
    except (EditApplyError, UnsafePath) as exc:
        note = f"STEP {step_no}: the reviewer's correction did not apply: {exc}"
        return {**_reset(state, rt), "next": "escalate", "observation": note,
                "escalations": [*escalations, "review correction did not apply"]}
    return {"pending_edits": [*state.get("pending_edits", []), result.edits],
            "tier": rt.policy.review_tier, "escalations": escalations, "next": "gate"}


@step_node
async def verify(state: JobState, rt: JobRuntime) -> Update:
    step_no, _ = _current(state)
    rt.ws.settle()  # the commands may run git: the last commit's index update is done
    guard = rt.ws.guard_git_files(also=rt.policy_files)
    stop = threading.Event()  # interrupted: the commands must not run on without the job
    # The output goes into the job's state, the next prompt and the step's commit: it is
    # redacted before it is cut to its tail.
    try:
        results = await rt.run_blocking(run_all, rt.verify_specs, rt.ws.path, stop,
                                        rt.redact, on_cancel=stop.set)
    finally:  # before any other git call: the commands may have rewritten git's config
        restored = [str(p) for p in guard.restore_changes()]
    await rt.fenced()  # the commands can outlast a lease; a commit or a restore follows
    summary = [r.model_dump(exclude={"output_tail"}) | {"summary": r.summary} for r in results]
    rt.events.emit("verify", step=step_no, tier=state["tier"], results=summary,
                   **({"git_files_restored": restored} if restored else {}))
    if all(r.passed for r in results):
        if state.get("approval_required"):
            return {"next": "approval", "verification": summary}
        # Committed in this super-step (one graph checkpoint fewer per step); a crash
        # after the commit is adopted on resume (``JobRuntime.sync_worktree``).
        passed: Update = {"verification": summary}
        return {**passed, **await _checkpoint(_with(state, passed), rt)}
    failed = [r for r in results if not r.passed]
    signature = "+".join(r.signature for r in failed)
    output = "\n\n".join(f"$ {r.name} -> {r.summary}\n{r.output_tail[-2500:]}" for r in failed)
    note = f"STEP {step_no}: verification failed.\n{output}"
    if signature in state.get("signatures", []):
        reason = "no progress: the same verification failure twice"
        return _failed_attempt(state, rt, reason, note, escalate_now=True, signature=signature)
    return _failed_attempt(state, rt, f"verification failed on {state['tier']}", note,
                           signature=signature)


def _reset(state: JobState, rt: JobRuntime) -> Update:
    """Discard the step's uncommitted work: back to the last checkpoint."""
    rt.ws.restore(state["checkpoint_sha"])
    return {"pending_edits": [], "edit_attempts": 0}


def _failed_attempt(
    state: JobState, rt: JobRuntime, reason: str, note: str, *, escalate_now: bool = False,
    signature: str | None = None,
) -> Update:
    """A failed attempt: retry on the same tier, escalate, or pause for a human."""
    update = _reset(state, rt)
    update["observation"] = note
    update["signatures"] = [*state.get("signatures", []), *([signature] if signature else [])]
    if not _at_top(state, rt):
        failures = state.get("tier_failures", 0) + 1
        update["tier_failures"] = failures
        if escalate_now or failures > rt.policy.retries.same_tier_verify:
            update["escalations"] = [*state.get("escalations", []), reason]
            update["route_rule"] = "escalate.no-progress" if escalate_now else "escalate.retries"
            update["next"] = "escalate"
        else:
            update["next"] = "edit"
        return update
    deep_failures = state.get("deep_failures", 0) + 1
    update["deep_failures"] = deep_failures
    if deep_failures >= rt.policy.retries.deep_failures_before_pause:
        update["next"] = "pause"
        update["escalations"] = [*state.get("escalations", []), reason]
    else:
        update["next"] = "edit"
    return update


@step_node
async def escalate(state: JobState, rt: JobRuntime) -> Update:
    reason = (state.get("escalations") or ["escalated"])[-1]
    deep = rt.policy.review_tier
    rt.events.receipt(Receipt(
        job_id=rt.job.job_id, step=state.get("step_index", 0) + 1, phase="route",
        kind="decision", tier=deep, rule_id=state.get("route_rule") or "escalate",
        action="escalate-redo", reasons=[reason],
    ))
    rt.events.emit("escalate", step=state.get("step_index", 0) + 1, to=deep, reason=reason)
    return {**_reset(state, rt), "tier": deep, "tier_failures": 0, "next": "edit",
            "observation": state.get("observation")}


async def hold(state: JobState) -> Update:
    """Where a node stopped by a budget breach or a model failure pauses the job (its
    update, with what its calls cost, is saved by then); a resume goes back to it."""
    held = state.get("hold") or {}
    interrupt(held)
    return {"hold": None, "next": held.get("node") or "route"}


@step_node
async def pause(state: JobState, rt: JobRuntime) -> Update:
    reason = (state.get("escalations") or ["deep tier failed"])[-1]
    answer = interrupt({"kind": "deep-failures", "reason": reason, "node": "pause"})
    note = answer.get("note") if isinstance(answer, dict) else None
    observation = state.get("observation") or ""
    if note:
        observation += f"\n\nA human reviewed the failures and says: {note}"
    return {"deep_failures": 0, "tier_failures": 0, "observation": observation, "next": "edit"}


@step_node
async def approval(state: JobState, rt: JobRuntime) -> Update:
    step_no, step = _current(state)
    payload = {"kind": "approval", "step": step_no, "intent": step["intent"],
               "reason": "; ".join(dict.fromkeys(state.get("approval_reasons", []))),
               "node": "approval", "diff_stat": rt.ws.diff(state["checkpoint_sha"])[:4000]}
    answer = _answer(payload)
    approved = isinstance(answer, dict) and answer.get("approved") is True
    rt.events.receipt(Receipt(
        job_id=rt.job.job_id, step=step_no, phase="approval", kind="decision",
        tier=state.get("tier"), rule_id="approval", action="proceed" if approved else "block",
        reasons=[str((answer or {}).get("note") or (answer or {}).get("reason") or "")],
    ))
    if not approved:
        _reset(state, rt)
        reason = f"step {step_no} rejected: {(answer or {}).get('reason', 'no reason given')}"
        return {"next": "done", "status": "rejected", "pending_edits": [],
                "escalations": [*state.get("escalations", []), reason]}
    return {"next": "checkpoint", "approval_required": False}


@step_node
async def checkpoint(state: JobState, rt: JobRuntime) -> Update:
    """The checkpoint as its own node: after a human approved the step."""
    return await _checkpoint(state, rt)


async def _checkpoint(state: JobState, rt: JobRuntime) -> Update:
    step_no, step = _current(state)
    # This run of the step: a step redone after a rollback has older receipts of its own.
    since = state.get("step_started_ts", 0.0)
    receipts = [r for r in rt.events_receipts()
                if r.step == step_no and r.kind == "model_call" and r.ts >= since]
    edit_calls = [r for r in receipts if r.phase in ("edit", "review")]
    last = edit_calls[-1] if edit_calls else None
    record: StepRecord = {
        "step": step_no, "intent": step["intent"], "tier": state["tier"],
        "rule_id": state.get("route_rule"), "served_model": last.served_model if last else None,
        "tokens_in": sum(r.tokens_in for r in receipts),
        "tokens_out": sum(r.tokens_out for r in receipts),
        "cost_usd": sum(r.cost_usd for r in receipts),
        "duration_ms": (time.time() - state.get("step_started_ts", time.time())) * 1000,
        "escalations": list(state.get("escalations", [])),
        "verification": list(state.get("verification", [])),
    }
    receipt = Receipt(
        job_id=rt.job.job_id, step=step_no, phase="checkpoint", kind="decision",
        tier=state["tier"], rule_id=state.get("route_rule"), action="proceed",
        requested_model=last.requested_model if last else None,
        served_model=last.served_model if last else None,
        tokens_in=record["tokens_in"], tokens_out=record["tokens_out"],
        tokens_cached=sum(r.tokens_cached for r in receipts), cost_usd=record["cost_usd"],
        reasons=list(state.get("escalations", [])),
    )
    trailers = {"Tandem-Job": rt.job.job_id, **receipt.trailers()}
    if state.get("escalations"):
        # One line: a line break inside a value would end git's trailer block.
        trailers["Tandem-Escalation"] = " ".join(" | ".join(state["escalations"]).split())[:500]
    subject = f"{rt.policy.checkpoint.message_prefix} step {step_no}: {step['intent']}"
    # The commit can be pushed at once: nothing in it may carry a secret (the intent was
    # redacted with the plan; the escalation reasons quote verification output).
    subject, trailers = rt.redact(subject), {k: rt.redact(v) for k, v in trailers.items()}
    # In a thread: the commit (and a push to the shared remote) must not stall the event
    # loop, which also serves steering and control messages.
    sha = await rt.run_blocking(rt.adopt_or_commit, state["checkpoint_sha"], step_no,
                                subject[:200], trailers)
    record["checkpoint_sha"] = sha
    rt.events.receipt(receipt.model_copy(update={"checkpoint_sha": sha}))
    done = [*state.get("steps_done", []), record]
    last_step = state.get("step_index", 0) + 1 >= len(state["plan"])
    return {"checkpoint_sha": sha, "pending_edits": [], "steps_done": done,
            "step_index": state.get("step_index", 0) + 1,
            "next": "pr" if last_step else "route"}


# --- finish ---------------------------------------------------------------------------


def _answer(payload: dict[str, Any]) -> dict[str, Any]:
    """A human's decision through a LangGraph interrupt; a plain resume is no answer."""
    answer = interrupt(payload)
    while not (isinstance(answer, dict) and "approved" in answer):
        answer = interrupt(payload)  # stay paused until approve or reject
    return answer


@step_node
async def pr(state: JobState, rt: JobRuntime) -> Update:
    if rt.policy.approvals.before_pr:
        answer = _answer({"kind": "approval", "step": None, "node": "pr",
                          "intent": "open the pull request",
                          "reason": "approvals.before_pr: the finished job waits for a human",
                          "diff_stat": rt.ws.diff(state["base_sha"])[:4000]})
        approved = answer.get("approved") is True
        rt.events.receipt(Receipt(
            job_id=rt.job.job_id, phase="approval", kind="decision", rule_id="approvals.before_pr",
            action="proceed" if approved else "block",
            reasons=[str(answer.get("note") or answer.get("reason") or "")],
        ))
        if not approved:
            reason = f"pull request rejected: {answer.get('reason', 'no reason given')}"
            return {"next": "done", "status": "rejected",
                    "escalations": [*state.get("escalations", []), reason]}
    intents = [s["intent"] for s in state["plan"]]
    text = await write_pr_text(rt.gateway, tier=rt.policy.default_tier, task=state["task"],
                               steps=intents, known_secrets=rt.known_secrets)
    result = await rt.deliver_pr(state, title=text.title, summary=text.summary)
    rt.events.emit("pr", **result)
    return {"pr": result, "next": "done", "status": "done"}
