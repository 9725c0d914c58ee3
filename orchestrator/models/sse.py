"""A small, fast Server-Sent Events decoder: byte chunks in, ``data`` payloads out.

Only ``data:`` lines matter to the clients (every provider repeats the event name inside
the JSON), so ``event:``, ``id:``, ``retry:`` and comment lines are skipped. Lines may end
in LF or CRLF.
"""

from __future__ import annotations


class SSEDecoder:
    """Feed raw chunks; get back the complete events' data payloads (bytes)."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        buf = self._buf + chunk if self._buf else chunk
        if b"\r" in buf:
            buf = buf.replace(b"\r\n", b"\n")
        blocks = buf.split(b"\n\n")
        self._buf = blocks.pop()
        out: list[bytes] = []
        for block in blocks:
            data = _data_of(block)
            if data is not None:
                out.append(data)
        return out

    @property
    def pending(self) -> bytes:
        """Bytes of an unfinished event (non-empty at EOF means a truncated stream)."""
        return self._buf


def _data_of(block: bytes) -> bytes | None:
    if block.startswith(b"data:"):
        start = 0
    else:
        start = block.find(b"\ndata:")
        if start == -1:
            return None
        start += 1
    if block.find(b"\ndata:", start) != -1:
        return _joined_data(block)
    end = block.find(b"\n", start)
    line = block[start + 5 :] if end == -1 else block[start + 5 : end]
    return line[1:] if line[:1] == b" " else line


def _joined_data(block: bytes) -> bytes:
    parts = []
    for line in block.split(b"\n"):
        if line.startswith(b"data:"):
            value = line[5:]
            parts.append(value[1:] if value[:1] == b" " else value)
    return b"\n".join(parts)
