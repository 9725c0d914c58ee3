"""The checkpoint saver's operations, written once for both the sync and asyncio clients.

Each operation is a generator ("plan") that yields a ``Batch`` of Redis commands and is
sent back their results, or yields a finished ``CheckpointTuple`` (for ``list``). The
drivers in ``redis_saver.py`` run the batches as pipelines. All writes go through one Lua
script (``FENCED_WRITE``) that checks the job's lease first, so a write and its fencing
check are one atomic step.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    SerializerProtocol,
    get_checkpoint_id,
    get_checkpoint_metadata,
)

from orchestrator import keys
from orchestrator.store import codec

# Checks the fence (KEYS[1] must hold ARGV[1], unless ARGV[1] is empty), then runs the
# commands packed in ARGV[2..] as <argc> <cmd> <args...>. The pseudo-command
# "tandem.expire" <ttl_ms> <ids_key> <cp_prefix> <key...> pushes the expiry of the listed
# keys and of every checkpoint HASH of a thread/namespace forward.
FENCED_WRITE = """
if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('TANDEM_LEASE_LOST fencing token ' .. ARGV[1] .. ' is not current')
end
local i = 2
while i <= #ARGV do
  local argc = tonumber(ARGV[i])
  if ARGV[i + 1] == 'tandem.expire' then
    local ttl = ARGV[i + 2]
    for _, id in ipairs(redis.call('ZRANGE', ARGV[i + 3], 0, -1)) do
      redis.call('PEXPIRE', ARGV[i + 4] .. id, ttl)
    end
    for j = i + 5, i + argc do redis.call('PEXPIRE', ARGV[j], ttl) end
  else
    redis.call(unpack(ARGV, i + 1, i + argc))
  end
  i = i + argc + 1
end
return 1
"""

LIST_PAGE = 64

Command = tuple[Any, ...]


class Batch(list[Command]):
    """Commands to run in one round trip; the plan is sent their results."""


@dataclass(frozen=True)
class WriteCall:
    """One call of ``FENCED_WRITE`` (the driver fills in the fence)."""

    commands: list[Command]


Step = Batch | WriteCall | CheckpointTuple
Plan = Generator[Step, Any, Any]


def _conf(config: RunnableConfig) -> tuple[str, str, str | None]:
    c = config["configurable"]
    return str(c["thread_id"]), str(c.get("checkpoint_ns", "") or ""), get_checkpoint_id(config)


def _cfg(thread_id: str, ns: str, checkpoint_id: str) -> RunnableConfig:
    return {
        "configurable": {
            "thread_id": thread_id,
            "checkpoint_ns": ns,
            "checkpoint_id": checkpoint_id,
        }
    }


class Plans:
    """The saver's operations as plans, for one key prefix, serializer and TTL."""

    def __init__(self, prefix: str, serde: SerializerProtocol, ttl_ms: int | None) -> None:
        self.prefix = prefix
        self.serde = serde
        self.ttl_ms = ttl_ms

    # --- writes -----------------------------------------------------------------------

    def _expire(self, thread_id: str, ns: str, *extra: str) -> list[Command]:
        if not self.ttl_ms:
            return []
        p = self.prefix
        return [
            (
                "tandem.expire",
                self.ttl_ms,
                keys.lg_ids(p, thread_id, ns),
                keys.lg_checkpoint_prefix(p, thread_id, ns),
                keys.lg_namespaces(p, thread_id),
                keys.lg_ids(p, thread_id, ns),
                keys.lg_blobs(p, thread_id, ns),
                *extra,
            )
        ]

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> Plan:
        thread_id, ns, parent_id = _conf(config)
        p, cid = self.prefix, checkpoint["id"]
        stored: dict[str, Any] = dict(checkpoint)
        values: dict[str, Any] = stored.pop("channel_values")
        meta = get_checkpoint_metadata(config, metadata)
        cmds: list[Command] = [
            ("SADD", keys.lg_threads(p), thread_id),
            ("SADD", keys.lg_namespaces(p, thread_id), ns),
            ("ZADD", keys.lg_ids(p, thread_id, ns), 0, cid),
            (
                "HSET", keys.lg_checkpoint(p, thread_id, ns, cid),
                codec.F_CHECKPOINT, codec.typed(self.serde.dumps_typed(stored)),
                codec.F_METADATA, codec.typed(self.serde.dumps_typed(meta)),
                codec.F_PARENT, parent_id or "",
            ),
        ]
        blobs_key = keys.lg_blobs(p, thread_id, ns)
        for channel, version in new_versions.items():
            value = (
                self.serde.dumps_typed(values[channel]) if channel in values else ("empty", b"")
            )
            cmds.append(("HSET", blobs_key, codec.blob_field(channel, version), codec.typed(value)))
        run_keys: list[str] = []
        if run_id := meta.get("run_id"):
            run_keys.append(keys.lg_run(p, str(run_id)))
            cmds.append(("SADD", run_keys[0], codec.checkpoint_ref(thread_id, ns, cid)))
        cmds += self._expire(thread_id, ns, *run_keys)
        yield WriteCall(cmds)
        return _cfg(thread_id, ns, cid)

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str,
    ) -> Plan:
        thread_id, ns, cid = _conf(config)
        key = keys.lg_checkpoint(self.prefix, thread_id, ns, str(cid))
        cmds: list[Command] = []
        for idx, (channel, value) in enumerate(writes):
            widx = codec.write_index(channel, idx)
            # Special writes (errors, interrupts) replace; ordinary ones are kept once.
            op = "HSET" if widx < 0 else "HSETNX"
            raw = codec.encode_write(task_path, channel, self.serde.dumps_typed(value))
            cmds.append((op, key, codec.write_field(task_id, widx), raw))
        if self.ttl_ms:
            cmds.append(("PEXPIRE", key, self.ttl_ms))
        yield WriteCall(cmds)

    # --- reads ------------------------------------------------------------------------

    def _blob_values(self, versions: ChannelVersions, raw: list[bytes | None]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for channel, data in zip(versions, raw, strict=True):
            if data is None:
                continue
            kind, payload = codec.untyped(data)
            if kind != "empty":
                out[channel] = self.serde.loads_typed((kind, payload))
        return out

    def _decode(self, fields: dict[bytes, bytes]) -> tuple[dict[str, Any], Any, str]:
        stored = self.serde.loads_typed(codec.untyped(fields[codec.F_CHECKPOINT]))
        meta = self.serde.loads_typed(codec.untyped(fields[codec.F_METADATA]))
        return stored, meta, codec.text(fields.get(codec.F_PARENT, b""))

    def _blob_cmd(self, thread_id: str, ns: str, versions: ChannelVersions) -> Command:
        fields = [codec.blob_field(ch, v) for ch, v in versions.items()]
        return ("HMGET", keys.lg_blobs(self.prefix, thread_id, ns), *fields)

    def _tuple(
        self,
        where: tuple[str, str, str],
        decoded: tuple[dict[str, Any], Any, str],
        fields: dict[bytes, bytes],
        blobs: list[bytes | None],
    ) -> CheckpointTuple:
        thread_id, ns, cid = where
        stored, meta, parent = decoded
        versions = stored.get("channel_versions", {})
        checkpoint = {**stored, "channel_values": self._blob_values(versions, blobs)}
        writes = [
            (task_id, channel, self.serde.loads_typed(value))
            for task_id, channel, value in codec.decode_writes(fields)
        ]
        return CheckpointTuple(
            config=_cfg(thread_id, ns, cid),
            checkpoint=checkpoint,  # type: ignore[arg-type]
            metadata=meta,
            parent_config=_cfg(thread_id, ns, parent) if parent else None,
            pending_writes=writes,
        )

    def get_tuple(self, config: RunnableConfig) -> Plan:
        thread_id, ns, cid = _conf(config)
        if not cid:
            (latest,) = yield Batch(
                [("ZREVRANGEBYLEX", keys.lg_ids(self.prefix, thread_id, ns), "+", "-",
                  "LIMIT", 0, 1)]
            )
            if not latest:
                return None
            cid = codec.text(latest[0])
        (fields,) = yield Batch([("HGETALL", keys.lg_checkpoint(self.prefix, thread_id, ns, cid))])
        if codec.F_CHECKPOINT not in fields:
            return None
        decoded = self._decode(fields)
        versions = decoded[0].get("channel_versions", {})
        blobs: list[bytes | None] = []
        if versions:
            (blobs,) = yield Batch([self._blob_cmd(thread_id, ns, versions)])
        return self._tuple((thread_id, ns, cid), decoded, fields, blobs)

    def _candidates(
        self, config: RunnableConfig | None, before: RunnableConfig | None
    ) -> Generator[Step, Any, list[tuple[str, str, str]]]:
        """(checkpoint id, thread, ns) of every checkpoint in scope, newest first."""
        p = self.prefix
        if config is None:
            (members,) = yield Batch([("SMEMBERS", keys.lg_threads(p))])
            threads = sorted(codec.text(m) for m in members)
        else:
            threads = [str(config["configurable"]["thread_id"])]
        ns_filter = config["configurable"].get("checkpoint_ns") if config else None
        if ns_filter is not None:
            pairs = [(t, str(ns_filter)) for t in threads]
        else:
            found = yield Batch([("SMEMBERS", keys.lg_namespaces(p, t)) for t in threads])
            pairs = [(t, codec.text(ns)) for t, nss in zip(threads, found, strict=True)
                     for ns in nss]
        upper = "+"
        if before is not None and (before_id := get_checkpoint_id(before)):
            upper = "(" + before_id
        only = get_checkpoint_id(config) if config else None
        found = yield Batch(
            [("ZREVRANGEBYLEX", keys.lg_ids(p, t, ns), upper, "-") for t, ns in pairs]
        )
        out = [
            (codec.text(cid), t, ns)
            for (t, ns), ids in zip(pairs, found, strict=True)
            for cid in ids
        ]
        if only:
            out = [row for row in out if row[0] == only]
        out.sort(key=lambda row: row[0], reverse=True)
        return out

    def listing(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Plan:
        candidates = yield from self._candidates(config, before)
        remaining = limit if limit is not None else len(candidates)
        for start in range(0, len(candidates), LIST_PAGE):
            if remaining <= 0:
                return None
            page = candidates[start : start + LIST_PAGE]
            hashes = yield Batch(
                [("HGETALL", keys.lg_checkpoint(self.prefix, t, ns, cid)) for cid, t, ns in page]
            )
            hits = []
            for (cid, t, ns), fields in zip(page, hashes, strict=True):
                if codec.F_CHECKPOINT not in fields:
                    continue  # expired or deleted meanwhile
                decoded = self._decode(fields)
                if filter and any(decoded[1].get(k) != v for k, v in filter.items()):
                    continue
                hits.append(((t, ns, cid), decoded, fields))
            hits = hits[:remaining]
            remaining -= len(hits)
            blobs = yield from self._page_blobs(hits)
            for (where, decoded, fields), raw in zip(hits, blobs, strict=True):
                yield self._tuple(where, decoded, fields, raw)
        return None

    def _page_blobs(self, hits: list[Any]) -> Generator[Step, Any, list[list[bytes | None]]]:
        wanted = [(i, w, d[0].get("channel_versions", {})) for i, (w, d, _) in enumerate(hits)]
        wanted = [row for row in wanted if row[2]]
        out: list[list[bytes | None]] = [[] for _ in hits]
        if wanted:
            found = yield Batch([self._blob_cmd(w[0], w[1], v) for _, w, v in wanted])
            for (i, _, _), raw in zip(wanted, found, strict=True):
                out[i] = raw
        return out

    # --- deletion and copies ----------------------------------------------------------

    def _thread_layout(self, thread_id: str) -> Generator[Step, Any, dict[str, list[str]]]:
        """Namespace -> checkpoint ids (oldest first) of one thread."""
        (nss,) = yield Batch([("SMEMBERS", keys.lg_namespaces(self.prefix, thread_id))])
        names = sorted(codec.text(n) for n in nss)
        found = yield Batch(
            [("ZRANGE", keys.lg_ids(self.prefix, thread_id, ns), 0, -1) for ns in names]
        )
        return {ns: [codec.text(c) for c in ids] for ns, ids in zip(names, found, strict=True)}

    def _drop_thread_cmds(self, thread_id: str, layout: dict[str, list[str]]) -> list[Command]:
        p = self.prefix
        doomed = [keys.lg_namespaces(p, thread_id)]
        for ns, ids in layout.items():
            doomed += [keys.lg_ids(p, thread_id, ns), keys.lg_blobs(p, thread_id, ns)]
            doomed += [keys.lg_checkpoint(p, thread_id, ns, cid) for cid in ids]
        return [("DEL", k) for k in doomed] + [("SREM", keys.lg_threads(p), thread_id)]

    def delete_thread(self, thread_id: str) -> Plan:
        layout = yield from self._thread_layout(str(thread_id))
        yield WriteCall(self._drop_thread_cmds(str(thread_id), layout))

    def delete_for_runs(self, run_ids: Iterable[str]) -> Plan:
        run_keys = [keys.lg_run(self.prefix, str(r)) for r in run_ids]
        if not run_keys:
            return
        found = yield Batch([("SMEMBERS", k) for k in run_keys])
        cmds: list[Command] = []
        for raw in (m for members in found for m in members):
            thread_id, ns, cid = codec.parse_ref(raw)
            cmds.append(("DEL", keys.lg_checkpoint(self.prefix, thread_id, ns, cid)))
            cmds.append(("ZREM", keys.lg_ids(self.prefix, thread_id, ns), cid))
        cmds += [("DEL", k) for k in run_keys]
        yield WriteCall(cmds)

    def copy_thread(self, source: str, target: str) -> Plan:
        p = self.prefix
        layout = yield from self._thread_layout(str(source))
        cmds: list[Command] = []
        for ns, ids in layout.items():
            blobs, *hashes = yield Batch(
                [("HGETALL", keys.lg_blobs(p, source, ns))]
                + [("HGETALL", keys.lg_checkpoint(p, source, ns, cid)) for cid in ids]
            )
            cmds += [("SADD", keys.lg_threads(p), target),
                     ("SADD", keys.lg_namespaces(p, target), ns)]
            cmds += [("HSET", keys.lg_blobs(p, target, ns), f, v) for f, v in blobs.items()]
            for cid, fields in zip(ids, hashes, strict=True):
                cmds += self._copy_checkpoint_cmds(target, ns, cid, fields)
            cmds += self._expire(target, ns)
        if cmds:
            yield WriteCall(cmds)

    def _copy_checkpoint_cmds(
        self, target: str, ns: str, cid: str, fields: dict[bytes, bytes]
    ) -> list[Command]:
        if codec.F_CHECKPOINT not in fields:
            return []
        key = keys.lg_checkpoint(self.prefix, target, ns, cid)
        cmds: list[Command] = [("ZADD", keys.lg_ids(self.prefix, target, ns), 0, cid)]
        cmds += [("HSET", key, f, v) for f, v in fields.items()]
        meta = self._decode(fields)[1]
        if run_id := meta.get("run_id"):
            ref = codec.checkpoint_ref(target, ns, cid)
            cmds.append(("SADD", keys.lg_run(self.prefix, str(run_id)), ref))
        return cmds

    def prune(self, thread_ids: Sequence[str], strategy: str) -> Plan:
        for thread_id in thread_ids:
            layout = yield from self._thread_layout(str(thread_id))
            if strategy == "delete":
                yield WriteCall(self._drop_thread_cmds(str(thread_id), layout))
                continue
            for ns, ids in layout.items():
                if len(ids) > 1:
                    yield from self._keep_latest(str(thread_id), ns, ids)

    def _keep_latest(self, thread_id: str, ns: str, ids: list[str]) -> Plan:
        """Drop all but the newest checkpoint of a namespace, and the blobs only they use.

        A thread that uses delta channels keeps the newest checkpoint's whole ancestry:
        its state is rebuilt by replaying the writes stored along that chain.
        """
        p = self.prefix
        keep = {ids[-1]}
        (fields,) = yield Batch([("HGETALL", keys.lg_checkpoint(p, thread_id, ns, ids[-1]))])
        stored, meta, parent = self._decode(fields)
        if meta.get("counters_since_delta_snapshot"):
            keep |= yield from self._ancestors(thread_id, ns, parent)
        versions = dict(stored.get("channel_versions", {}))
        (blob_fields,) = yield Batch([("HKEYS", keys.lg_blobs(p, thread_id, ns))])
        wanted = {codec.blob_field(ch, v) for ch, v in versions.items()}
        cmds: list[Command] = [
            ("DEL", keys.lg_checkpoint(p, thread_id, ns, cid)) for cid in ids if cid not in keep
        ]
        cmds += [("ZREM", keys.lg_ids(p, thread_id, ns), cid) for cid in ids if cid not in keep]
        if len(keep) == 1:
            cmds += [("HDEL", keys.lg_blobs(p, thread_id, ns), f)
                     for f in blob_fields if f not in wanted]
        yield WriteCall(cmds)

    def _ancestors(self, thread_id: str, ns: str, parent: str) -> Generator[Step, Any, set[str]]:
        out: set[str] = set()
        while parent and parent not in out:
            out.add(parent)
            (fields,) = yield Batch(
                [("HGET", keys.lg_checkpoint(self.prefix, thread_id, ns, parent), codec.F_PARENT)]
            )
            parent = codec.text(fields or b"")
        return out
