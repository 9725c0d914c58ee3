"""The per-job event log: one JSON object per line, appended and flushed as it happens.

Everything written here is redacted first (``secrets.redact``, on each string of the
event) with the values of the secret variables in use, so an API key that leaks into
model output, a test log or an error message never reaches the log. Receipts are events
of type ``receipt``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from orchestrator.receipts import Receipt

Listener = Callable[[dict[str, Any]], None]


def _redactor(known_values: Sequence[str]) -> Callable[[str], str]:
    from orchestrator.secrets import redact

    values = tuple(v for v in known_values if v)
    return lambda text: redact(text, values)


def redact_tree(value: Any, redact: Callable[[str], str]) -> Any:
    """``value`` (decoded JSON) with every string redacted on its own: a multi-line
    secret (a private key, a ``password: ...`` line) is only recognised in its text with
    real line breaks, not once ``json.dumps`` has escaped them."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_tree(k, redact): redact_tree(v, redact) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_tree(v, redact) for v in value]
    return value


class EventLog:
    """Append-only JSONL log of one job (``<home>/jobs/<job>/events.jsonl``)."""

    def __init__(self, path: Path, job_id: str, known_secrets: Sequence[str] = ()) -> None:
        self.path = path
        self.job_id = job_id
        self.redact = _redactor(known_secrets)
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []
        self._receipts: list[Receipt] | None = None  # read from the log on first use
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(event)`` for each event (live progress, Redis streams)."""
        self._listeners.append(listener)

    def emit(self, type_: str, **payload: Any) -> dict[str, Any]:
        event = {"ts": time.time(), "job_id": self.job_id, "type": type_, **payload}
        plain = json.loads(json.dumps(event, default=str, ensure_ascii=False))
        event = redact_tree(plain, self.redact)
        line = json.dumps(event, ensure_ascii=False)
        with self._lock:
            self._fh.write(line + "\n")
            self._fh.flush()
        for listener in self._listeners:
            listener(event)
        return event

    def receipt(self, receipt: Receipt) -> dict[str, Any]:
        event = self.emit("receipt", receipt=receipt.model_dump(mode="json"))
        if self._receipts is not None:
            self._receipts.append(Receipt(**event["receipt"]))  # as logged: redacted
        return event

    def receipts(self) -> list[Receipt]:
        """Every receipt of the job so far, earlier runs of a resumed job included (the
        log is read once; later receipts are kept as they are written)."""
        if self._receipts is None:
            with self._lock:
                self._fh.flush()
            self._receipts = read_receipts(self.path)
        return list(self._receipts)

    def fsync(self) -> None:
        with self._lock:
            self._fh.flush()
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        with self._lock:
            if not self._fh.closed:
                self._fh.close()


def read_events(path: Path) -> list[dict[str, Any]]:
    """All complete events of a log (a torn last line from a crash is skipped)."""
    return list(iter_events(path))


def iter_events(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.endswith("\n"):
                break
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def read_receipts(path: Path) -> list[Receipt]:
    return [Receipt(**e["receipt"]) for e in iter_events(path) if e.get("type") == "receipt"]
