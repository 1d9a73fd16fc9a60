"""POSTGRES_SSL_MODE against a server with a certificate from a throwaway CA: `require` encrypts,
`verify-full` with the CA file verifies, a wrong CA is refused (pg_up 0, no traceback)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.support.certs import make_certs
from tests.support.postgres import pg_connect
from tests.support.scraping import make_target, scrape
from tests.support.servers import pg_env
from tmi_db_exporter.demo.servers import LocalPostgres

pytestmark = pytest.mark.integration


def enable_tls(server: LocalPostgres, tmp_path: Path) -> Path:
    """Turn on ssl with a CA-signed certificate (ssl is reloadable); returns the CA file."""
    assert server.data_dir is not None
    certs = make_certs(tmp_path / "pg")
    owner = os.stat(server.data_dir)
    for source in (certs.cert, certs.key):
        target = server.data_dir / source.name
        shutil.copy(source, target)
        os.chown(target, owner.st_uid, owner.st_gid)
        os.chmod(target, 0o600)
    with pg_connect(server) as conn:
        (built_with,) = conn.execute("SELECT setting FROM pg_settings WHERE name = 'ssl_library'"
                                     ).fetchone() or ("",)
        if not built_with:
            pytest.skip(f"this PostgreSQL {server.major} build has no TLS support (ssl_library='')")
        conn.execute("ALTER SYSTEM SET ssl_cert_file = 'server.crt'")
        conn.execute("ALTER SYSTEM SET ssl_key_file = 'server.key'")
        conn.execute("ALTER SYSTEM SET ssl = on")
        conn.execute("SELECT pg_reload_conf()")
    return certs.ca


async def collect(server: LocalPostgres, **env: str):
    settings = pg_env(server) | {"POSTGRES_AUTO_DISCOVER_DATABASES": "false"} | env
    exporter = make_target(settings)
    try:
        return await scrape(exporter)
    finally:
        await exporter.close()


async def test_ssl_modes(private_postgres: LocalPostgres, tmp_path: Path, caplog) -> None:
    ca = enable_tls(private_postgres, tmp_path)

    required = await collect(private_postgres, POSTGRES_SSL_MODE="require")
    assert required.value("pg_up") == 1
    assert required.value("pg_settings_ssl") == 1
    encrypted = required.series("pg_stat_ssl_connections", ssl="true")
    assert encrypted and all(lbl["tls_version"].startswith("TLSv1.") for lbl, _ in encrypted)

    verified = await collect(private_postgres, POSTGRES_SSL_MODE="verify-full",
                             POSTGRES_HOST="localhost", POSTGRES_SSL_ROOT_CERT=str(ca))
    assert verified.value("pg_up") == 1

    other_ca = make_certs(tmp_path / "other", name="other").ca
    refused = await collect(private_postgres, POSTGRES_SSL_MODE="verify-full",
                            POSTGRES_HOST="localhost", POSTGRES_SSL_ROOT_CERT=str(other_ca))
    assert refused.value("pg_up") == 0
    assert "certificate verify failed" in caplog.text
    assert "Traceback" not in caplog.text

    plain = await collect(private_postgres, POSTGRES_SSL_MODE="disable")
    assert plain.value("pg_up") == 1
    assert plain.series("pg_stat_ssl_connections", ssl="false")
