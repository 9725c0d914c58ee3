"""A small, fast Server-Sent Events decoder: byte chunks in, ``data`` payloads out.

Only ``data:`` lines matter to the clients (every provider repeats the event name inside
the JSON), so ``event:``, ``id:``, ``retry:`` and comment lines are skipped. Lines may end
in LF or CRLF.

An event that has not ended yet is kept in one growing buffer that is searched only where
new bytes arrived (linear in the event's size, however it is cut into chunks), and no
longer than ``MAX_EVENT_BYTES``: a server that never ends an event gets
``EventTooLarge`` instead of all the memory.
"""

from __future__ import annotations

MAX_EVENT_BYTES = 32 * 1024 * 1024


class EventTooLarge(ValueError):
    """One event grew past ``MAX_EVENT_BYTES`` without ending."""


class SSEDecoder:
    """Feed raw chunks; get back the complete events' data payloads (bytes)."""

    __slots__ = ("_buf", "_max")

    def __init__(self, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self._buf = bytearray()
        self._max = max_event_bytes

    def feed(self, chunk: bytes) -> list[bytes]:
        if self._buf:
            # An event is pending: look for its end only around the new bytes.
            start = max(len(self._buf) - 3, 0)
            self._buf += chunk
            if (self._buf.find(b"\n\n", start) == -1
                    and self._buf.find(b"\n\r\n", start) == -1):
                if len(self._buf) > self._max:
                    raise EventTooLarge(
                        f"an event over {self._max // (1024 * 1024)} MiB without its end")
                return []
            buf = bytes(self._buf)
            self._buf.clear()
        else:
            buf = chunk
        if b"\r" in buf:
            buf = buf.replace(b"\r\n", b"\n")
        blocks = buf.split(b"\n\n")
        rest = blocks.pop()
        if rest:
            if len(rest) > self._max:
                raise EventTooLarge(
                    f"an event over {self._max // (1024 * 1024)} MiB without its end")
            self._buf += rest
        out: list[bytes] = []
        for block in blocks:
            data = _data_of(block)
            if data is not None:
                out.append(data)
        return out

    @property
    def pending_size(self) -> int:
        """How many bytes of an unfinished event are held."""
        return len(self._buf)

    @property
    def pending(self) -> bytes:
        """Bytes of an unfinished event (non-empty at EOF means a truncated stream)."""
        return bytes(self._buf)


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
