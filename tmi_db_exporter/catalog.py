"""Every metric and every setting, from their one definition, for the README and the checks.

Metrics register themselves where they are defined (`core.metrics.MetricGroup`); this module
imports every module of the package so that none is missed, adds the metrics the built-in
queries.yaml entries make, and renders the rows: the README's tables here, the metric types
for the dashboard and rule checks in `monitoring/`. `python -m tmi_db_exporter.catalog --write
README.md` refreshes the README sections between the markers; a test fails when they differ.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import re
from dataclasses import dataclass
from pathlib import Path

import tmi_db_exporter
from tmi_db_exporter.config.loading import setting_infos
from tmi_db_exporter.core.metrics import registered
from tmi_db_exporter.sources.postgres.queries import default_queries_path, load_queries

# README order of the areas; a module outside all of them is an error, not a silent omission.
AREAS = (
    "tmi_db_exporter.sources.postgres",
    "tmi_db_exporter.sources.redis",
    "tmi_db_exporter.sources.backups",
    "tmi_db_exporter.core",
    "tmi_db_exporter.app",
)
SETTINGS_ROW_AFTER = "tmi_db_exporter.sources.postgres"  # pg_settings_* and queries.yaml rows


@dataclass(frozen=True, slots=True)
class MetricRow:
    name: str
    type: str
    labels: tuple[str, ...]
    help: str
    origin: str


def _import_all() -> None:
    """Import every module, so that every metric group is registered (the demo defines none)."""
    prefix = tmi_db_exporter.__name__ + "."
    for module in pkgutil.walk_packages(tmi_db_exporter.__path__, prefix):
        if not module.name.startswith(prefix + "demo") and module.name != prefix + "__main__":
            importlib.import_module(module.name)


def _area(module: str) -> int:
    for index, area in enumerate(AREAS):
        if module == area or module.startswith(area + "."):
            return index
    raise ValueError(f"{module} defines metrics outside the areas known to the catalog")


def _queries_rows() -> list[MetricRow]:
    rows = [
        MetricRow(
            "pg_settings_<name>[_bytes|_seconds]", "gauge", (),
            "Every numeric or boolean server setting, in base units (postgres_exporter's names).",
            "PostgreSQL `pg_settings` (built in)",
        )
    ]
    for spec in load_queries([default_queries_path()]):
        origin = f"PostgreSQL `{spec.name}` ({spec.scope})"
        for m in spec.metrics:
            rows.append(
                MetricRow(
                    spec.metric_name(m), m.type, tuple(spec.label_names()), m.help,
                    origin + ("" if spec.enabled else ", off by default"),
                )
            )
        if spec.left_out:
            rows.append(
                MetricRow(
                    spec.left_out_name(), "gauge",
                    ("datname",) if spec.scope == "database" else (),
                    f"Rows of `{spec.name}` left out by its limit.", f"PostgreSQL `{spec.name}`",
                )
            )
    return rows


def metric_rows() -> list[MetricRow]:
    """Every metric the exporter can export, in README order."""
    _import_all()
    # By area, then by module name: the order does not depend on which module was imported first.
    groups = sorted(registered(), key=lambda group: (_area(group.module), group.module))
    rows: list[MetricRow] = []
    for index, group in enumerate(groups):
        rows += [MetricRow(d.name, d.type, d.labels, d.help, group.origin) for d in group.defs]
        following = groups[index + 1].module if index + 1 < len(groups) else ""
        if group.module.startswith(SETTINGS_ROW_AFTER) and not following.startswith(
            SETTINGS_ROW_AFTER
        ):
            rows += _queries_rows()
    return rows


def metric_types() -> dict[str, str]:
    """Metric name -> type, for the dashboard and rule checks."""
    return {row.name: row.type for row in metric_rows()}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def metrics_table() -> str:
    lines = ["| metric | type | labels | meaning | from |", "|---|---|---|---|---|"]
    for row in metric_rows():
        label_text = ", ".join(f"`{label}`" for label in row.labels)
        lines.append(
            f"| `{row.name}` | {row.type} | {label_text} | {_cell(row.help)} | {row.origin} |"
        )
    return "\n".join(lines)


def settings_table() -> str:
    lines = [
        "| setting (config file) | environment | flag | default | meaning |",
        "|---|---|---|---|---|",
    ]
    for info in setting_infos():
        if info.secret:
            env = f"`{info.env}`, `{info.env}_FILE`"
            flag = f"`{info.file_flag}`"
        else:
            env, flag = f"`{info.env}`", f"`{info.flag}`"
        default = f"`{info.shown_default}`" if info.shown_default else ""
        lines.append(f"| `{info.key}` | {env} | {flag} | {default} | {_cell(info.description)} |")
    return "\n".join(lines)


SECTIONS = {"metrics": metrics_table, "settings": settings_table}


def refresh(readme: str) -> str:
    """The README text with each generated section replaced by its current content."""
    for name, make in SECTIONS.items():
        pattern = re.compile(
            rf"(<!-- {name}:begin -->\n).*?(<!-- {name}:end -->)", flags=re.DOTALL
        )
        if not pattern.search(readme):
            raise ValueError(f"README has no <!-- {name}:begin --> ... <!-- {name}:end --> section")
        readme = pattern.sub(lambda m, make=make: m.group(1) + make() + "\n" + m.group(2), readme)
    return readme


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", type=Path, metavar="README", help="update this file in place")
    args = parser.parse_args()
    if args.write:
        args.write.write_text(refresh(args.write.read_text()))
    else:
        print(metrics_table(), settings_table(), sep="\n\n")


if __name__ == "__main__":
    main()
