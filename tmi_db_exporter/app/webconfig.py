"""TLS and basic auth for every endpoint, from a Prometheus exporter-toolkit web config file.

Operators already write this file for node_exporter and friends, so the same file works here:

    tls_server_config:
      cert_file: /etc/tmi-db-exporter/server.crt
      key_file: /etc/tmi-db-exporter/server.key
      client_ca_file: /etc/tmi-db-exporter/ca.crt          # optional
      client_auth_type: RequireAndVerifyClientCert          # optional
      min_version: TLS12                                    # optional
    basic_auth_users:
      prometheus: $2y$10$...                                # bcrypt hash, never the password

bcrypt is slow on purpose, so a successful check is remembered (by a hash of the credentials)
and a scrape every few seconds costs one dictionary lookup, not a bcrypt round.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Literal

import bcrypt
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tmi_db_exporter.config.yamlfile import ConfigError, load_yaml_file

CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_OPTIONAL,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
TLS_VERSIONS = {
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
AUTH_CACHE_SIZE = 64
# Checked against for unknown users, so that a wrong user name costs as long as a wrong password.
_DUMMY_HASH = bcrypt.hashpw(b"unknown user", bcrypt.gensalt(rounds=10))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TLSServerConfig(_Strict):
    cert_file: Path
    key_file: Path
    client_auth_type: Literal[
        "NoClientCert",
        "RequestClientCert",
        "RequireAnyClientCert",
        "VerifyClientCertIfGiven",
        "RequireAndVerifyClientCert",
    ] = "NoClientCert"
    client_ca_file: Path | None = None
    min_version: Literal["TLS12", "TLS13"] = "TLS12"


class WebConfig(_Strict):
    tls_server_config: TLSServerConfig | None = None
    basic_auth_users: dict[str, str] = Field(default_factory=dict)

    def ssl_context(self) -> ssl.SSLContext | None:
        tls = self.tls_server_config
        if tls is None:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = TLS_VERSIONS[tls.min_version]
        context.load_cert_chain(tls.cert_file, tls.key_file)
        context.verify_mode = CLIENT_AUTH[tls.client_auth_type]
        if tls.client_ca_file is not None:
            context.load_verify_locations(tls.client_ca_file)
        return context


def load_web_config(path: Path) -> WebConfig:
    """Validate the file and the files it names (certificates load, hashes are bcrypt)."""
    doc = load_yaml_file(path)
    try:
        config = WebConfig.model_validate(doc.data or {})
    except ValidationError as exc:
        raise ConfigError(doc.problems_from(exc)) from None
    problems = []
    for user, hashed in config.basic_auth_users.items():
        if not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            problems.append(
                doc.problem(("basic_auth_users", user), "expected a bcrypt hash ($2y$...)")
            )
    try:
        config.ssl_context()
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        problems.append(doc.problem(("tls_server_config",), f"cannot load TLS files: {reason}"))
    if problems:
        raise ConfigError(problems)
    return config


class BasicAuth:
    """aiohttp middleware: every request must carry one of the configured users."""

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

    @web.middleware
    async def middleware(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        if not self.credentials_ok(request.headers.get("Authorization")):
            return web.Response(
                status=401,
                text="Unauthorized\n",
                headers={"WWW-Authenticate": 'Basic realm="tmi-db-exporter"'},
            )
        return await handler(request)
