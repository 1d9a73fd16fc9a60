"""What the tests share besides fixtures: the servers' settings, building and scraping a target,
talking to PostgreSQL directly, certificates, the exporter's CLI. Fixtures stay in conftest.py."""
