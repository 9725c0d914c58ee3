"""The post-edit security gate's knowledge: diff parsing, risky-code patterns per language,
the security linter, and the tighten-only rule for repository policies.

May import ``orchestrator.policy``, ``orchestrator.secrets``, ``orchestrator.config`` and
``orchestrator.errors``; never the graph or the model clients.
"""
