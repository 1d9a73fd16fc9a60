"""The settings model: every tunable with its default and a one-line description.

The CLI flags, the environment names and the README's configuration table are all derived from
these models (see loading.py), so they cannot drift apart. Secrets are `SecretStr`, so that they
never appear in a repr, a log line or an error message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, field_validator

from tmi_db_exporter.config.durations import Duration

TARGET_NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
DEFAULT_PORT = 9432  # neither postgres_exporter's 9187 nor redis_exporter's 9121
ENV_PREFIX = "TMI_EXPORTER_"
SECTION_ENV_PREFIX = {"postgres": "POSTGRES_", "redis": "REDIS_"}


def _log_level_name(value: Any) -> Any:
    """`warn` and `WARN` too, as other exporters (and Go's slog) spell it."""
    if isinstance(value, str):
        value = value.strip().lower()
        return "warning" if value == "warn" else value
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PostgresSettings(_Section):
    host: str = Field("localhost", description="PostgreSQL host name, address or socket directory")
    port: int = Field(5432, ge=1, le=65535, description="PostgreSQL port")
    user: str = Field("postgres", min_length=1, description="Role to connect as (pg_monitor)")
    password: SecretStr | None = Field(None, description="Password of that role")
    database: str = Field("postgres", min_length=1, description="Database to connect to first")
    ssl_mode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = Field(
        "prefer", description="libpq sslmode; the guide asks for `require` in production"
    )
    ssl_root_cert: Path | None = Field(
        None, description="CA certificates (PEM) for ssl_mode verify-ca / verify-full"
    )
    ssl_cert: Path | None = Field(None, description="Client certificate (PEM), if the server asks")
    ssl_key: Path | None = Field(None, description="Private key (PEM) of the client certificate")
    connect_timeout: Duration = Field(5.0, gt=0, description="Give up connecting after this long")
    statement_timeout: Duration = Field(
        5.0, gt=0, description="Default statement_timeout of a monitoring query"
    )
    auto_discover_databases: bool = Field(
        True, description="Run database-scope queries in every database, not just the first one"
    )
    include_databases: list[str] = Field(
        [], description="Only these databases (empty: every database that accepts connections)"
    )
    exclude_databases: list[str] = Field(
        [], description="Databases to leave out of discovery (comma-separated in env/flags)"
    )
    discovery_interval: Duration = Field(
        60.0, gt=0, description="How often to look for new or dropped databases"
    )
    enable_queries: list[str] = Field(
        [], description="Turn on queries.yaml entries that are off by default (by name)"
    )
    disable_queries: list[str] = Field([], description="Turn off queries.yaml entries (by name)")
    statements_limit: int = Field(
        50, ge=1, le=10000, description="Top-N statements (by total time) from pg_stat_statements"
    )
    slow_statement_threshold: Duration = Field(
        0.1, ge=0, description="A statement with a mean time above this counts as slow"
    )
    statement_text_length: int = Field(
        120, ge=16, le=4096, description="Query text length when pg_stat_statements_query is on"
    )
    tables_limit: int = Field(
        2000, ge=1, description="Per-table series per database at most (most dead tuples first)"
    )
    indexes_limit: int = Field(5000, ge=1, description="Per-index series per database at most")
    sequences_limit: int = Field(
        20, ge=1, description="Sequences closest to exhaustion, per database"
    )
    applications_limit: int = Field(
        10, ge=1, description="Application names shown by name; the rest count as `other`"
    )
    migrations_table: str = Field(
        "public.schema_migrations",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$",
        description="golang-migrate's table ([schema.]name)",
    )

    def conninfo(self, database: str | None = None) -> dict[str, Any]:
        """Keyword arguments for psycopg; the password goes only here, never into a string."""
        params: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "dbname": database or self.database,
            "sslmode": self.ssl_mode,
            "connect_timeout": max(1, round(self.connect_timeout)),
            "application_name": "tmi-db-exporter",
        }
        for key, path in (
            ("sslrootcert", self.ssl_root_cert),
            ("sslcert", self.ssl_cert),
            ("sslkey", self.ssl_key),
        ):
            if path is not None:
                params[key] = str(path)
        if self.password is not None:
            params["password"] = self.password.get_secret_value()
        return params

    def describe(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}"


class RedisSettings(_Section):
    host: str = Field("localhost", description="Redis host name or address")
    port: int = Field(6379, ge=1, le=65535, description="Redis port")
    username: str | None = Field(None, description="ACL user name (Redis 6+), if not `default`")
    password: SecretStr | None = Field(None, description="Password (requirepass or ACL user)")
    db: int = Field(0, ge=0, description="Database number the exporter selects")
    url: SecretStr | None = Field(
        None, description="redis:// or rediss:// URL; replaces host, port and db when given"
    )
    timeout: Duration = Field(5.0, gt=0, description="Connect and command timeout")
    socket: str | None = Field(
        None, description="Unix socket path; replaces host and port when given"
    )
    tls: bool = Field(False, description="Connect with TLS (a rediss:// URL implies it)")
    tls_ca_file: Path | None = Field(
        None, description="CA certificates (PEM) to verify the server's TLS certificate"
    )
    tls_cert_file: Path | None = Field(
        None, description="Client certificate (PEM) for TLS client authentication"
    )
    tls_key_file: Path | None = Field(
        None, description="Private key (PEM) of the client certificate"
    )
    tls_skip_verify: bool = Field(
        False, description="Accept any server certificate (test setups only)"
    )
    config_command: SecretStr | None = Field(
        None, description="Name CONFIG was renamed to (rename-command), if the exporter may use it"
    )
    slowlog_interval: Duration = Field(
        15.0, gt=0, description="How often to read SLOWLOG and LATENCY LATEST"
    )
    slowlog_entries: int = Field(
        128, ge=1, le=10000, description="Newest SLOWLOG entries read for the per-command figures"
    )
    posture_interval: Duration = Field(
        300.0,
        gt=0,
        description="How often to check the security posture (COMMAND INFO, CONFIG GET, a PING "
        "without credentials); also how long a denied command is left alone",
    )
    dangerous_commands: list[str] = Field(
        ["FLUSHDB", "FLUSHALL", "CONFIG", "KEYS"],
        description="Commands reported as renamed/disabled or not (comma-separated in env/flags)",
    )
    key_groups: list[str] = Field(
        [
            "session=session:*",
            "cache=cache:*",
            "auth=auth:token:*",
            "rate_limit=rate_limit:user:*",
            "lock=lock:*",
        ],
        description="Key census groups as name=glob (Redis MATCH syntax), first match wins; "
        "comma-separated in env/flags; empty turns the census off",
    )
    key_census_interval: Duration = Field(
        300.0, gt=0, description="How often the background key census starts"
    )
    key_census_timeout: Duration = Field(
        1800.0, gt=0, description="Give up a key census that runs longer than this"
    )
    key_census_scan_count: int = Field(
        100, ge=1, le=10000, description="COUNT hint of each SCAN step of the key census"
    )
    key_census_pause: Duration = Field(
        0.005, description="Pause between SCAN steps, so that the census never hogs the server"
    )
    key_census_memory_samples: int = Field(
        100, ge=0, description="Keys per group whose MEMORY USAGE is sampled (0: no estimate)"
    )
    key_census_ttl_buckets: list[Duration] = Field(
        [30.0, 60.0, 900.0, 3600.0, 86400.0, 604800.0],
        description="Upper bounds of the key census TTL buckets (comma-separated in env/flags)",
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, url: SecretStr | None) -> SecretStr | None:
        """A usable redis://, rediss:// or unix:// URL; the message never repeats it."""
        if url is None:
            return url
        try:
            parts = urlsplit(url.get_secret_value())
            _ = parts.port  # raises for a port that is not a number or out of range
        except ValueError:
            raise ValueError(
                "not a valid URL (expected redis://[user:password@]host:port/db)"
            ) from None
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ValueError("the scheme must be redis://, rediss:// or unix://")
        if parts.scheme != "unix" and not parts.hostname:
            raise ValueError("the URL names no host")
        return url

    @field_validator("key_groups")
    @classmethod
    def _check_key_groups(cls, groups: list[str]) -> list[str]:
        names = set()
        for item in groups:
            name, sep, pattern = item.partition("=")
            if not sep or not pattern or not name.isidentifier() or not name.isascii():
                raise ValueError(f"{item!r}: expected name=glob, e.g. session=session:*")
            if name in names or name == "unclassified":
                raise ValueError(f"{item!r}: group name {name!r} is reserved or given twice")
            names.add(name)
        return groups

    def describe(self) -> str:
        if self.socket is not None and self.url is None:
            return f"unix://{self.socket}?db={self.db}"
        if self.url is not None:
            return redact_url(self.url.get_secret_value())
        return f"redis://{self.host}:{self.port}/{self.db}"


class TargetSettings(_Section):
    """A named target of /probe: only targets named in the config can be probed (no SSRF)."""

    postgres: PostgresSettings | None = None
    redis: RedisSettings | None = None
    backup_paths: list[str] = []


class Settings(_Section):
    listen_address: str = Field("0.0.0.0", description="Address to serve metrics on")
    listen_port: int = Field(DEFAULT_PORT, ge=1, le=65535, description="Port to serve metrics on")
    scrape_timeout: Duration = Field(
        10.0,
        gt=0,
        description="Deadline of a scrape when Prometheus sends no X-Prometheus-Scrape-Timeout",
    )
    min_ttl: Duration = Field(
        1.0,
        ge=0,
        description="Scrapes this close together share one collection, even of data with TTL 0 "
        "(several Prometheus servers then cost the database what one does; 0: never share)",
    )
    queries_file: Path | None = Field(None, description="Replace the built-in queries.yaml")
    backup_paths: list[str] = Field(
        [], description="Backup files to watch: directories or globs (comma-separated)"
    )
    extra_queries_files: list[Path] = Field(
        [], description="More queries files, added to the built-in ones (comma-separated)"
    )
    log_level: Annotated[
        Literal["debug", "info", "warning", "error"], BeforeValidator(_log_level_name)
    ] = Field("info", description="Log verbosity")
    log_format: Literal["text", "json"] = Field(
        "text", description="Log lines as text or as one JSON object each"
    )
    enable_lifecycle: bool = Field(
        False,
        description="Serve POST /-/reload, as Prometheus' --web.enable-lifecycle does "
        "(SIGHUP always reloads)",
    )
    web_config_file: Path | None = Field(
        None,
        description="TLS and basic auth for every endpoint (Prometheus exporter-toolkit format)",
    )
    healthz_without_auth: bool = Field(
        False,
        description="Serve /healthz without basic auth, for liveness probes that hold no "
        "password (it only says that the process answers)",
    )
    postgres: PostgresSettings | None = Field(None, description="Monitor this PostgreSQL")
    redis: RedisSettings | None = Field(None, description="Monitor this Redis")
    targets: dict[Annotated[str, Field(pattern=TARGET_NAME_RE)], TargetSettings] = Field(
        {},
        description="Named targets for /probe?target=NAME (config file only)",
        json_schema_extra={"file_only": True},
    )

    def described_targets(self) -> list[tuple[str, str]]:
        """Configured targets as shown to people: never with a password."""
        out = []
        if self.postgres:
            out.append(("PostgreSQL", self.postgres.describe()))
        if self.redis:
            out.append(("Redis", self.redis.describe()))
        for name, target in sorted(self.targets.items()):
            if target.postgres:
                out.append((f"{name} PostgreSQL", target.postgres.describe()))
            if target.redis:
                out.append((f"{name} Redis", target.redis.describe()))
        return out


def redact_url(url: str) -> str:
    """A URL without its password, safe for logs and the landing page."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + netloc))
