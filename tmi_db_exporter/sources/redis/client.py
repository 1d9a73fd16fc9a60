"""Connections to Redis, and what the server lets the exporter run on them.

Every collector talks to Redis through a client made here (one connection, raw replies) and
asks the one `CommandAccess` of its server before it runs a command that may be refused.
"""

from __future__ import annotations

import inspect
import logging
import re
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoPermissionError, ResponseError

from tmi_db_exporter.config.settings import RedisSettings

log = logging.getLogger(__name__)

# Without CLIENT SETINFO: one command less on connect, and one less for the ACL to allow.
_NO_SETINFO: dict[str, Any] = (
    {"driver_info": None}
    if "driver_info" in inspect.signature(AbstractConnection.__init__).parameters
    else {"lib_name": None, "lib_version": None}
)


def url_without_credentials(url: str) -> str:
    """The URL without its user and password, for a connection that must not authenticate."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=netloc))


def make_client(
    settings: RedisSettings,
    name: str | None,
    *,
    decode: bool = True,
    credentials: bool = True,
    retries: int = 1,
) -> aioredis.Redis:
    """A client with one connection, raw replies (no redis-py response parsing: INFO stays
    text, SLOWLOG keeps its argument lists) and the connection options of the settings."""
    kwargs: dict[str, Any] = {
        "socket_timeout": settings.timeout,
        "socket_connect_timeout": settings.timeout,
        "decode_responses": decode,
        "protocol": 2,  # raw RESP2 replies: INFO as text, SLOWLOG entries as lists
        "encoding_errors": "replace",
        # One immediate retry replaces a pooled connection that a server restart closed.
        "retry": Retry(NoBackoff(), retries),
        **_NO_SETINFO,
    }
    if name:
        kwargs["client_name"] = name
    if credentials:
        if settings.username:
            kwargs["username"] = settings.username
        if settings.password is not None:
            kwargs["password"] = settings.password.get_secret_value()
    client = aioredis.Redis.from_pool(_connection_pool(settings, credentials, kwargs))
    client.response_callbacks.clear()
    return client


def _connection_pool(
    settings: RedisSettings, credentials: bool, kwargs: dict[str, Any]
) -> aioredis.BlockingConnectionPool:
    """One connection to the server of the settings: by URL, Unix socket or host and port."""
    url = settings.url.get_secret_value() if settings.url is not None else None
    tls = settings.tls if url is None else url.startswith("rediss://")
    if tls:
        kwargs = {**kwargs, **_tls_options(settings)}
    pool_options = {"max_connections": 1, "timeout": settings.timeout}
    if url is not None:
        if not credentials:
            url = url_without_credentials(url)
        return aioredis.BlockingConnectionPool.from_url(url, **pool_options, **kwargs)
    if settings.socket is not None:
        return aioredis.BlockingConnectionPool(
            connection_class=aioredis.UnixDomainSocketConnection, path=settings.socket,
            db=settings.db, **pool_options, **kwargs,
        )
    return aioredis.BlockingConnectionPool(
        connection_class=aioredis.SSLConnection if tls else aioredis.Connection,
        host=settings.host, port=settings.port, db=settings.db, **pool_options, **kwargs,
    )


def _tls_options(settings: RedisSettings) -> dict[str, Any]:
    options: dict[str, Any] = {
        "ssl_cert_reqs": "none" if settings.tls_skip_verify else "required",
        "ssl_check_hostname": not settings.tls_skip_verify,
    }
    for key, path in (("ssl_ca_certs", settings.tls_ca_file),
                      ("ssl_certfile", settings.tls_cert_file),
                      ("ssl_keyfile", settings.tls_key_file)):
        if path is not None:
            options[key] = str(path)
    return options


def safe_error(exc: BaseException) -> str:
    """An error message without arguments: redis-py annotates pipeline errors with the command
    line, and Redis quotes the arguments of an unknown command; both may hold key names."""
    if not isinstance(exc, ResponseError):
        return type(exc).__name__
    message = str(exc.args[0]) if exc.args else ""
    message = message.rsplit("of pipeline caused error: ", 1)[-1].strip("()'\", ")
    if isinstance(exc, NoPermissionError):  # redis-py drops the NOPERM code
        # It names the user and the command, never a key or a channel.
        return message[:200] if message.startswith("NOPERM") else f"NOPERM {message}"[:200]
    for unknown in ("unknown command", "unknown subcommand"):
        if unknown in message:  # Redis quotes the command and its first arguments
            return unknown
    return re.sub(r"'[^']*'", "'…'", message)[:200]


# What is left out when a command is refused (for the log line).
_LEFT_OUT_WHEN_REFUSED = {
    "INFO": "all INFO metrics",
    "SLOWLOG": "slowlog metrics",
    "LATENCY": "latency spike metrics",
    "COMMAND": "renamed-command detection",
    "CONFIG": "protected mode and slowlog settings",
    "SCAN": "the key census",
    "PEXPIRETIME": "the key census",
    "PTTL": "the key census",
    "TIME": "nothing (the exporter's clock is used for TTLs)",
    "MEMORY": "key group memory estimates",
}


class CommandAccess:
    """Which commands the exporter may run here, learned by running them. A refusal is logged
    once (and again only when the reason changes), exported as 0, and the command is left alone
    for `recheck` seconds.

    Degraded servers (CONFIG renamed or denied, LATENCY missing on managed Redis, a user with
    few ACL permissions) thus still get everything else exported, and a denied command does not
    fill the server's ACL LOG. Calling is the only reliable test: `ACL DRYRUN` would itself need
    admin rights that a monitoring user should not have.
    """

    __slots__ = ("_state", "recheck")

    def __init__(self, recheck: float) -> None:
        self.recheck = recheck
        self._state: dict[str, tuple[bool, float, str]] = {}  # allowed, when, reason

    def may_try(self, command: str) -> bool:
        state = self._state.get(command)
        return state is None or state[0] or time.monotonic() - state[1] >= self.recheck

    def allowed(self, command: str) -> bool | None:
        state = self._state.get(command)
        return None if state is None else state[0]

    def last_tries(self) -> list[tuple[str, bool]]:
        """Each command tried so far, by name, with whether the server ran it the last time."""
        return [(command, allowed) for command, (allowed, _, _) in sorted(self._state.items())]

    def report(self, command: str, error: BaseException | str | None) -> None:
        """Record a try; only a refusal by the server counts (not a lost connection)."""
        if error is not None and not isinstance(error, str | ResponseError):
            return
        previous = self._state.get(command)
        now = time.monotonic()
        if error is None:
            if previous is not None and not previous[0]:
                log.info("Redis: %s works now", command)
            self._state[command] = (True, now, "")
            return
        reason = error if isinstance(error, str) else safe_error(error)
        if previous is None or previous[0] or previous[2] != reason:
            log.warning(
                "Redis: the exporter cannot run %s (%s); left out: %s",
                command, reason, _LEFT_OUT_WHEN_REFUSED.get(command, "its metrics"),
            )
        self._state[command] = (False, now, reason)
