"""Where WebSocket frames end in a byte buffer (RFC 6455 §5.2), for the client's hot
path that reads a stream's frames without ``websockets``' generic parser.

A Responses stream is a burst of small unfragmented text frames; ``websockets`` turns each
into a ``Frame`` through a generator-based reader, which costs more than the JSON inside.
``frame_bounds`` only finds a frame's header, mask and payload; the caller handles the one
frame shape it expects (a final text frame without extension bits: first byte ``0x81``)
and hands every other frame, whole, to ``websockets``, which then sees a stream that was
cut exactly at frame boundaries (control frames, fragments, close, protocol errors).
"""

from __future__ import annotations

import struct

FIN_TEXT = 0x81  # FIN, no RSV bits, opcode 1 (text)
MASK_BIT = 0x80
_LEN16 = struct.Struct("!H")
_LEN64 = struct.Struct("!Q")


def frame_bounds(buf: bytes | bytearray, pos: int) -> tuple[int, int] | None:
    """``(payload_start, frame_end)`` of the frame starting at ``buf[pos]``, or None until
    all of it has arrived. A masked frame's 4-byte key sits just before ``payload_start``."""
    end = len(buf)
    if end - pos < 2:
        return None
    second = buf[pos + 1]
    size = second & 0x7F
    head = 2
    if size == 126:
        if end - pos < 4:
            return None
        size = _LEN16.unpack_from(buf, pos + 2)[0]
        head = 4
    elif size == 127:
        if end - pos < 10:
            return None
        size = _LEN64.unpack_from(buf, pos + 2)[0]
        head = 10
    if second & MASK_BIT:
        head += 4
    stop = pos + head + size
    return (pos + head, stop) if stop <= end else None
