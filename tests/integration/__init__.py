"""Tests against real PostgreSQL, Redis and Prometheus servers, started on free ports."""
