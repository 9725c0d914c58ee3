"""Who may call the API."""

API_KEYS: dict[str, str] = {}


def client_for_key(key: str) -> str | None:
    """The client that owns ``key``, or None."""
    return API_KEYS.get(key)
