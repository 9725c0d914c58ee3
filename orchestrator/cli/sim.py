"""``tandem sim``: run the simulated model provider in the foreground."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING

import click
import yaml
from pydantic import ValidationError

from orchestrator.errors import SimConfigError

if TYPE_CHECKING:
    from orchestrator.sim import SimConfig


def _load_config(path: Path | None) -> SimConfig:
    from orchestrator.sim import SimConfig

    if path is None:
        return SimConfig()
    try:
        text = path.read_text(encoding="utf-8")
        raw = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        return SimConfig.model_validate(raw or {})
    except OSError as exc:
        raise SimConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise SimConfigError(f"{path}: not a text file (expected JSON or YAML)") from exc
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise SimConfigError(f"{path}: not valid JSON/YAML: {exc}") from exc
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise SimConfigError(f"{path}: {loc}: {err['msg']}") from exc


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on; 0 picks a free one.")
@click.option("--tape", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Scripted answers (YAML or JSONL); unmatched requests get synthetic text.")
@click.option("--profile", "profiles", multiple=True, metavar="NAME:TTFT_MS:TOKENS_PER_S",
              help="Add or replace a model's speed profile (repeatable); 0 tokens/s = unpaced.")
@click.option("--api-key", default=None, help="Require this key (Bearer or x-api-key).")
@click.option("--steer", is_flag=True, help="Accept response.steer on the WebSocket.")
@click.option("--seed", type=int, default=None, help="Seed for jitter and synthetic text.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="A full simulator config (JSON or YAML); the other options override it.")
@click.option("--ready-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write {port, pid, base_url} as JSON here once accepting connections.")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Serve TLS (https/wss) with this PEM certificate (chain); needs --tls-key.")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The PEM private key of --tls-cert.")
def sim(
    host: str, port: int, tape: Path | None, profiles: tuple[str, ...], api_key: str | None,
    steer: bool, seed: int | None, config_path: Path | None, ready_file: Path | None,
    tls_cert: Path | None, tls_key: Path | None,
) -> None:
    """Run the simulated model provider: OpenAI Responses (HTTP SSE and WebSocket), Chat
    Completions and Anthropic Messages on one local port, with speed profiles per model.

    Point any OpenAI-compatible client at the printed base URL, e.g.
    OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="sim") (any key works unless
    --api-key is set); the Responses WebSocket is ws://HOST:PORT/v1/responses. Default
    models: gpt-5.3-codex-spark (fast), gpt-5.3-codex (deep), sim-bench (unpaced).
    Faults can be injected with POST /_sim/faults; GET /_sim/requests lists requests.
    With --tls-cert and --tls-key it serves https:// and wss:// instead (clients must
    trust the certificate's CA, e.g. a model entry's ca_file).
    """
    from orchestrator.sim import ModelProfile, SimServer
    from orchestrator.sim.server import bind_socket, sim_url, write_ready_file
    from orchestrator.sim.tls import check_pair, tls_pair

    tls = tls_pair(tls_cert, tls_key)  # both or neither
    if tls is not None:
        check_pair(tls)
    config = _load_config(config_path)
    updates: dict[str, object] = {"steer_supported": steer or config.steer_supported}
    if tape is not None:
        updates["tape"] = tape
    if api_key is not None:
        updates["api_key"] = api_key
    if seed is not None:
        updates["seed"] = seed
    if profiles:
        extra = [ModelProfile.parse(p) for p in profiles]
        names = {p.name for p in extra}
        updates["models"] = [m for m in config.models if m.name not in names] + extra
    config = config.model_copy(update=updates)
    server = SimServer(config)
    sock = bind_socket(host, port)
    base_url = sim_url(host, sock.getsockname()[1], tls=tls is not None)

    def ready() -> None:
        if ready_file is not None:
            write_ready_file(ready_file, sock, base_url)
        click.echo(f"tandem sim: serving {', '.join(m.name for m in config.models)}")
        click.echo(base_url)

    try:
        asyncio.run(server.serve(sock, ready, tls_cert=tls_cert, tls_key=tls_key))
    except KeyboardInterrupt:
        pass
