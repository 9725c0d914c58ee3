"""Pull requests: provenance-rich content, push, GitHub/GitLab APIs, PR bundles.

The graph's ``pr`` node and ``tandem pr`` call, in order: ``render_pr`` (title, summary
and the deterministic sections from the receipts), then ``deliver`` (secret scan, optional
squash, bundle, push, open or update the PR). Layers: ``render`` (text) · ``scan`` (secrets)
· ``gitops``/``push``/``squash``/``bundle`` (git) · ``forge``/``github``/``gitlab`` (HTTP)
· ``deliver`` (the order of it all) · ``state`` (what was delivered last time).
"""

from orchestrator.pr.bundle import write_bundle
from orchestrator.pr.deliver import deliver
from orchestrator.pr.models import (
    CheckSummary,
    DeliveryResult,
    ForgeConfig,
    PRContent,
    StepSummary,
)
from orchestrator.pr.render import render_pr
from orchestrator.pr.squash import squash_commits

__all__ = [
    "DeliveryResult",
    "ForgeConfig",
    "PRContent",
    "StepSummary",
    "CheckSummary",
    "deliver",
    "render_pr",
    "squash_commits",
    "write_bundle",
]
