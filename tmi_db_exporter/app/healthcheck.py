"""`tmi-db-exporter healthcheck`: ask the running exporter whether it answers, for Docker.

The check reads the same settings and web config as `run`, so it follows the served scheme
(https when TLS is on), the port and the address. It cannot send a password (the web config
holds only hashes), so with basic auth on it needs `/healthz` exempted (healthz_without_auth)
and says so instead of failing obscurely. When TLS requires a client certificate, no request
gets through without one: the server's TLS answer to a ClientHello is then what shows that it
is alive.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl

from tmi_db_exporter.app import tls
from tmi_db_exporter.app.webconfig import WebConfig
from tmi_db_exporter.config.settings import Settings

# Docker's HEALTHCHECK --timeout=5s kills a slower check, and with it the reason it would give.
PROBE_TIMEOUT = 4.0  # seconds
# A wildcard listen address is reached through the loopback of its family.
LOOPBACK = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}
# The first byte of a TLS record says its type (RFC 8446, 5.1).
TLS_HANDSHAKE_RECORD, TLS_ALERT_RECORD = b"\x16", b"\x15"


class Unhealthy(Exception):
    """The exporter did not answer as a live one does, or cannot be asked; the message says
    which."""


def _address(settings: Settings) -> tuple[str, int, str]:
    """Host and port to connect to, and how to show them in a URL."""
    host = LOOPBACK.get(settings.listen_address, settings.listen_address)
    shown = f"[{host}]" if ":" in host else host
    return host, settings.listen_port, f"{shown}:{settings.listen_port}"


def check_health(settings: Settings, web_config: WebConfig | None) -> str:
    """What was seen when the exporter answered; raises Unhealthy otherwise."""
    if web_config and web_config.basic_auth_users and not settings.healthz_without_auth:
        raise Unhealthy(
            f"/healthz asks for basic auth (basic_auth_users in {web_config.source}), and a "
            "health check holds no password: set healthz_without_auth: true "
            "(TMI_EXPORTER_HEALTHZ_WITHOUT_AUTH=true) to serve /healthz without it"
        )
    host, port, shown = _address(settings)
    tls_config = web_config.tls if web_config else None
    if tls_config is None:
        plain = http.client.HTTPConnection(host, port, timeout=PROBE_TIMEOUT)
        return _get_healthz(plain, f"http://{shown}/healthz")
    context = tls.probe_context(tls_config)
    if web_config is not None and web_config.requires_client_certificate:
        return _tls_answer(context, host, port, shown)
    secure = http.client.HTTPSConnection(host, port, timeout=PROBE_TIMEOUT, context=context)
    return _get_healthz(secure, f"https://{shown}/healthz")


def _get_healthz(connection: http.client.HTTPConnection, url: str) -> str:
    try:
        connection.request("GET", "/healthz")
        status = connection.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        raise Unhealthy(f"{url}: {_reason(exc)}") from None
    finally:
        connection.close()
    if status != 200:
        raise Unhealthy(f"{url} answered {status}")
    return f"{url} answered 200"


def _tls_answer(context: ssl.SSLContext, host: str, port: int, shown: str) -> str:
    """Send a ClientHello and wait for the server's first TLS record. It comes from the
    exporter's event loop, unlike a bare TCP accept, which the kernel completes even for a
    process that hangs; how the server refuses the missing client certificate afterwards (an
    alert, or a close during or after the handshake) differs by TLS version and does not
    matter here."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    session = context.wrap_bio(incoming, outgoing)
    with contextlib.suppress(ssl.SSLWantReadError):
        session.do_handshake()  # only writes the ClientHello: nothing has come in yet
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT) as connection:
            connection.sendall(outgoing.read())
            answer = connection.recv(16)
    except OSError as exc:
        raise Unhealthy(f"{shown}: {_reason(exc)}") from None
    if answer[:1] not in (TLS_HANDSHAKE_RECORD, TLS_ALERT_RECORD):
        raise Unhealthy(f"{shown}: no TLS answer to a ClientHello")
    return f"{shown} answered a TLS ClientHello (/healthz itself needs a client certificate)"


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
