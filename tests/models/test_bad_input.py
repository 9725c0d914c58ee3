"""What a user can get wrong: each a clear one-line typed error naming the endpoint."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer, SimpleHTTPRequestHandler
from typing import Any

import pytest

from orchestrator.errors import (
    AuthenticationError,
    ModelConnectError,
    ModelNotFound,
    ModelProtocolError,
    StreamInterrupted,
)
from orchestrator.models import complete

from .conftest import PROVIDERS, request

pytestmark = pytest.mark.parametrize("provider", PROVIDERS)


class _HtmlPage(BaseHTTPRequestHandler):
    """A web server that answers every request with a 200 HTML page."""

    def _page(self) -> None:
        body = b"<html><body>It works!</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _page

    def log_message(self, *args: Any) -> None:
        pass


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def _serve(handler: type) -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


@pytest.fixture(params=[_HtmlPage, _Quiet], ids=["html-page", "file-server"])
def plain_http(request: pytest.FixtureRequest) -> Iterator[str]:
    yield from _serve(request.param)


@pytest.fixture
def not_http() -> Iterator[str]:
    """A TCP server that answers any request with a non-HTTP banner and hangs up."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def run() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(65536)
                    conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\nProtocol mismatch.\r\n")
                except OSError:
                    pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    stop.set()
    thread.join()
    listener.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text
    return text


async def test_unreachable_endpoint(make: Any, provider: str) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    client = make(provider, url, max_retries=0, ws_fallback_after_failures=99)
    with pytest.raises(ModelConnectError) as info:
        await complete(client, request())
    text = one_line(info.value)
    assert "127.0.0.1" in text and "check" in text
    assert info.value.__cause__ is not None


async def test_wrong_key(sim: Any, make: Any, provider: str) -> None:
    client = make(provider, sim.base_url, api_key="sk-wrong")
    with pytest.raises(AuthenticationError) as info:
        await complete(client, request())
    text = one_line(info.value)
    assert "401" in text and "$TEST_MODEL_KEY" in text and sim.base_url.split("//")[1] in text
    assert "sk-wrong" not in text


async def test_unknown_model(sim: Any, make: Any, provider: str) -> None:
    client = make(provider, sim.base_url)
    with pytest.raises(ModelNotFound) as info:
        await complete(client, request(model="no-such-model"))
    text = one_line(info.value)
    assert "404" in text and "model" in text


async def test_plain_http_server(plain_http: str, make: Any, provider: str) -> None:
    client = make(provider, plain_http, max_retries=0)
    with pytest.raises(ModelProtocolError) as info:
        await complete(client, request())
    text = one_line(info.value)
    assert plain_http.split("//")[1] in text and "base URL" in text


async def test_server_not_speaking_http(not_http: str, make: Any, provider: str) -> None:
    client = make(provider, not_http, max_retries=0, ws_fallback_after_failures=99)
    # Without a parsable reply, HTTP clients cannot tell a non-HTTP service from a server
    # that hung up; both messages point at the base URL.
    with pytest.raises((ModelProtocolError, StreamInterrupted)) as info:
        await complete(client, request())
    text = one_line(info.value)
    assert not_http.split("//")[1] in text and "base URL" in text


async def test_an_error_keeps_words_that_hold_a_placeholder_key(make: Any, provider: str) -> None:
    """A key is never echoed in an error, but a placeholder such as ``sim`` (what the
    gateway sends to a provider that needs none) is no key: the provider's words stay
    whole ("the simulated provider", not "the ***ulated provider")."""
    from orchestrator.errors import ModelError
    from orchestrator.sim import SimServer

    from .conftest import sim_config

    with SimServer(sim_config(unmatched="error")).run_in_thread() as sim:
        client = make(provider, sim.base_url, api_key="sim", max_retries=0)
        with pytest.raises(ModelError) as info:
            await complete(client, request("nothing scripted"))
    assert "simulated provider's tape has no answer" in one_line(info.value)
