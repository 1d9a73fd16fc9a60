"""Bad input that only a server shows: queries that pass validation and fail when they run still
name their file, line and entry, and hide nothing else (the rest of the bad-input tests need no
server: tests/unit/test_bad_input.py)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.support.scraping import make_target, scrape
from tests.support.servers import pg_env
from tmi_db_exporter.demo.servers import LocalPostgres


@pytest.mark.integration
async def test_failing_sql_names_its_file_line_and_entry(
    postgres: LocalPostgres, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "runtime.yaml"
    path.write_text(
        "# entries that pass validation and fail on the server\n"
        "q_missing_table:\n  help: No such table.\n  sql: SELECT x FROM no_such_table\n"
        "  metrics:\n    - {column: x, type: gauge, help: X.}\n"
        "q_syntax:\n  help: Not SQL.\n  sql: SELEKT 1 AS x\n"
        "  metrics:\n    - {column: x, type: gauge, help: X.}\n"
        "q_wrong_column:\n  help: Column missing.\n  sql: SELECT 1 AS y\n"
        "  metrics:\n    - {column: x, type: gauge, help: X.}\n"
        "q_fine:\n  help: Works.\n  sql: SELECT 7 AS x\n"
        "  metrics:\n    - {column: x, type: gauge, help: X.}\n"
    )
    caplog.set_level(logging.WARNING)
    flags = {"extra_queries_files": str(path), "postgres.auto_discover_databases": "false"}
    exporter = make_target(pg_env(postgres), flags)
    try:
        result = await scrape(exporter)
    finally:
        await exporter.close()
    errors = "tmi_db_exporter_collector_errors_total"
    for name in ("q_missing_table", "q_syntax", "q_wrong_column"):
        assert result.value(errors, collector=f"pg:{name}") == 1
    assert result.value("q_fine_x") == 7  # the failing entries hide nothing
    assert result.value("pg_up") == 1
    assert f"{path}:2: q_missing_table.sql: UndefinedTable" in caplog.text
    assert f"{path}:7: q_syntax.sql: SyntaxError" in caplog.text
    assert f"{path}:12: q_wrong_column.sql: the query returned no column(s) x" in caplog.text
    assert "Traceback" not in caplog.text
