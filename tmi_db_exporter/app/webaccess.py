"""Who may ask, per request: basic auth and the client certificate's SANs, from the web config.

bcrypt is slow on purpose, so a successful check is remembered (by a hash of the credentials)
and a scrape every few seconds costs one dictionary lookup, not a bcrypt round.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any

import bcrypt
from aiohttp import web

from tmi_db_exporter.app.webconfig import WebConfig
from tmi_db_exporter.app.webwatch import WatchedWebConfig

AUTH_CACHE_SIZE = 64
# Checked against for unknown users, so that a wrong user name costs as long as a wrong password.
_DUMMY_HASH = bcrypt.hashpw(b"unknown user", bcrypt.gensalt(rounds=10))

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BasicAuth:
    """Checks `Authorization: Basic` against the configured users."""

    def __init__(self, users: dict[str, str]) -> None:
        self.users = {user: hashed.encode() for user, hashed in users.items()}
        self._verified: dict[bytes, bool] = {}

    def _check(self, user: str, password: str) -> bool:
        hashed = self.users.get(user)
        if hashed is None:
            bcrypt.checkpw(password.encode(), _DUMMY_HASH)
            return False
        key = hashlib.sha256(hashed + b"\0" + user.encode() + b"\0" + password.encode()).digest()
        if key in self._verified:
            return True
        # Go's bcrypt writes $2y$, Python's reads $2b$: the same algorithm.
        ok = bcrypt.checkpw(password.encode(), b"$2b$" + hashed[4:])
        if ok:
            if len(self._verified) >= AUTH_CACHE_SIZE:
                self._verified.clear()
            self._verified[key] = True
        return ok

    def credentials_ok(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        try:
            decoded = base64.b64decode(header[6:], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, sep, password = decoded.partition(":")
        return bool(sep) and self._check(user, password)


def certificate_sans(peercert: dict[str, Any]) -> set[str]:
    """The SANs of a verified peer certificate, written as Go writes them (the toolkit compares
    strings): Python spells an IPv6 address in full upper case, Go compressed in lower case."""
    sans = set()
    for kind, value in peercert.get("subjectAltName", ()):
        if kind == "IP Address":
            value = ipaddress.ip_address(value.strip()).compressed
        sans.add(value)
    return sans


class WebAccess:
    """aiohttp middleware: the client certificate's SANs (403 when none is allowed), then basic
    auth (401), each when the current web config asks for it. Requests that `exempt` names skip
    basic auth only: the SAN check stands for the handshake check of the toolkit, which no
    request escapes."""

    def __init__(
        self, web_config: WatchedWebConfig, exempt: Callable[[web.Request], bool]
    ) -> None:
        self.web_config = web_config
        self.exempt = exempt
        self._auth_source: WebConfig | None = None
        self._auth = BasicAuth({})

    def _basic_auth(self, config: WebConfig) -> BasicAuth:
        """A new checker (and cache) whenever the config was read again."""
        if config is not self._auth_source:
            self._auth_source, self._auth = config, BasicAuth(config.basic_auth_users)
        return self._auth

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        config = self.web_config.config
        refusal = _certificate_refusal(request, config)
        if refusal is not None:
            return refusal
        if (
            config.basic_auth_users
            and not self.exempt(request)
            and not self._basic_auth(config).credentials_ok(request.headers.get("Authorization"))
        ):
            return web.Response(
                status=401,
                text="Unauthorized\n",
                headers={"WWW-Authenticate": 'Basic realm="tmi-db-exporter"'},
            )
        return await handler(request)


def _certificate_refusal(request: web.Request, config: WebConfig) -> web.Response | None:
    """The toolkit checks client_allowed_sans during the handshake; Python's ssl has no hook
    there, so the check runs on every request of the connection instead."""
    allowed_sans = config.tls.client_allowed_sans if config.tls else None
    if allowed_sans is None:
        return None
    peercert = request.transport.get_extra_info("peercert") if request.transport else None
    if not peercert:
        return _refusal(401, "a client certificate is required")
    if not certificate_sans(peercert) & set(allowed_sans):
        return _refusal(403, "the client certificate names no allowed SAN")
    return None


def _refusal(status: int, reason: str) -> web.Response:
    return web.Response(status=status, text=f"{reason}\n")


def response_headers(
    web_config: WatchedWebConfig,
) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """An on_response_prepare hook adding the configured headers to every response, refusals
    and streamed scrapes included."""

    async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
        for name, value in web_config.config.response_headers.items():
            response.headers[name] = value

    return add_headers
