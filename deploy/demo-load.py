"""TMI-shaped data and light load for the databases of deploy/docker-compose.yml.

The same data and load as `tmi-db-exporter demo` (tmi_db_exporter.demo), pointed at the
compose stack's PostgreSQL and Redis, so that every dashboard panel has something to show. Runs
until the container is stopped.
"""

import asyncio
from pathlib import Path
from urllib.parse import quote

from tmi_db_exporter.demo import data, load


def secret(name: str) -> str:
    return Path("/run/secrets", name).read_text().strip()


async def main() -> None:
    dsn = f"host=postgres user=tmi_user password={secret('postgres_password')} dbname=postgres"
    redis_url = f"redis://:{quote(secret('redis_password'), safe='')}@redis:6379/0"
    await data.seed_postgres(dsn)
    await data.seed_redis(redis_url)
    print("demo data written; running light load", flush=True)
    await load.run_load(data.with_dbname(dsn, "tmi"), redis_url, asyncio.Event())


if __name__ == "__main__":
    asyncio.run(main())
