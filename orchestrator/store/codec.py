"""Byte layouts of the Redis checkpoint saver: how checkpoints, blobs and writes are
framed into Redis values and hash fields. Pure functions, no I/O."""

from __future__ import annotations

import json
import struct
from typing import Any

from langgraph.checkpoint.base import WRITES_IDX_MAP, writes_sort_key

_LEN = struct.Struct(">I")

# Hash fields of a checkpoint's HASH; pending writes use ``w:`` + JSON [task_id, idx].
F_CHECKPOINT = b"checkpoint"
F_METADATA = b"metadata"
F_PARENT = b"parent"
WRITE_FIELD_PREFIX = b"w:"


def pack(*parts: bytes | str) -> bytes:
    """Length-prefixed concatenation (values may contain any byte)."""
    out = bytearray()
    for part in parts:
        raw = part.encode() if isinstance(part, str) else part
        out += _LEN.pack(len(raw))
        out += raw
    return bytes(out)


def unpack(data: bytes) -> list[bytes]:
    parts: list[bytes] = []
    pos = 0
    while pos < len(data):
        (size,) = _LEN.unpack_from(data, pos)
        pos += _LEN.size
        parts.append(data[pos : pos + size])
        pos += size
    return parts


def typed(value: tuple[str, bytes]) -> bytes:
    """Frame a serializer's ``(type, bytes)`` pair."""
    return pack(value[0], value[1])


def untyped(data: bytes) -> tuple[str, bytes]:
    kind, raw = unpack(data)
    return kind.decode(), raw


def blob_field(channel: str, version: str | int | float) -> bytes:
    """Hash field of one channel version (versions compared as their string form)."""
    return json.dumps([channel, str(version)]).encode()


def write_field(task_id: str, idx: int) -> bytes:
    return WRITE_FIELD_PREFIX + json.dumps([task_id, idx]).encode()


def write_index(channel: str, idx: int) -> int:
    """Special channels (errors, interrupts, ...) take fixed negative indexes."""
    return WRITES_IDX_MAP.get(channel, idx)


def encode_write(task_path: str, channel: str, value: tuple[str, bytes]) -> bytes:
    return pack(task_path, channel, value[0], value[1])


def decode_writes(fields: dict[bytes, bytes]) -> list[tuple[str, str, tuple[str, bytes]]]:
    """Pending writes of a checkpoint HASH as ``(task_id, channel, typed value)``, in
    ``writes_sort_key`` order: (task_path, task_id, idx)."""
    rows: list[tuple[tuple[str, str, int], str, str, tuple[str, bytes]]] = []
    for field, raw in fields.items():
        if not field.startswith(WRITE_FIELD_PREFIX):
            continue
        task_id, idx = json.loads(field[len(WRITE_FIELD_PREFIX) :])
        task_path, channel, kind, data = unpack(raw)
        key = writes_sort_key(task_path.decode(), task_id, idx)
        rows.append((key, task_id, channel.decode(), (kind.decode(), data)))
    rows.sort(key=lambda row: row[0])
    return [(task_id, channel, value) for _, task_id, channel, value in rows]


def checkpoint_ref(thread_id: str, ns: str, checkpoint_id: str) -> bytes:
    """Member of a run's SET: where one checkpoint of that run lives."""
    return json.dumps([thread_id, ns, checkpoint_id]).encode()


def parse_ref(raw: bytes) -> tuple[str, str, str]:
    thread_id, ns, checkpoint_id = json.loads(raw)
    return str(thread_id), str(ns), str(checkpoint_id)


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
