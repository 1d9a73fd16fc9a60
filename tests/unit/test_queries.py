"""queries.yaml: the shipped file is valid; mistakes are reported with file, line and field."""

import subprocess
import sys
from pathlib import Path

import pytest

from tmi_db_exporter.config.yamlfile import ConfigError
from tmi_db_exporter.sources.postgres.queries import default_queries_path, load_queries

MINIMAL = """\
pg_example:
  help: An example.
  sql: SELECT 1 AS one
  metrics:
    - column: one
      type: {type}
      help: One.
"""


def write(tmp_path: Path, text: str, name: str = "q.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_shipped_queries_load_with_the_required_entries() -> None:
    specs = {s.name: s for s in load_queries([default_queries_path()])}
    assert {"pg_stat_activity", "pg_connections", "pg_database", "pg_stat_user_tables",
            "pg_stat_statements", "pg_stat_user_indexes"} <= set(specs)
    statements = specs["pg_stat_statements"]
    assert statements.requires_extension == "pg_stat_statements"
    assert "total_time" in statements.variant_for(120017).sql
    assert "mean_time AS" in statements.variant_for(120017).sql
    assert "total_exec_time" in statements.variant_for(130000).sql
    assert "mean_exec_time" in statements.variant_for(180001).sql
    assert specs["pg_stat_user_tables"].scope == "database"


def test_wrong_type_reports_file_line_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.format(type="histogram"))
    with pytest.raises(ConfigError) as err:
        load_queries([path])
    assert len(err.value.problems) == 1
    assert str(err.value.problems[0]).startswith(f"{path}:6: pg_example.metrics[0].type:")


def test_all_mistakes_reported_at_once(tmp_path: Path) -> None:
    text = (
        "a:\n  help: A.\n  sql: SELECT 1\n  scope: everywhere\n  metrics: []\n"
        "b:\n  help: B.\n  metrics:\n    - {column: x, type: gauge, help: X.}\n"
        "c:\n  help: C.\n  sql: SELECT 1 AS x\n  ttl: soon\n"
        "  metrics:\n    - {column: x, type: gauge, help: X.}\n"
    )
    with pytest.raises(ConfigError) as err:
        load_queries([write(tmp_path, text)])
    found = {(p.where.rsplit(":", 1)[1], p.field) for p in err.value.problems}
    assert ("4", "a.scope") in found
    assert ("5", "a.metrics") in found
    assert ("6", "b") in found  # neither sql nor variants
    assert ("13", "c.ttl") in found


def test_duplicate_metric_names_across_files_name_both_places(tmp_path: Path) -> None:
    first = write(tmp_path, MINIMAL.format(type="gauge"), "a.yaml")
    second = write(
        tmp_path,
        MINIMAL.format(type="gauge").replace("pg_example:", "pg_other:").replace(
            "column: one", "column: one\n      name: pg_example_one"
        ).replace("AS one", "AS one"),
        "b.yaml",
    )
    with pytest.raises(ConfigError) as err:
        load_queries([first, second])
    assert f"already defined by pg_example at {first}:1" in str(err.value)


def test_duplicate_keys_and_aliases_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_queries([write(tmp_path, MINIMAL.format(type="gauge") * 2)])
    assert "duplicate key" in str(err.value)
    with pytest.raises(ConfigError) as err:
        load_queries([write(tmp_path, "a: &x [1]\nb: *x\n")])
    assert "aliases" in str(err.value)


def test_unit_must_show_in_the_name(tmp_path: Path) -> None:
    text = MINIMAL.format(type="gauge").replace("help: One.", "help: One.\n      unit: seconds")
    with pytest.raises(ConfigError) as err:
        load_queries([write(tmp_path, text)])
    assert "no _seconds in it" in str(err.value)


def test_overlapping_variants_are_refused(tmp_path: Path) -> None:
    text = (
        "v:\n  help: V.\n  variants:\n    - {min_version: 13, sql: SELECT 1 AS x}\n"
        "    - {min_version: 15, sql: SELECT 2 AS x}\n"
        "  metrics:\n    - {column: x, type: gauge, help: X.}\n"
    )
    with pytest.raises(ConfigError) as err:
        load_queries([write(tmp_path, text)])
    assert "overlap" in str(err.value)


def test_check_config_command_prints_file_line_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.format(type="histogram"))
    result = subprocess.run(
        [sys.executable, "-m", "tmi_db_exporter", "check-config", "--queries-file", str(path)],
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2
    assert f"{path}:6: pg_example.metrics[0].type:" in result.stderr
    assert "Traceback" not in result.stderr

    good = subprocess.run(
        [sys.executable, "-m", "tmi_db_exporter", "check-config"],
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "REDIS_HOST": "localhost"},
    )
    assert good.returncode == 0, good.stderr
    assert "configuration is valid" in good.stdout


def test_user_entry_clashing_with_a_built_in_names_both_places(tmp_path: Path) -> None:
    clash = write(tmp_path, MINIMAL.format(type="gauge").replace("pg_example:", "pg_database:"))
    with pytest.raises(ConfigError) as err:
        load_queries([default_queries_path(), clash])
    first = f"query name already used at {default_queries_path()}:"
    assert f"{clash}:1: pg_database: {first}" in str(err.value)
