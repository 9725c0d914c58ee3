"""Prices are integers in cents."""


def apply_discount(price_cents: int, percent: int) -> int:
    """Price after a percentage discount."""
    return price_cents * (100 - percent) // 100
