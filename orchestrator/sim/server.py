"""Running the simulator: in a background thread, in a subprocess, or in the foreground.

    with SimServer(cfg).run_in_thread() as sim:      # tests: shares state in-process
        client = OpenAI(base_url=sim.base_url, api_key="x")
    with SimServer.subprocess(cfg) as sim:           # benchmarks: its own process and GIL
        ...

Each takes ``tls_cert`` / ``tls_key`` (PEM files) to serve TLS instead: the URLs then
start with https:// and wss:// (``orchestrator.sim.tls.make_local_certs`` makes a pair).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from orchestrator.errors import SimConfigError
from orchestrator.sim.app import build_app
from orchestrator.sim.config import Fault, SimConfig
from orchestrator.sim.cork import CorkedHTTPProtocol
from orchestrator.sim.sse import quiet_intentional_drops
from orchestrator.sim.state import SimState
from orchestrator.sim.tls import check_pair, tls_pair
from orchestrator.sim.ws_protocol import WEBSOCKET_PROTOCOL

_READY_POLL_S = 0.01


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only then, and
    # without it every kept-alive response stalls on the client's delayed ACK (~40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SimConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.listen(128)
    sock.setblocking(False)
    return sock


class SimServer:
    """The simulated model provider (see ``orchestrator/sim/README.md``)."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        self.state = SimState(self.config)
        self.app = build_app(self.state)
        self._server: uvicorn.Server | None = None

    async def serve(
        self, sock: socket.socket, on_ready: Callable[[], None] | None = None, *,
        tls_cert: str | Path | None = None, tls_key: str | Path | None = None,
    ) -> None:
        """Serve on ``sock`` until stopped; ``on_ready`` runs once connections are accepted.

        With ``tls_cert`` and ``tls_key`` the connections are TLS; the corked transport and
        the WebSocket's direct frame writes then sit on asyncio's SSL transport (``cork.py``).
        The caller has checked the pair (``tls.check_pair``: a clear error, before any
        socket or thread).
        """
        quiet_intentional_drops()
        tls = tls_pair(tls_cert, tls_key)
        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="off",
            timeout_graceful_shutdown=1, ws_per_message_deflate=self.config.ws_deflate,
            http=CorkedHTTPProtocol, ws=WEBSOCKET_PROTOCOL,
            ssl_certfile=tls[0] if tls else None, ssl_keyfile=tls[1] if tls else None,
        )
        if tls is not None:
            config.load()
            assert config.ssl is not None
            # No TLS 1.3 session tickets: under load, the tickets sent after the handshake
            # now and then left a new connection stuck (the client waiting for the HTTP
            # answer, the server for the request), about once in a hundred connections on
            # 2 busy cores; none in 800 without them. No client here resumes a session.
            config.ssl.num_tickets = 0
        self._server = server = uvicorn.Server(config)
        task = asyncio.ensure_future(server.serve(sockets=[sock]))
        while not server.started and not task.done():
            await asyncio.sleep(_READY_POLL_S)
        if server.started and on_ready is not None:
            on_ready()
        await task

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True

    def run_in_thread(
        self, host: str = "127.0.0.1", port: int = 0, *,
        tls_cert: str | Path | None = None, tls_key: str | Path | None = None,
    ) -> ThreadedSim:
        return ThreadedSim(self, host, port, tls_pair(tls_cert, tls_key))

    @classmethod
    def subprocess(
        cls, config: SimConfig | None = None, *, host: str = "127.0.0.1",
        startup_timeout_s: float = 30.0,
        tls_cert: str | Path | None = None, tls_key: str | Path | None = None,
    ) -> SubprocessSim:
        return SubprocessSim(
            config or SimConfig(), host, startup_timeout_s, tls_pair(tls_cert, tls_key))


def sim_url(host: str, port: int, *, tls: bool = False, websocket: bool = False) -> str:
    """``http://host:port/v1`` (https, ws or wss as asked; an IPv6 host in brackets)."""
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    scheme = ("wss" if tls else "ws") if websocket else ("https" if tls else "http")
    return f"{scheme}://{where}/v1"


class _Handle:
    base_url: str
    ws_url: str

    def _set_urls(self, host: str, port: int, *, tls: bool) -> None:
        self.base_url = sim_url(host, port, tls=tls)
        self.ws_url = sim_url(host, port, tls=tls, websocket=True)


class ThreadedSim(_Handle):
    """A simulator serving from a daemon thread with its own event loop."""

    def __init__(
        self, sim: SimServer, host: str, port: int, tls: tuple[str, str] | None = None
    ) -> None:
        self.sim = sim
        self.tls = tls
        if tls is not None:
            check_pair(tls)  # here, not in the thread: a bad pair must not look like a hang
        self._sock = bind_socket(host, port)
        self._set_urls(host, self._sock.getsockname()[1], tls=tls is not None)
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="tandem-sim", daemon=True)

    def _main(self) -> None:
        cert, key = self.tls or (None, None)
        asyncio.run(self.sim.serve(self._sock, self._ready.set, tls_cert=cert, tls_key=key))

    def __enter__(self) -> ThreadedSim:
        self._thread.start()
        if not self._ready.wait(timeout=30):
            raise SimConfigError(f"simulator did not start on {self.base_url}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.sim.stop()
        self._thread.join(timeout=10)
        self._sock.close()

    def inject(self, fault: Fault) -> None:
        self.sim.state.faults.inject(fault)

    @property
    def requests(self) -> list[dict[str, Any]]:
        return list(self.sim.state.requests)

    def reset(self) -> None:
        self.sim.state.reset()


class SubprocessSim(_Handle):
    """A simulator in its own process (``python -m orchestrator.sim``)."""

    def __init__(
        self, config: SimConfig, host: str, startup_timeout_s: float,
        tls: tuple[str, str] | None = None,
    ) -> None:
        self.config = config
        self.host = host
        self.startup_timeout_s = startup_timeout_s
        self.tls = tls
        # Over TLS, the control calls trust exactly the certificate the child serves
        # (trusted as it stands, whoever signed it: it is this process's own child).
        self._control_verify: ssl.SSLContext | bool = True
        if tls is not None:
            self._control_verify = ssl.create_default_context(cafile=tls[0])
            self._control_verify.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        self._dir = tempfile.TemporaryDirectory(prefix="tandem-sim-")
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    def __enter__(self) -> SubprocessSim:
        work = Path(self._dir.name)
        (work / "config.json").write_text(self.config.model_dump_json())
        ready = work / "ready.json"
        cmd = [sys.executable, "-m", "orchestrator.sim", "--host", self.host, "--port", "0",
               "--config", str(work / "config.json"), "--ready-file", str(ready)]
        if self.tls is not None:
            cmd += ["--tls-cert", self.tls[0], "--tls-key", self.tls[1]]
        self._log = (work / "stderr.log").open("wb")
        self._proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self._log)
        deadline = time.monotonic() + self.startup_timeout_s
        while not ready.exists():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                err = (work / "stderr.log").read_text(errors="replace")
                self.__exit__()
                raise SimConfigError(f"simulator subprocess did not start: {err.strip()[-300:]}")
            time.sleep(0.02)
        info = json.loads(ready.read_text())
        self._set_urls(self.host, int(info["port"]), tls=self.tls is not None)
        self.pid = int(info["pid"])
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._log is not None:
            self._log.close()
        self._dir.cleanup()

    def _control(self, method: str, path: str, body: Any = None) -> Any:
        root = self.base_url.removesuffix("/v1")
        response = httpx.request(method, root + path, json=body, timeout=10,
                                 verify=self._control_verify)
        response.raise_for_status()
        return response.json()

    def inject(self, fault: Fault) -> None:
        self._control("POST", "/_sim/faults", fault.model_dump(exclude_none=True))

    @property
    def requests(self) -> list[dict[str, Any]]:
        return list(self._control("GET", "/_sim/requests")["requests"])

    def reset(self) -> None:
        self._control("POST", "/_sim/reset")


def write_ready_file(path: Path, sock: socket.socket, base_url: str) -> None:
    """Atomically write ``{port, pid, base_url}`` so a parent can poll for it."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    info = {"port": sock.getsockname()[1], "pid": os.getpid(), "base_url": base_url}
    tmp.write_text(json.dumps(info))
    tmp.replace(path)
