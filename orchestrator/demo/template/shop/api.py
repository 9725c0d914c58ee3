"""The orders API (framework-free for the demo)."""

from shop.auth import client_for_key


def list_orders(headers: dict[str, str]) -> tuple[int, str]:
    """Status code and body for GET /orders."""
    client = client_for_key(headers.get("Authorization", "").removeprefix("Bearer "))
    if client is None:
        return 401, "unauthorized"
    return 200, f"orders of {client}"
