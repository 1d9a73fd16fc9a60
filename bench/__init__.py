"""Side-by-side benchmark of tmi-db-exporter against postgres_exporter and redis_exporter."""
