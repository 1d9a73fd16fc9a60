"""Command line: `run`, `once`, `check-config`, `healthcheck` and `demo`.

Every setting has a flag, derived from the settings model, so `--help` lists them all with
their environment variable. Configuration errors print every problem at once and exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from tmi_db_exporter import __version__
from tmi_db_exporter.app import logs
from tmi_db_exporter.app.runtime import Runtime
from tmi_db_exporter.app.target import Target
from tmi_db_exporter.app.webconfig import WebConfig, load_web_config, parse_web_config
from tmi_db_exporter.config.loading import load_settings, setting_infos
from tmi_db_exporter.config.settings import Settings
from tmi_db_exporter.config.yamlfile import ConfigError
from tmi_db_exporter.core.cache import CLOSE_WAIT
from tmi_db_exporter.core.stopping import end_other_tasks
from tmi_db_exporter.sources.postgres.queries import QuerySpec, load_specs

EXIT_DOWN = 1
EXIT_CONFIG = 2
EXIT_UNHEALTHY = 1  # also for a configuration error: Docker reserves exit code 2

DESCRIPTION = """\
Prometheus exporter for the PostgreSQL and Redis databases of a TMI deployment.

Settings come from flags, then environment variables, then a YAML config file (--config),
then defaults. A database is monitored when any of its settings is given, e.g. POSTGRES_HOST
or REDIS_URL. Passwords are read from POSTGRES_PASSWORD / REDIS_PASSWORD or from the file
named by POSTGRES_PASSWORD_FILE / REDIS_PASSWORD_FILE (or --postgres-password-file).
"""


def _settings_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("settings (flag > environment > config file > default)")
    group.add_argument("--config", type=Path, metavar="FILE", help="YAML config file")
    for info in setting_infos():
        if info.secret:
            group.add_argument(
                info.file_flag,
                dest=info.key + "_file",
                metavar="FILE",
                help=f"file that holds: {info.description} (env {info.env}, {info.env}_FILE)",
            )
            continue
        facts = [f"env {info.env}"]
        if info.choices:
            facts.append("one of " + ", ".join(info.choices))
        facts.append(f"default: {info.shown_default}" if info.shown_default else "no default")
        extra: dict[str, Any] = {"metavar": "VALUE"}
        if info.is_bool:  # `--redis-tls` alone means true
            extra = {"metavar": "true|false", "nargs": "?", "const": "true"}
        group.add_argument(
            info.flag, dest=info.key, help=f"{info.description} ({'; '.join(facts)})", **extra
        )
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tmi-db-exporter",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    settings = _settings_parser()
    commands.add_parser(
        "run", parents=[settings], help="serve /metrics", description="Serve /metrics until stopped"
    )
    commands.add_parser(
        "once",
        parents=[settings],
        help="collect once and print the metrics",
        description="Collect once, print the exposition text, exit 1 if a database is down.",
    )
    commands.add_parser(
        "check-config",
        parents=[settings],
        help="validate settings and queries files",
        description="Validate the settings and queries files; exit 2 listing every problem.",
    )
    commands.add_parser(
        "healthcheck",
        parents=[settings],
        help="ask the running exporter's /healthz (Docker HEALTHCHECK)",
        description="Ask /healthz of the exporter these settings describe: its port, and https "
        "when the web config turns TLS on. Exit 0 when it answers, 1 when it does not or cannot "
        "be asked (basic auth on without healthz_without_auth).",
    )
    demo = commands.add_parser(
        "demo",
        help="run against a throwaway PostgreSQL and Redis with TMI-shaped data",
        description="Start a throwaway PostgreSQL and Redis from local binaries, fill them with "
        "TMI-shaped data and light load, and serve their metrics until Ctrl-C.",
    )
    demo.add_argument("--listen-address", default="127.0.0.1", metavar="ADDRESS")
    demo.add_argument("--listen-port", type=int, default=9432, metavar="PORT")
    demo.add_argument("--no-postgres", action="store_true", help="start only Redis")
    demo.add_argument("--no-redis", action="store_true", help="start only PostgreSQL")
    return parser


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given as flags, keyed as load_settings expects (`postgres.port`, ...)."""
    keys = set()
    for info in setting_infos():
        keys.add(info.key + "_file" if info.secret else info.key)
    return {k: v for k, v in vars(args).items() if k in keys and v is not None}


def _load(args: argparse.Namespace) -> Settings:
    settings = load_settings(args.config, os.environ, _flags(args))
    logs.configure(settings.log_level, settings.log_format)
    return settings


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure()
    if args.command == "healthcheck":
        return _healthcheck(args)
    try:
        if args.command == "demo":
            return _run(_demo(args))
        settings = _load(args)
        specs = load_specs(settings)
        web_config = load_web_config(settings.web_config_file) if settings.web_config_file else None
        if settings.postgres is None and settings.redis is None and not settings.targets:
            print(
                "error: nothing to monitor: set POSTGRES_HOST (or other POSTGRES_* settings) "
                "and/or REDIS_HOST / REDIS_URL; see --help",
                file=sys.stderr,
            )
            return EXIT_CONFIG
        if args.command == "check-config":
            return _check_config(settings, len(specs))
        if args.command == "once":
            return _run(_once(settings, specs))
        def reload() -> tuple[Settings, list[QuerySpec]]:
            fresh = _load(args)
            return fresh, load_specs(fresh)

        return _run(_serve(Runtime(reload, settings, specs), web_config))
    except ConfigError as exc:
        _print_problems(exc)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130


def _print_problems(exc: ConfigError) -> None:
    print(f"configuration error ({len(exc.problems)} problem(s)):", file=sys.stderr)
    for problem in exc.problems:
        print(f"  {problem}", file=sys.stderr)


def _healthcheck(args: argparse.Namespace) -> int:
    """Only the web config's schema is read, not its certificates: mid-rotation, the server
    keeps serving its last good ones, and the check must not call it unhealthy for that."""
    from tmi_db_exporter.app.healthcheck import Unhealthy, check_health

    try:
        settings = _load(args)
        path = settings.web_config_file
        web_config = parse_web_config(path)[0] if path else None
        print(check_health(settings, web_config))
    except ConfigError as exc:
        _print_problems(exc)
        return EXIT_UNHEALTHY
    except Unhealthy as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return EXIT_UNHEALTHY
    return 0


def _run(command: Coroutine[Any, Any, int]) -> int:
    """asyncio.run with a bounded way out: it cancels the tasks left behind and waits for them
    without a bound, and a task whose cancellation a library swallowed would hold the process
    forever. Such a task is named in the log and the process exits anyway."""

    async def bounded() -> int:
        code = await command
        stuck = await end_other_tasks(CLOSE_WAIT)
        if stuck:
            names = ", ".join(sorted(task.get_name() for task in stuck))
            logging.getLogger(__name__).error("exiting although these still run: %s", names)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        return code

    return asyncio.run(bounded())


def _check_config(settings: Settings, query_count: int) -> int:
    print(f"configuration is valid: {query_count} queries")
    for kind, target in settings.described_targets():
        print(f"  {kind}: {target}")
    return 0


async def _serve(runtime: Runtime, web_config: WebConfig | None) -> int:
    from tmi_db_exporter.app.server import ListenError, serve  # aiohttp: only when serving

    try:
        await serve(runtime, web_config)
    except ListenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return 0


async def _demo(args: argparse.Namespace) -> int:
    """Throwaway servers with TMI-shaped data and load, and the exporter pointed at them."""
    from tmi_db_exporter.app.server import serve
    from tmi_db_exporter.demo.environment import demo_environment

    async with demo_environment(postgres=not args.no_postgres, redis=not args.no_redis) as env:
        settings = env.settings(args.listen_address, args.listen_port)
        specs = load_specs(settings)
        url = f"http://{args.listen_address}:{args.listen_port}/metrics"
        print(f"\ndemo ready: {url}  (Ctrl-C stops it and removes everything)\n", flush=True)
        await serve(Runtime(lambda: (settings, specs), settings, specs))
    return 0


async def _once(settings: Settings, specs: list[Any]) -> int:
    """One complete collection, the key census included (waited for up to the scrape
    timeout), printed; then every connection closed within a bounded time."""
    target = Target(settings, specs)
    try:
        timeout = settings.scrape_timeout
        blocks = await target.scrape(timeout, complete=True)
        sys.stdout.buffer.write(b"".join(b.text for b in blocks))
        sys.stdout.flush()
        for collector in target.collectors:
            if collector.background and collector.age() is None:
                print(
                    f"note: {collector.name} had no result within {timeout:g}s (raise "
                    "--scrape-timeout to wait longer); its series are left out",
                    file=sys.stderr,
                )
        return 0 if target.all_up() else EXIT_DOWN
    finally:
        await target.close()


if __name__ == "__main__":
    raise SystemExit(main())
