"""The web config as it is on disk now, so that certificates and users rotate without a restart.

Certificates are rotated by tools (cert-manager, ACME clients, Kubernetes secrets) that know
nothing about this process; the toolkit's exporters pick a new one up on the next connection,
and so does this one. A file that does not load must not take the endpoint down: the last good
configuration keeps serving. Turning TLS on or off takes a restart, as in the toolkit: the
listening socket was opened for one or the other.
"""

from __future__ import annotations

import logging
import os
import ssl
import time
from pathlib import Path
from typing import Any

from tmi_db_exporter.app.webconfig import WebConfig, check_web_config, parse_web_config
from tmi_db_exporter.config.yamlfile import ConfigError

log = logging.getLogger(__name__)

# A stat() per file on every request and connection would cost more than a rotation gains;
# a second is quick enough for any rotation.
RECHECK_INTERVAL = 1.0  # seconds

Stamp = tuple[tuple[str, int, int, int] | tuple[str], ...]


def _stamp(paths: list[Path]) -> Stamp:
    """What changes when a file is rewritten or replaced (a Kubernetes secret's symlink swap
    changes the inode); a missing file is part of the state too."""
    out: list[tuple[str, int, int, int] | tuple[str]] = []
    for path in paths:
        try:
            info = os.stat(path)
        except OSError:
            out.append((str(path),))
            continue
        out.append((str(path), info.st_mtime_ns, info.st_size, info.st_ino))
    return tuple(out)


class WatchedWebConfig:
    """The current good web config and its TLS context, re-read when its files change."""

    def __init__(self, config: WebConfig) -> None:
        self.path = config.source  # None: made in code, nothing to watch
        self._config = config
        self._context = config.ssl_context()
        self.serves_tls = self._context is not None
        self._watched = config.named_files()
        self._stamp = self._now_stamp()
        self._checked = time.monotonic()

    @property
    def config(self) -> WebConfig:
        self._refresh()
        return self._config

    def ssl_context(self) -> ssl.SSLContext | None:
        self._refresh()
        return self._context

    def listener_context(self) -> ssl.SSLContext | None:
        """The context for the listening socket, or None for plain HTTP."""
        if not self.serves_tls:
            return None
        context = _ListenerContext(ssl.PROTOCOL_TLS_SERVER)
        context.web_config = self
        return context

    def _now_stamp(self) -> Stamp:
        return _stamp([self.path, *self._watched]) if self.path else ()

    def _refresh(self) -> None:
        now = time.monotonic()
        if self.path is None or now - self._checked < RECHECK_INTERVAL:
            return
        self._checked = now
        stamp = self._now_stamp()
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            config, doc = parse_web_config(self.path)
            # Watch the files the new version names from now on, even if they do not load
            # yet: the one that is still missing is the one whose arrival must be noticed.
            self._watched = config.named_files()
            self._stamp = self._now_stamp()
            context = check_web_config(config, doc)
        except ConfigError as exc:
            problems = "; ".join(str(problem) for problem in exc.problems)
            log.warning("web config is invalid, the last good one stays: %s", problems)
            return
        self._apply(config, context)

    def _apply(self, config: WebConfig, context: ssl.SSLContext | None) -> None:
        if (context is not None) != self.serves_tls:
            scheme = "https" if self.serves_tls else "http"
            log.warning(
                "web config %s turns TLS %s; that takes a restart, %s is served until then",
                self.path, "on" if context is not None else "off", scheme,
            )
            context = self._context
        self._config, self._context = config, context
        log.info("web config %s reloaded", self.path)


class _ListenerContext(ssl.SSLContext):
    """The listening socket's context: each connection it accepts is handed a TLS session of
    the web config's current context, so that a new certificate, CA, client_auth_type, version
    or cipher list applies from the next connection on.

    asyncio makes every server-side TLS session through `wrap_bio`. An `sni_callback` that
    swapped the context would not do: OpenSSL copies the verify mode, versions and ciphers into
    the session before the callback runs, and only the certificate and CA store follow a swap.
    """

    web_config: WatchedWebConfig

    def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:
        current = self.web_config.ssl_context()
        assert current is not None  # serves_tls: the last good TLS context is always kept
        return current.wrap_bio(*args, **kwargs)
