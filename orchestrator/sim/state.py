"""The simulator's shared state: config, tape, pending faults, request log, stored responses.

``SimState.begin`` is the one path every model request takes: check the model, take the
faults that apply, log the request, decide the answer and build its ``Generation``.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from orchestrator.sim.brain import think
from orchestrator.sim.config import Fault, SimConfig
from orchestrator.sim.faults import FaultBook
from orchestrator.sim.generation import Generation
from orchestrator.sim.pacing import Pacer
from orchestrator.sim.prompt import Prompt
from orchestrator.sim.tape import Tape, load_tape, validate_entries

_STORED_RESPONSES_MAX = 256

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    429: "rate_limit_error",
}


class ApiError(Exception):
    """An HTTP-equivalent error to render in the endpoint's own dialect."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.retry_after_s = retry_after_s

    @property
    def error_type(self) -> str:
        return _ERROR_TYPES.get(self.status, "server_error" if self.status >= 500 else "api_error")

    def headers(self) -> dict[str, str]:
        if self.retry_after_s is None:
            return {}
        return {"retry-after": f"{self.retry_after_s:g}"}


@dataclass
class RequestInfo:
    """Where a request came from, for the request log."""

    endpoint: str
    transport: str  # "http", "sse" or "ws"
    connection_id: str
    previous_response_id: str | None = None
    stream: bool = True


def _fault_error(fault: Fault) -> ApiError:
    message = fault.message or f"simulated HTTP {fault.status}"
    code = "rate_limit_exceeded" if fault.status == 429 else None
    return ApiError(int(fault.status or 500), message, code=code, retry_after_s=fault.retry_after_s)


@dataclass
class SimState:
    config: SimConfig
    faults: FaultBook = field(default_factory=FaultBook)
    requests: list[dict[str, Any]] = field(default_factory=list)
    tape: Tape | None = None
    _stored: OrderedDict[str, dict[str, Any]] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _seq: itertools.count = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        raw = self.config.tape
        if raw is None:
            return
        entries = load_tape(raw) if not isinstance(raw, list) else validate_entries(raw)
        self.tape = Tape(entries)

    def check_model(self, model: Any) -> str:
        if not isinstance(model, str) or not model:
            raise ApiError(400, "missing required parameter: 'model'", param="model")
        if self.config.profile(model) is None:
            raise ApiError(
                404,
                f"The model '{model}' does not exist or you do not have access to it.",
                code="model_not_found",
                param="model",
            )
        return model

    def log(self, info: RequestInfo, model: str | None, n_input_items: int) -> None:
        entry = {
            "endpoint": info.endpoint,
            "transport": info.transport,
            "model": model,
            "previous_response_id": info.previous_response_id,
            "input_items": n_input_items,
            "connection_id": info.connection_id,
            "stream": info.stream,
        }
        with self._lock:
            self.requests.append(entry)

    def begin(self, prompt: Prompt, *, websocket: bool) -> Generation:
        """Faults, answer and pacing for one request (the request is already logged)."""
        faults = self.faults.take_for_request(prompt.model, websocket=websocket)
        if "http_error" in faults:
            raise _fault_error(faults["http_error"])
        if "connection_limit" in faults:
            raise ConnectionLimit()
        seed = self.config.seed * 1_000_003 + next(self._seq)
        reply = think(
            prompt, self.tape, default_tokens=self.config.default_output_tokens, seed=seed,
            synthetic=self.tape is None or self.config.unmatched == "synthetic",
        )
        if reply.source == "unmatched":
            asked = " ".join(prompt.last_user_text.split())[:80]
            raise ApiError(400, "the simulated provider's tape has no answer for this "
                                f"request; add an entry that matches it (model "
                                f"{prompt.model}, last user message {asked!r})",
                           code="no_tape_match")
        served = faults["served_model"].served_model if "served_model" in faults else None
        slow = faults.get("slow_first_token")
        profile = self.config.profile(prompt.model)
        assert profile is not None  # check_model ran first
        pacer = Pacer(profile, seed, extra_ttft_ms=(slow.delay_ms or 0.0) if slow else 0.0)
        return Generation(
            reply=reply,
            model=served or reply.served_model or prompt.model,
            pacer=pacer,
            faults=faults,
            max_output_tokens=prompt.max_output_tokens,
        )

    def store_response(self, response_id: str, items: list[dict[str, Any]]) -> None:
        """Keep a response's full input + output for HTTP ``previous_response_id``."""
        with self._lock:
            self._stored[response_id] = {"items": items}
            while len(self._stored) > _STORED_RESPONSES_MAX:
                self._stored.popitem(last=False)

    def stored_items(self, response_id: str) -> list[dict[str, Any]] | None:
        with self._lock:
            entry = self._stored.get(response_id)
        return None if entry is None else list(entry["items"])

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._stored.clear()
        self.faults.clear()
        if self.tape is not None:
            self.tape.reset()


class ConnectionLimit(Exception):  # a signal to the WebSocket transport
    """The WebSocket must report ``websocket_connection_limit_reached`` and close."""
