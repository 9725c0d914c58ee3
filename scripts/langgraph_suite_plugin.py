"""pytest plugin for LangGraph's own test suite: puts Tandem's Redis savers into the
suite's SQLite checkpointer slots.

Loaded with ``-p langgraph_suite_plugin`` by ``scripts/langgraph-suite``; the Redis URL
comes from ``--tandem-redis-url``. The suite's fixture ids stay the same (``sqlite_aio``,
``sqlite``, ``sqlite_aes``), so the same ``-k`` selects the same tests for the built-in
saver and for ours. Each checkpointer gets its own key prefix.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import pytest
import redis
import redis.asyncio as aredis

from orchestrator.store.redis_saver import AsyncRedisSaver, RedisSaver

_url: str | None = None
_slots = "async"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tandem")
    group.addoption("--tandem-redis-url", help="Redis URL for Tandem's savers")
    group.addoption(
        "--tandem-slots",
        default="async",
        choices=["async", "all"],
        help="replace only the AsyncSqliteSaver slot, or the sync SQLite slots too",
    )


def pytest_configure(config: pytest.Config) -> None:
    global _url, _slots
    _url = config.getoption("--tandem-redis-url")
    _slots = config.getoption("--tandem-slots")
    if (suite := sys.modules.get("tests.conftest")) is not None:
        _swap(suite)


def _prefix() -> str:
    return f"lg{uuid.uuid4().hex[:12]}"


@asynccontextmanager
async def redis_aio() -> AsyncIterator[AsyncRedisSaver]:
    assert _url, "--tandem-redis-url is required"
    client = aredis.Redis.from_url(_url)
    try:
        yield AsyncRedisSaver(client, prefix=_prefix())
    finally:
        await client.aclose()


@contextmanager
def redis_sync(serde: Any = None) -> Iterator[RedisSaver]:
    assert _url, "--tandem-redis-url is required"
    client = redis.Redis.from_url(_url)
    try:
        yield RedisSaver(client, prefix=_prefix(), serde=serde)
    finally:
        client.close()


@contextmanager
def redis_sync_aes() -> Iterator[RedisSaver]:
    from langgraph.checkpoint.serde.encrypted import EncryptedSerializer

    serde = EncryptedSerializer.from_pycryptodome_aes(key=b"1234567890123456")
    with redis_sync(serde) as saver:
        yield saver


def pytest_plugin_registered(plugin: object, manager: pytest.PytestPluginManager) -> None:
    """Swap the savers when the suite's conftest is imported after configuration."""
    if _url and getattr(plugin, "__name__", "") == "tests.conftest":
        _swap(plugin)


def _swap(plugin: Any) -> None:
    plugin._checkpointer_sqlite_aio = redis_aio  # type: ignore[attr-defined]
    if _slots == "all":
        plugin._checkpointer_sqlite = redis_sync  # type: ignore[attr-defined]
        plugin._checkpointer_sqlite_aes = redis_sync_aes  # type: ignore[attr-defined]
