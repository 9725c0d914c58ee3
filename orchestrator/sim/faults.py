"""Pending faults, applied to the next matching request(s).

At most one fault of each kind applies to one request. ``ws_handshake_status`` is taken
at a WebSocket upgrade, ``connection_limit`` only by requests on a WebSocket, the other
kinds by any request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from orchestrator.sim.config import Fault

_HANDSHAKE_KINDS = frozenset({"ws_handshake_status"})
_WS_ONLY_KINDS = frozenset({"connection_limit"})


class FaultBook:
    def __init__(self) -> None:
        self._pending: list[list[Any]] = []  # [fault, uses left]
        self._lock = threading.Lock()

    def inject(self, fault: Fault) -> None:
        with self._lock:
            self._pending.append([fault, fault.count])

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()

    def pending(self) -> list[Fault]:
        with self._lock:
            return [f for f, _ in self._pending]

    def take_for_request(self, model: str, *, websocket: bool) -> dict[str, Fault]:
        """The faults that apply to one model request, by kind (consumes one use each)."""
        if not self._pending:  # nothing injected: no lock, no filtering
            return {}

        def wanted(f: Fault) -> bool:
            if f.kind in _HANDSHAKE_KINDS:
                return False
            if f.kind in _WS_ONLY_KINDS and not websocket:
                return False
            return f.model is None or f.model == model

        return self._take(wanted)

    def take_for_handshake(self) -> Fault | None:
        taken = self._take(lambda f: f.kind in _HANDSHAKE_KINDS)
        return taken.get("ws_handshake_status")

    def _take(self, wanted: Callable[[Fault], bool]) -> dict[str, Fault]:
        out: dict[str, Fault] = {}
        with self._lock:
            for entry in self._pending:
                fault = entry[0]
                if fault.kind in out or not wanted(fault):
                    continue
                out[fault.kind] = fault
                entry[1] -= 1
            self._pending = [e for e in self._pending if e[1] > 0]
        return out
