"""The job graph: wiring only (the nodes live in ``nodes.py``).

    prepare ─► plan ─► route ─► edit ─► gate ─► verify ─► (approval) ─► checkpoint ─┐
                         ▲        ▲ │     │ │      │                                  │
                         │        │ │     │ └► review ─► (gate|verify)                │
                         │        └─┴── escalate ◄── (gate|verify)                    │
                         │                 pause ◄── verify (deep fails M times)      │
                         └──────────────────── next step ◄────────────────────────────┘
                                                last step ─► pr ─► END
    any node stopped by a budget breach or a model failure ─► hold ─► (resume) that node

Each node run is one LangGraph super-step with a durable graph checkpoint (a few ms
each), so the common path runs several stages inside one node: ``route`` makes the
step's first edit, ``edit`` ends with the gate, and ``verify`` commits the step when
its commands pass and no approval is needed. The ``gate`` and ``checkpoint`` nodes serve
the other paths (after a reviewer's correction, after a human's approval). A node is the
unit that is redone after a crash; nothing in these stages repeats a finished step.
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph

from orchestrator import nodes
from orchestrator.jobctx import JobRuntime
from orchestrator.state import JobState

NODES = ("prepare", "plan", "route", "edit", "gate", "review", "verify", "escalate",
         "pause", "hold", "approval", "checkpoint", "pr")


def _next(state: JobState) -> str:
    target = state.get("next", "done")
    return END if target == "done" else target


def build_graph() -> StateGraph[Any, Any, Any, Any]:
    graph: StateGraph[Any, Any, Any, Any] = StateGraph(JobState, context_schema=JobRuntime)
    for name in NODES:
        graph.add_node(name, getattr(nodes, name))
    graph.add_edge(START, "prepare")
    targets = {name: name for name in NODES if name != "prepare"} | {END: END}
    for name in NODES:
        graph.add_conditional_edges(name, _next, targets)  # type: ignore[arg-type]
    return graph
