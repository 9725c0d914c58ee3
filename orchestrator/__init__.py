"""Tandem: a hybrid model-routing agent orchestrator for code repositories."""

__version__ = "0.1.0"
