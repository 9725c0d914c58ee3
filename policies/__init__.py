"""Policies shipped with Tandem (YAML files beside this module)."""

from pathlib import Path

POLICY_DIR = Path(__file__).parent


def builtin_policy_path(name: str) -> Path:
    """Path of a shipped policy by name (``default``, ``strict``, ``fast-only``, ...)."""
    return POLICY_DIR / f"{name}.yaml"


def builtin_policy_names() -> list[str]:
    return sorted(p.stem for p in POLICY_DIR.glob("*.yaml"))
