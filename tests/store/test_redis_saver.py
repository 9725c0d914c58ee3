"""Behaviour of the Redis saver beyond the conformance suite: forks, TTL, versions,
write ordering, and the error for an unreachable Redis."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

import pytest
import redis
import redis.asyncio as aredis
from langgraph.graph import END, START, StateGraph

from orchestrator import keys
from orchestrator.errors import RedisUnavailable
from orchestrator.store.redis_saver import AsyncRedisSaver, RedisSaver, next_version


class S(TypedDict):
    items: Annotated[list[str], operator.add]


def graph() -> StateGraph:
    g = StateGraph(S)
    g.add_node("a", lambda s: {"items": ["a"]})
    g.add_node("b", lambda s: {"items": ["b"]})
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", END)
    return g


async def test_a_fork_never_changes_the_branch_it_came_from(
    async_redis: aredis.Redis, prefix: str
) -> None:
    app = graph().compile(checkpointer=AsyncRedisSaver(async_redis, prefix=prefix))
    cfg: Any = {"configurable": {"thread_id": "t1"}}
    await app.ainvoke({"items": ["start"]}, cfg, durability="sync")
    history = [s async for s in app.aget_state_history(cfg)]
    after_a = next(s for s in history if s.next == ("b",))
    before = {s.config["configurable"]["checkpoint_id"]: s.values for s in history}
    fork = await app.aupdate_state(after_a.config, {"items": ["forked"]})
    await app.ainvoke(None, fork, durability="sync")
    for cid, values in before.items():
        snap = await app.aget_state({"configurable": {"thread_id": "t1", "checkpoint_id": cid}})
        assert snap.values == values
    assert (await app.aget_state(cfg)).values["items"] == ["start", "a", "forked", "b"]


def test_ttl_expires_every_key_of_the_thread(sync_redis: redis.Redis, prefix: str) -> None:
    app = graph().compile(checkpointer=RedisSaver(sync_redis, prefix=prefix, ttl_s=60))
    app.invoke({"items": []}, {"configurable": {"thread_id": "t2"}}, durability="sync")
    thread_keys = [k for k in sync_redis.scan_iter(f"{prefix}:lg:t:*")]
    assert len(thread_keys) > 3
    assert all(0 < sync_redis.ttl(k) <= 60 for k in thread_keys)


def test_versions_are_increasing_strings_unique_per_branch() -> None:
    first = next_version(None)
    assert isinstance(first, str) and first < next_version(first)
    assert next_version(first) != next_version(first)


def test_pending_writes_come_back_in_writes_sort_key_order(
    sync_redis: redis.Redis, prefix: str
) -> None:
    from langgraph.checkpoint.base import empty_checkpoint

    saver = RedisSaver(sync_redis, prefix=prefix)
    cfg = saver.put({"configurable": {"thread_id": "t3", "checkpoint_ns": ""}},
                    empty_checkpoint(), {}, {})
    saver.put_writes(cfg, [("c", 2), ("c", 3)], "task-b", "~__pregel_pull, b")
    saver.put_writes(cfg, [("c", 1)], "task-a", "~__pregel_pull, a")
    saver.put_writes(cfg, [("c", 99)], "task-a", "~__pregel_pull, a")  # kept once
    tup = saver.get_tuple(cfg)
    assert tup is not None
    assert tup.pending_writes == [("task-a", "c", 1), ("task-b", "c", 2), ("task-b", "c", 3)]


def test_unreachable_redis_names_the_url_without_password(prefix: str) -> None:
    saver = RedisSaver("redis://:s3cret@127.0.0.1:1/0", prefix=prefix)
    with pytest.raises(RedisUnavailable) as info:
        saver.get_tuple({"configurable": {"thread_id": "x"}})
    assert "redis://:***@127.0.0.1:1/0" in str(info.value)
    assert "s3cret" not in str(info.value)
    assert keys.lg_ids(prefix, "a:b", "") != keys.lg_ids(prefix, "a", "b")
