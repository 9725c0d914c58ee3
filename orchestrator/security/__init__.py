"""The post-edit security gate's knowledge: diff parsing, risky-code patterns per language,
the security linter, the tighten-only rule for repository policies, and which regexes a
policy may hold (``regexes.py``, imported by ``orchestrator.policy``).

May import ``orchestrator.policy``, ``orchestrator.secrets``, ``orchestrator.config`` and
``orchestrator.errors``; never the graph or the model clients.
"""
