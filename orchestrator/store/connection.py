"""Redis clients on one bounded, shared connection pool per URL, and the one place where
redis-py errors become Tandem errors.

Every process holds at most ``max_connections`` connections per Redis URL (sync) or per
URL and event loop (asyncio); callers that would exceed it wait for a free connection
instead of opening more (``BlockingConnectionPool``).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
import redis.asyncio as aredis
from redis import exceptions as rexc

from orchestrator.errors import LeaseLost, RedisUnavailable, StoreError

DEFAULT_MAX_CONNECTIONS = 32
POOL_TIMEOUT_S = 20.0
SOCKET_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 5.0
LEASE_LOST_MARK = "TANDEM_LEASE_LOST"

_sync_pools: dict[tuple[str, int], redis.BlockingConnectionPool] = {}
_async_pools: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, int], aredis.BlockingConnectionPool]
] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def safe_url(url: str) -> str:
    """The URL without its password (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


def describe(client: Any) -> str:
    """Where a client connects, as a URL without password."""
    kwargs = getattr(getattr(client, "connection_pool", None), "connection_kwargs", {})
    if "path" in kwargs:
        return f"unix://{kwargs['path']}"
    return f"redis://{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"


def _pool_kwargs(max_connections: int) -> dict[str, Any]:
    return {
        "max_connections": max_connections,
        "timeout": POOL_TIMEOUT_S,
        "socket_timeout": SOCKET_TIMEOUT_S,
        "socket_connect_timeout": CONNECT_TIMEOUT_S,
        "health_check_interval": 30,
    }


def sync_client(url: str, *, max_connections: int = DEFAULT_MAX_CONNECTIONS) -> redis.Redis:
    """A client on this process's shared pool for ``url`` (binary responses)."""
    with _lock:
        pool = _sync_pools.get((url, max_connections))
        if pool is None:
            pool = redis.BlockingConnectionPool.from_url(url, **_pool_kwargs(max_connections))
            _sync_pools[(url, max_connections)] = pool
    return redis.Redis(connection_pool=pool)


def async_client(url: str, *, max_connections: int = DEFAULT_MAX_CONNECTIONS) -> aredis.Redis:
    """A client on the running loop's shared pool for ``url`` (binary responses)."""
    loop = asyncio.get_running_loop()
    pools = _async_pools.setdefault(loop, {})
    pool = pools.get((url, max_connections))
    if pool is None:
        pool = aredis.BlockingConnectionPool.from_url(url, **_pool_kwargs(max_connections))
        pools[(url, max_connections)] = pool
    return aredis.Redis(connection_pool=pool)


def unreachable(where: str, exc: BaseException) -> RedisUnavailable:
    return RedisUnavailable(
        f"Redis is unreachable at {where} ({type(exc).__name__}: {exc}); check that "
        "redis-server is running there and that --redis-url / TANDEM_REDIS_URL is right"
    )


def translate_error(exc: BaseException, where: str) -> Exception:
    """The Tandem error for a redis-py error (the boundary of habit 3)."""
    if isinstance(exc, rexc.ResponseError) and LEASE_LOST_MARK in str(exc):
        return LeaseLost(f"job lease lost: {exc} [{where}]")
    if isinstance(exc, rexc.ConnectionError | rexc.TimeoutError | OSError):
        return unreachable(where, exc)
    if isinstance(exc, rexc.RedisError):
        return StoreError(f"Redis error at {where}: {exc}")
    return exc  # type: ignore[return-value]


@contextlib.contextmanager
def redis_errors(where: str) -> Iterator[None]:
    """Translate redis-py errors raised inside the block."""
    try:
        yield
    except rexc.NoScriptError:
        raise
    except (rexc.RedisError, OSError) as exc:
        raise translate_error(exc, where) from exc
