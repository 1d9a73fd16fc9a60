"""HTTP endpoints: `/metrics`, `/healthz` and a landing page.

`/metrics` answers 200 whatever the databases do: a down server shows as `pg_up 0` /
`redis_up 0`, a failing collector as its error counter. The scrape honours Prometheus'
`X-Prometheus-Scrape-Timeout-Seconds` (minus a margin) and serves what it has by then.
"""

from __future__ import annotations

import asyncio
import html
import logging
import signal

from aiohttp import web

from exporter import __version__
from exporter.config import Settings
from exporter.exposition import CONTENT_TYPE
from exporter.scrape import Exporter

log = logging.getLogger(__name__)

EXPORTER_KEY = web.AppKey("exporter", Exporter)
DEADLINE_MARGIN = 0.5  # seconds kept back for the HTTP response itself


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


async def metrics(request: web.Request) -> web.Response:
    exporter = request.app[EXPORTER_KEY]
    blocks = await exporter.scrape(scrape_timeout(request, exporter.settings.scrape_timeout))
    headers = {"Content-Type": CONTENT_TYPE}
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        headers["Content-Encoding"] = "gzip"
        body = b"".join(b.gzipped() for b in blocks)
    else:
        body = b"".join(b.text for b in blocks)
    return web.Response(body=body, headers=headers)


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def landing(request: web.Request) -> web.Response:
    exporter = request.app[EXPORTER_KEY]
    targets = "".join(
        f"<li>{html.escape(kind)}: <code>{html.escape(target)}</code></li>"
        for kind, target in targets_of(exporter.settings)
    )
    page = f"""<!doctype html>
<html><head><title>tmi-db-exporter</title></head>
<body>
<h1>tmi-db-exporter {html.escape(__version__)}</h1>
<p>Prometheus exporter for the PostgreSQL and Redis of a TMI deployment.</p>
<ul><li><a href="metrics">metrics</a></li><li><a href="healthz">healthz</a></li></ul>
<h2>Targets</h2><ul>{targets or "<li>none</li>"}</ul>
</body></html>
"""
    return web.Response(text=page, content_type="text/html")


def targets_of(settings: Settings) -> list[tuple[str, str]]:
    """Configured targets as shown to people: never with a password."""
    out = []
    if settings.postgres:
        out.append(("PostgreSQL", settings.postgres.describe()))
    if settings.redis:
        out.append(("Redis", settings.redis.describe()))
    return out


def make_app(exporter: Exporter) -> web.Application:
    app = web.Application()
    app[EXPORTER_KEY] = exporter
    app.router.add_get("/", landing)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    return app


async def serve(exporter: Exporter, stop: asyncio.Event | None = None) -> None:
    """Serve until SIGINT/SIGTERM (or `stop`), then close connections cleanly."""
    settings = exporter.settings
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(make_app(exporter), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.listen_address, settings.listen_port)
        await site.start()
        log.info(
            "serving on http://%s:%d/metrics for %s",
            settings.listen_address,
            settings.listen_port,
            ", ".join(f"{k} {t}" for k, t in targets_of(settings)) or "no targets",
        )
        await stop.wait()
        log.info("shutting down")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await runner.cleanup()
        await exporter.close()
