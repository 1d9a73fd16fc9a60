"""Key groups without a server: first match wins, and the census' own lookups are taken out of
the hit rate (globs against the server's MATCH and a real census:
tests/integration/test_keygroups.py)."""

from __future__ import annotations

from tmi_db_exporter.sources.redis.census import without_census_lookups
from tmi_db_exporter.sources.redis.key_groups import classify, parse_key_groups


def test_first_matching_group_wins() -> None:
    groups = parse_key_groups(["cache=cache:*", "threat_cache=cache:threat:*"])
    assert classify(b"cache:threat:1", groups) == "cache"
    assert classify(b"session:x", groups) == "unclassified"
    assert [g.pattern for g in groups] == ["cache:*", "cache:threat:*"]


def test_census_lookups_are_taken_out_of_hits_and_misses() -> None:
    info = {"keyspace_hits": "1000", "keyspace_misses": "40",
            "cmdstat_pexpiretime": "calls=900,usec=450,usec_per_call=0.50"}
    fixed = without_census_lookups(info, "PEXPIRETIME", misses=10)
    assert (fixed["keyspace_hits"], fixed["keyspace_misses"]) == ("110", "30")
    assert without_census_lookups({"keyspace_hits": "5", "keyspace_misses": "1"},
                                  "PEXPIRETIME", 0)["keyspace_hits"] == "5"
