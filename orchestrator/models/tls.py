"""TLS for the model clients: the one ``ssl.SSLContext`` an endpoint's ``ca_file`` asks
for, and the one message a failed TLS handshake gets (certificate problems are a setting
to fix, not "is the server running?").
"""

from __future__ import annotations

import ssl

from orchestrator.errors import ConfigError, ModelError, ModelTLSError
from orchestrator.models.mapping import at
from orchestrator.models.types import EndpointConfig

# httpx and httpcore each wrap the ssl error once; a few more links cost nothing.
_MAX_CHAIN = 8


def ssl_context(cfg: EndpointConfig) -> ssl.SSLContext | None:
    """A context trusting ``cfg.ca_file``, or None for the library's default trust store.

    Built when the client is built, so a bad file is reported before any request."""
    if cfg.ca_file is None:
        return None
    try:
        return ssl.create_default_context(cafile=cfg.ca_file)
    except ssl.SSLError as exc:
        raise ConfigError(
            f"ca_file {cfg.ca_file} for {cfg.base_url} holds no PEM certificate "
            f"({exc.reason or exc}): point ca_file at the CA certificate(s) in PEM form"
        ) from exc
    except OSError as exc:
        raise ConfigError(
            f"ca_file {cfg.ca_file} for {cfg.base_url} cannot be read "
            f"({exc.strerror or exc}): check the path in the endpoint's ca_file"
        ) from exc


def ssl_cause(exc: BaseException) -> ssl.SSLError | None:
    """The ``ssl.SSLError`` that ``exc`` is or wraps (``raise ... from``), if any."""
    seen: BaseException | None = exc
    for _ in range(_MAX_CHAIN):
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def tls_error(exc: ssl.SSLError, url: str) -> ModelError:
    """The error for a TLS handshake with ``url`` that failed with ``exc`` (not retried:
    trying again cannot change a certificate)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = exc.verify_message or exc.reason or str(exc)
        return at(ModelTLSError(
            f"TLS certificate of {url} not trusted ({reason}): check the server's certificate "
            "and the endpoint's ca_file (the CA file that signed it)"), url)
    return at(ModelTLSError(
        f"TLS handshake with {url} failed ({exc.reason or exc}): check that the server "
        "speaks TLS on that port (https/wss vs http/ws) and its certificate"), url)
