"""`tandem models check`: one clear line per model that cannot be used, never a traceback."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import yaml
from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.sim import SimConfig, SimServer


class _HTMLPage(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = b"<!DOCTYPE html><html>not an API</html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_models_check_names_endpoint_and_what_to_check(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CHECK_WRONG_KEY", "nope")
    monkeypatch.setenv("CHECK_RIGHT_KEY", "right-key")
    html = HTTPServer(("127.0.0.1", 0), _HTMLPage)
    threading.Thread(target=html.serve_forever, daemon=True).start()
    closed = _closed_port()
    with SimServer(SimConfig(api_key="right-key")).run_in_thread() as sim:
        policy = {
            "extends": "default",
            "tiers": {
                "fast": {"models": [
                    {"provider": "openai-ws", "base_url": sim.base_url,
                     "model": "gpt-5.3-codex-spark", "api_key_env": "CHECK_RIGHT_KEY"},
                    {"provider": "openai-responses", "base_url": f"http://127.0.0.1:{closed}/v1",
                     "model": "gpt-5.3-codex-spark", "connect_timeout_s": 2},
                    {"provider": "openai-responses", "base_url": sim.base_url,
                     "model": "gpt-5.3-codex-spark", "api_key_env": "CHECK_WRONG_KEY"},
                ]},
                "deep": {"models": [
                    {"provider": "chat-completions", "base_url": sim.base_url,
                     "model": "no-such-model", "api_key_env": "CHECK_RIGHT_KEY"},
                    {"provider": "anthropic",
                     "base_url": f"http://127.0.0.1:{html.server_address[1]}/v1",
                     "model": "claude-x", "api_key_env": "CHECK_RIGHT_KEY"},
                ]},
            },
        }
        path = tmp_path / "p.yaml"
        path.write_text(yaml.safe_dump(policy))
        result = CliRunner().invoke(cli, ["models", "check", "-p", str(path)])
    html.shutdown()
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 5 and "Traceback" not in result.output
    ok, unreachable, unauthorized, unknown, not_api = lines
    assert "ok, served gpt-5.3-codex-spark" in ok
    assert f"127.0.0.1:{closed}" in unreachable and "server is running" in unreachable
    assert "401" in unauthorized and "$CHECK_WRONG_KEY" in unauthorized
    assert "404" in unknown and "model name" in unknown
    assert "not an event stream" in not_api and "check the base URL" in not_api
