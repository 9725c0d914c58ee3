"""``GET /v1/responses`` as a WebSocket: Responses "WebSocket mode".

One ``Session`` per connection. Client frames come in the protocol's receive callback
(``ON_MESSAGE``, where the server offers it; else a reader task over ASGI ``receive``):
``response.create`` frames queue up and a worker answers them one at a time; any other
frame is handled by a task of its own. The session remembers its last
response (full input + output items) so ``previous_response_id`` can continue from it;
any other id is ``previous_response_not_found``. With steering enabled, ``response.steer``
stops the in-flight response after its current token (``response.incomplete``, reason
``steered``) and a successor starts from original input + partial output + steer input.

Where the server offers ``SEND_TEXTS``, a response's events are batched and sent together
whenever the generator is about to wait (TTFT, pacing, its periodic yield) and when it
ends or drops: an unpaced answer costs one send, a paced one still sends each token on
time. Other frames (errors, steer replies) go out at once, after anything batched.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import orjson
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from orchestrator.sim.generation import Dropped, new_id
from orchestrator.sim.http_common import check_auth, connection_id, openai_error_body
from orchestrator.sim.responses_render import Run, response_steps
from orchestrator.sim.responses_run import build_run, new_input
from orchestrator.sim.sse import json_bytes
from orchestrator.sim.state import ApiError, ConnectionLimit, RequestInfo, SimState
from orchestrator.sim.ws_protocol import MAX_QUEUED_MESSAGES, ON_MESSAGE, SEND_TEXTS, MessageTap

CONNECTION_LIMIT_MESSAGE = (
    "Responses websocket connection limit reached (60 minutes). "
    "Create a new websocket connection to continue."
)


class ResponsesWebSocket:
    """The endpoint as a plain ASGI app: Starlette's ``WebSocket`` does the handshake, the
    session then talks ASGI directly (one message per event, no per-frame state checks)."""

    def __init__(self, state: SimState) -> None:
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        websocket = WebSocket(scope, receive, send)
        state = self.state
        fault = state.faults.take_for_handshake()
        try:
            if fault is not None:
                status = int(fault.status or 503)
                raise ApiError(status, fault.message or f"simulated handshake status {status}")
            check_auth(websocket, state.config.api_key)
        except ApiError as err:
            body = openai_error_body(err)
            reply = JSONResponse(body, status_code=err.status, headers=err.headers())
            await websocket.send_denial_response(reply)
            return
        extensions = scope.get("extensions") or {}
        session = Session(state, websocket, receive, send)
        session.batching = SEND_TEXTS in extensions
        tap = extensions.get(ON_MESSAGE)
        if isinstance(tap, MessageTap):
            session.tap = tap
            tap.callback = session.on_message
        try:
            await websocket.accept()
            await session.run()
        finally:
            if session.tap is not None:
                session.tap.callback = None


class _Close(Exception):  # ends the session
    def __init__(self, abrupt: bool) -> None:
        self.abrupt = abrupt


class Session:
    def __init__(
        self, state: SimState, websocket: WebSocket, receive: Receive, send: Send
    ) -> None:
        self.state = state
        self.ws = websocket
        self._receive = receive
        self._send = send
        self.conn_id = connection_id(websocket)
        self.seq = 0
        self.send_lock = asyncio.Lock()
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.last: tuple[str, list[dict[str, Any]]] | None = None
        self.in_flight: Run | None = None
        self.steer: tuple[str, list[dict[str, Any]]] | None = None
        self.batching = False
        self._batch: list[str | bytes] = []
        self.tap: MessageTap | None = None
        self._side_tasks: set[asyncio.Future[None]] = set()

    async def run(self) -> None:
        reader = asyncio.ensure_future(self._read())
        worker = asyncio.ensure_future(self._work())
        done, pending = await asyncio.wait({reader, worker}, return_when=asyncio.FIRST_COMPLETED)
        if self.tap is not None:
            self.tap.callback = None
        for task in (*pending, *self._side_tasks):
            task.cancel()
        await asyncio.gather(reader, worker, *self._side_tasks, return_exceptions=True)
        if worker in done and not worker.cancelled():
            error = worker.exception()
            if isinstance(error, _Close) and not error.abrupt:
                await self._quietly(self.ws.close(1000))
            elif error is not None and not isinstance(error, _Close):
                raise error
        # returning without a close frame makes the server drop the TCP connection

    # --- sending -------------------------------------------------------------------

    async def send(self, event: dict[str, Any] | str, stream_id: Any = None) -> None:
        """Send one frame now (after anything batched)."""
        text = self._encode(event, stream_id)
        async with self.send_lock:
            await self._flush_locked()
            await self._send({"type": "websocket.send",
                              "text": text if isinstance(text, str) else text.decode()})

    async def flush(self) -> None:
        async with self.send_lock:
            await self._flush_locked()

    async def _flush_locked(self) -> None:
        batch = self._batch
        if batch:
            texts = batch.copy()  # the list itself stays: ``_stream`` appends to it
            batch.clear()
            await self._send({"type": SEND_TEXTS, "texts": texts})

    def _encode(self, event: dict[str, Any] | str, stream_id: Any) -> str | bytes:
        """The frame's text (UTF-8 ``bytes`` for JSON, which ``SEND_TEXTS`` takes as is)."""
        if isinstance(event, str):
            return event
        if stream_id is not None:
            event["stream_id"] = stream_id
        event["sequence_number"] = self.seq
        self.seq += 1
        return json_bytes(event)

    async def send_error(self, err: ApiError, stream_id: Any = None) -> None:
        error = openai_error_body(err)["error"]
        if err.headers():
            error["headers"] = err.headers()
        await self.send({"type": "error", "status": err.status, "error": error}, stream_id)

    @staticmethod
    async def _quietly(coro: Any) -> None:
        try:
            await coro
        except (WebSocketDisconnect, OSError, RuntimeError):
            pass

    # --- reading -------------------------------------------------------------------

    async def _read(self) -> None:
        try:
            while True:
                message = await self._receive()
                if message["type"] != "websocket.receive":
                    return  # websocket.disconnect
                text = message.get("text")
                await self._dispatch((message.get("bytes") or b"") if text is None else text)
        except (WebSocketDisconnect, OSError, RuntimeError):
            return

    def on_message(self, text: str | bytes) -> None:
        """A client message, straight from the protocol: a ``response.create`` wakes the
        worker at once; anything else (steer, errors) is handled by a task of its own."""
        frame = _frame_of(text)
        if type(frame) is dict and frame.get("type") == "response.create":
            self.queue.put_nowait(frame)
            if self.tap is not None and self.queue.qsize() >= MAX_QUEUED_MESSAGES:
                self.tap.pause_reading()
            return
        task = asyncio.ensure_future(self._dispatch(text, frame))
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    async def _dispatch(self, text: str | bytes, frame: Any = None) -> None:
        if frame is None:
            frame = _frame_of(text)
        if frame is _INVALID:
            await self.send_error(ApiError(400, "frame is not valid JSON", code="invalid_json"))
            return
        kind = frame.get("type") if isinstance(frame, dict) else None
        if kind == "response.create":
            await self.queue.put(frame)
        elif kind == "response.steer":
            await self._steer(frame)
        else:
            await self.send_error(ApiError(
                400, f"unsupported event type {kind!r}", code="unsupported_event", param="type"
            ))

    async def _steer(self, frame: dict[str, Any]) -> None:
        if not self.state.config.steer_supported:
            await self.send_error(ApiError(
                400, "response.steer is not supported by this model server",
                code="unsupported_event", param="type",
            ))
            return
        target = frame.get("previous_response_id")
        run = self.in_flight
        try:
            items = new_input(frame)
        except ApiError:
            items = []
        failure = _steer_failure(run, target, items, self.last)
        if failure is None and self.steer is not None:
            failure = "too_many_pending_steers"
        if failure is not None:
            await self.send({"type": "response.steer.failed", "error": {
                "type": "invalid_request_error", "code": failure, "message": failure},
                "steer": {"previous_response_id": target, "input": frame.get("input")}})
            return
        steer_id = new_id("steer")
        self.steer = (steer_id, items)
        await self.send({"type": "response.steer.accepted",
                         "steer": {"id": steer_id, "previous_response_id": target}})

    # --- answering -----------------------------------------------------------------

    async def _work(self) -> None:
        queue = self.queue
        while True:
            body = await queue.get()
            if self.tap is not None and queue.qsize() < MAX_QUEUED_MESSAGES:
                self.tap.resume_reading()
            await self._create(body)

    async def _create(self, body: dict[str, Any]) -> None:
        prev = body.get("previous_response_id")
        try:
            model = self.state.check_model(body.get("model"))
            n_items = len(body["input"]) if isinstance(body.get("input"), list) else 1
            self.state.log(RequestInfo("responses", "ws", self.conn_id, prev), model, n_items)
            prior = self._prior(prev)
            run, items = build_run(self.state, body, prior, websocket=True)
        except ApiError as err:
            if prev is not None:
                self.last = None  # a failed continuation evicts its parent
            await self.send_error(err, body.get("stream_id"))
            return
        except ConnectionLimit:
            await self.send_error(ApiError(
                400, CONNECTION_LIMIT_MESSAGE, code="websocket_connection_limit_reached"))
            raise _Close(abrupt=False) from None
        generate = body.get("generate", True) is not False
        await self._stream(run, items, generate=generate, stream_id=body.get("stream_id"))
        await self._successor(body, run)

    def _prior(self, prev: Any) -> list[dict[str, Any]]:
        if prev is None:
            return []
        if self.last is None or self.last[0] != prev:
            raise ApiError(
                400, f"Previous response with id '{prev}' not found.",
                code="previous_response_not_found", param="previous_response_id",
            )
        return list(self.last[1])

    async def _stream(
        self, run: Run, items: list[dict[str, Any]], *, generate: bool, stream_id: Any
    ) -> None:
        self.in_flight = run
        run.gen.stop_requested = lambda: self.steer is not None
        run.gen.pacer.before_wait = self.flush
        batch = self._batch if self.batching else None
        try:
            for step in response_steps(run, generate=generate):
                if not isinstance(step, (dict, str)):
                    await step  # a pacing wait (flushes first)
                elif batch is not None:  # sent at the next wait or at the end
                    batch.append(self._encode(step, stream_id))
                else:
                    await self.send(step, stream_id)
        except Dropped:
            await self.flush()  # what was produced before the drop still arrives
            raise _Close(abrupt=True) from None
        finally:
            self.in_flight = None
        await self.flush()
        self.last = (run.id, items + run.output)

    async def _successor(self, body: dict[str, Any], run: Run) -> None:
        """After a steered (or just finished) response, answer the queued steer input."""
        if self.steer is None:
            return
        _, steer_items = self.steer
        self.steer = None
        follow = {k: v for k, v in body.items() if k not in ("input", "generate")}
        follow.update(input=steer_items, previous_response_id=run.id)
        await self._create(follow)


_INVALID = object()


def _frame_of(text: str | bytes) -> Any:
    """The parsed JSON of a client frame, or ``_INVALID``."""
    try:
        return orjson.loads(text)
    except ValueError:  # orjson refuses NaN and lone surrogates, which the stdlib reads
        pass
    try:
        return json.loads(text)
    except ValueError:  # UnicodeDecodeError included
        return _INVALID


def _steer_failure(
    run: Run | None,
    target: Any,
    items: list[dict[str, Any]],
    last: tuple[str, list[dict[str, Any]]] | None,
) -> str | None:
    if not items or any(i.get("role", "user") != "user" for i in items):
        return "invalid_input"
    if run is None or run.id != target:
        if last is not None and last[0] == target:
            return "response_already_completed"
        return "response_not_found"
    return None
