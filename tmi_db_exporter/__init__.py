"""tmi-db-exporter: Prometheus metrics for the PostgreSQL and Redis of a TMI deployment."""

__version__ = "0.1.0"
