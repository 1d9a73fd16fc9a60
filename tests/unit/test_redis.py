"""Redis parsing without a server: SLOWLOG command labels and INFO text values (the collectors
against a real redis-server: tests/integration/test_redis.py)."""

from __future__ import annotations

from tmi_db_exporter.sources.redis.info import parse_info
from tmi_db_exporter.sources.redis.slowlog import slowlog_command


def test_slowlog_label_is_never_an_argument() -> None:
    known = {"get", "config|get", "debug", "eval"}
    assert slowlog_command(["GET", "session:alice:1"], known) == "get"
    assert slowlog_command(["CONFIG", "GET", "requirepass"], known) == "config|get"
    assert slowlog_command(["DEBUG", "SLEEP", "1"], known) == "debug"
    assert slowlog_command(["my-renamed-config", "GET", "x"], known) == "other"
    assert slowlog_command([], known) == "other"


def test_info_parser_keeps_text_values() -> None:
    info = parse_info(
        "# Server\r\nredis_version:7.0.15\r\nos:Linux 6.1 x86_64\r\n\r\n# Keyspace\r\n"
        "db0:keys=3,expires=1,avg_ttl=5\r\ncmdstat_config|get:calls=2,usec=9\r\n"
    )
    assert info["os"] == "Linux 6.1 x86_64"
    assert info["db0"] == "keys=3,expires=1,avg_ttl=5"
    assert info["cmdstat_config|get"] == "calls=2,usec=9"
