"""TLS for the simulator: checking a certificate/key pair before serving, and throwaway
local certificates (a private CA and a server certificate for 127.0.0.1, ::1 and
localhost) for tests and the transport benchmark.

``trustme`` (the ``dev`` extra) makes the certificates; it is imported only when asked.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from orchestrator.errors import SimConfigError

LOCAL_NAMES = ("127.0.0.1", "::1", "localhost")


def tls_pair(cert_file: str | Path | None, key_file: str | Path | None) -> tuple[str, str] | None:
    """``(cert, key)`` as strings, or None for plain TCP; one without the other is an error."""
    if cert_file is None and key_file is None:
        return None
    if cert_file is None or key_file is None:
        raise SimConfigError(
            "TLS needs both a certificate and its key: pass --tls-cert and --tls-key together")
    return str(cert_file), str(key_file)


def check_pair(tls: tuple[str, str]) -> None:
    """Load the certificate and key once, so a bad pair is one clear error before serving
    (not a traceback from the server's start-up, or a thread that never gets ready)."""
    cert, key = tls
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        raise SimConfigError(
            f"TLS certificate {cert} / key {key} do not load ({exc.reason or exc}): "
            "check both are PEM and that the key belongs to the certificate") from exc
    except OSError as exc:
        raise SimConfigError(
            f"TLS certificate {cert} / key {key}: cannot read ({exc.strerror or exc})") from exc


def make_local_certs(directory: str | Path) -> tuple[Path, Path, Path]:
    """Write ``ca.pem``, ``server.pem`` and ``server.key`` into ``directory``: a new private
    CA and a server certificate it signed for the loopback names. Returns the three paths
    (the CA is what clients trust: ``ca_file``)."""
    try:
        import trustme
    except ImportError as exc:
        raise SimConfigError(
            "local TLS certificates need the trustme package: install the dev extra "
            "(pip install -e '.[dev]')") from exc
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    server = ca.issue_cert(*LOCAL_NAMES)
    paths = out / "ca.pem", out / "server.pem", out / "server.key"
    ca.cert_pem.write_to_path(str(paths[0]))
    with paths[1].open("wb") as f:
        for blob in server.cert_chain_pems:
            f.write(blob.bytes())
    server.private_key_pem.write_to_path(str(paths[2]))
    return paths
