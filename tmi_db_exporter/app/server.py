"""HTTP endpoints: `/metrics`, `/probe`, `/healthz`, `/-/reload` and a landing page.

`/metrics` answers 200 whatever the databases do: a down server shows as `pg_up 0` /
`redis_up 0`, a failing collector as its error counter. A scrape honours Prometheus'
`X-Prometheus-Scrape-Timeout-Seconds` (minus a margin) and serves what it has by then.
`/probe?target=NAME` scrapes a target named in the config file, never an address from the
request, so the exporter cannot be turned into a scanner. TLS, basic auth and response headers
come from an exporter-toolkit web config file and cover every endpoint; `/healthz` alone may be
exempted from authentication (`healthz_without_auth`), for liveness probes that hold no password.
"""

from __future__ import annotations

import asyncio
import html
import logging
import os
import signal

from aiohttp import web

from tmi_db_exporter import __version__
from tmi_db_exporter.app.runtime import Runtime
from tmi_db_exporter.app.target import Target
from tmi_db_exporter.app.webaccess import WebAccess, response_headers
from tmi_db_exporter.app.webconfig import WebConfig
from tmi_db_exporter.app.webwatch import WatchedWebConfig
from tmi_db_exporter.core.exposition import CONTENT_TYPE, Block
from tmi_db_exporter.core.memory import freeze_startup_objects

log = logging.getLogger(__name__)

RUNTIME_KEY = web.AppKey("runtime", Runtime)
WEB_CONFIG_KEY = web.AppKey("web_config", WatchedWebConfig)


class ListenError(Exception):
    """The HTTP server could not start listening; the message says where and why."""

DEADLINE_MARGIN = 0.5  # seconds kept back for the HTTP response itself
# On SIGTERM in-flight scrapes get SHUTDOWN_GRACE to finish; then the targets close (bounded,
# see app/target.py), so that the process is gone within the few seconds that Kubernetes and
# systemd allow. SHUTDOWN_WAIT is aiohttp's own bound on the requests, a backstop.
SHUTDOWN_GRACE = 2.0
SHUTDOWN_WAIT = 4.0


def scrape_timeout(request: web.Request, default: float) -> float:
    header = request.headers.get("X-Prometheus-Scrape-Timeout-Seconds")
    if header:
        try:
            given = float(header)
            if given > 0:
                return max(0.1, min(given - DEADLINE_MARGIN, given * 0.9))
        except ValueError:
            pass
    return default


async def _exposition(request: web.Request, blocks: list[Block]) -> web.StreamResponse:
    """Write the blocks one by one instead of joining them: a join would hold a second copy of
    the whole exposition for every scrape in flight. Without gzip, the text is made from each
    block's gzip member piece by piece as it is written."""
    response = web.StreamResponse(headers={"Content-Type": CONTENT_TYPE})
    compressed = "gzip" in request.headers.get("Accept-Encoding", "")
    if compressed:
        response.headers["Content-Encoding"] = "gzip"
        response.content_length = sum(len(b.gzipped()) for b in blocks)
    else:
        response.content_length = sum(b.size for b in blocks)
    try:
        await response.prepare(request)
        for block in blocks:
            if compressed:
                await response.write(block.gzipped())
            else:
                for chunk in block.text_chunks():
                    await response.write(chunk)
        await response.write_eof()
    except ConnectionResetError:  # the scraper hung up (its own timeout): nobody to tell
        log.debug("scraper %s went away before the response was written", request.remote)
    return response


async def _scrape(request: web.Request, target: Target) -> web.StreamResponse:
    runtime = request.app[RUNTIME_KEY]
    timeout = scrape_timeout(request, runtime.settings.scrape_timeout)
    return await _exposition(request, await target.scrape(timeout, runtime.reload_status))


async def metrics(request: web.Request) -> web.StreamResponse:
    return await _scrape(request, request.app[RUNTIME_KEY].default)


async def probe(request: web.Request) -> web.StreamResponse:
    runtime = request.app[RUNTIME_KEY]
    name = request.query.get("target", "")
    if not name:
        return web.Response(status=400, text="missing ?target=NAME\n")
    target = runtime.targets.get(name)
    if target is None:
        known = ", ".join(sorted(runtime.targets)) or "none configured"
        return web.Response(status=404, text=f"unknown target; known targets: {known}\n")
    return await _scrape(request, target)


async def reload(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME_KEY]
    if not runtime.settings.enable_lifecycle:  # anyone who can reach the port could reload
        return web.Response(status=403, text="lifecycle API is not enabled (--enable-lifecycle)\n")
    if await runtime.reload():
        return web.Response(text="configuration reloaded\n")
    return web.Response(status=500, text="reload failed; the previous configuration stays\n")


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def landing(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME_KEY]
    targets = "".join(
        f"<li>{html.escape(kind)}: <code>{html.escape(target)}</code></li>"
        for kind, target in runtime.settings.described_targets()
    )
    probes = "".join(
        f'<li><a href="probe?target={html.escape(name)}">{html.escape(name)}</a></li>'
        for name in sorted(runtime.targets)
    )
    page = f"""<!doctype html>
<html><head><title>tmi-db-exporter</title></head>
<body>
<h1>tmi-db-exporter {html.escape(__version__)}</h1>
<p>Prometheus exporter for the PostgreSQL and Redis of a TMI deployment.</p>
<ul><li><a href="metrics">metrics</a></li><li><a href="healthz">healthz</a></li></ul>
<h2>Targets</h2><ul>{targets or "<li>none</li>"}</ul>
<h2>Probe targets</h2><ul>{probes or "<li>none</li>"}</ul>
</body></html>
"""
    return web.Response(text=page, content_type="text/html")


def healthz_exempt(request: web.Request) -> bool:
    """Read per request, so that a reload (SIGHUP) applies the setting."""
    return request.path == "/healthz" and request.app[RUNTIME_KEY].settings.healthz_without_auth


def make_app(runtime: Runtime, web_config: WebConfig | None = None) -> web.Application:
    # With a web config file, access is checked even while it names no users: users added to
    # the file later apply without a restart.
    watched = WatchedWebConfig(web_config) if web_config is not None else None
    middlewares = [WebAccess(watched, healthz_exempt).middleware] if watched else []
    app = web.Application(middlewares=middlewares)
    app[RUNTIME_KEY] = runtime
    if watched is not None:
        app[WEB_CONFIG_KEY] = watched
        app.on_response_prepare.append(response_headers(watched))
    app.router.add_get("/", landing)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/probe", probe)
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/-/reload", reload)
    return app


async def serve(
    runtime: Runtime, web_config: WebConfig | None = None, stop: asyncio.Event | None = None
) -> None:
    """Serve until SIGINT/SIGTERM (or `stop`); SIGHUP reloads. On the way out, in-flight
    scrapes complete and every database connection is closed."""
    settings = runtime.settings
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    reloads: set[asyncio.Task[bool]] = set()

    def on_sighup() -> None:
        task = loop.create_task(runtime.reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    handlers = {signal.SIGINT: stop.set, signal.SIGTERM: stop.set, signal.SIGHUP: on_sighup}
    for sig, handler in handlers.items():
        loop.add_signal_handler(sig, handler)
    app = make_app(runtime, web_config)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_WAIT)
    await runner.setup()
    try:
        watched = app.get(WEB_CONFIG_KEY)
        ssl_context = watched.listener_context() if watched else None
        site = web.TCPSite(
            runner, settings.listen_address, settings.listen_port, ssl_context=ssl_context
        )
        try:
            await site.start()
        except OSError as exc:  # port in use, no such address, a host:port given as address
            plain = exc.errno and exc.errno > 0  # aiohttp wraps EADDRINUSE in a long text
            reason = os.strerror(exc.errno) if plain else (exc.strerror or str(exc))
            raise ListenError(
                f"cannot listen on {settings.listen_address} port {settings.listen_port}: {reason}"
            ) from None
        freeze_startup_objects()
        scheme = "https" if ssl_context else "http"
        log.info(
            "serving on %s://%s:%d/metrics for %s",
            scheme,
            settings.listen_address,
            settings.listen_port,
            ", ".join(f"{k} {t}" for k, t in settings.described_targets()) or "no targets",
        )
        if web_config is not None and web_config.asks_for_http2:
            log.info("web config: http2 is not served; clients use HTTP/1.1")
        await stop.wait()
        log.info("shutting down")
    finally:
        for sig in handlers:
            loop.remove_signal_handler(sig)
        # Stop listening and give in-flight scrapes a short grace; then close the targets,
        # which makes a scrape still waiting for a database return what it has at once.
        cleanup = asyncio.create_task(runner.cleanup())
        await asyncio.wait({cleanup}, timeout=SHUTDOWN_GRACE)
        await asyncio.gather(runtime.close(), cleanup, *reloads, return_exceptions=True)
