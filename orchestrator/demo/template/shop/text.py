"""Text helpers."""


def normalize(text: str) -> str:
    """Collapse runs of whitespace and strip the ends."""
    return " ".join(text.split())
