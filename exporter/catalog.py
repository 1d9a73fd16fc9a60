"""The README's generated sections: every metric and every setting, from their one definition.

`python -m exporter.catalog --write README.md` refreshes the sections between the markers;
a test fails when the README and the code disagree, so the documentation cannot go stale.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from exporter import backups, keygroups, postgres, redis, selfmetrics
from exporter.config import setting_infos
from exporter.queries import default_queries_path, load_queries


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def metrics_table() -> str:
    rows = []
    for d in postgres.ALL:
        rows.append((d.name, d.type, d.labels, d.help, "PostgreSQL (built in)"))
    rows.append(
        ("pg_settings_<name>[_bytes|_seconds]", "gauge", (),
         "Every numeric or boolean server setting, in base units (postgres_exporter's names).",
         "PostgreSQL `pg_settings` (built in)")
    )
    for spec in load_queries([default_queries_path()]):
        for m in spec.metrics:
            rows.append(
                (spec.metric_name(m), m.type, tuple(spec.label_names()), m.help,
                 f"PostgreSQL `{spec.name}` ({spec.scope})"
                 + ("" if spec.enabled else ", off by default"))
            )
        if spec.left_out:
            rows.append(
                (spec.left_out_name(), "gauge", ("datname",) if spec.scope == "database" else (),
                 f"Rows of `{spec.name}` left out by its limit.", f"PostgreSQL `{spec.name}`")
            )
    for origin, defs in redis.CATALOG:
        for d in defs:
            rows.append((d.name, d.type, d.labels, d.help, origin))
    for d in keygroups.ALL:
        rows.append((d.name, d.type, d.labels, d.help, "Redis key census (background SCAN)"))
    for d in backups.ALL:
        rows.append((d.name, d.type, d.labels, d.help, "backup files (`backup_paths`)"))
    for d in selfmetrics.ALL:
        rows.append((d.name, d.type, d.labels, d.help, "exporter"))
    lines = ["| metric | type | labels | meaning | from |", "|---|---|---|---|---|"]
    for name, type_, labels, help_, origin in rows:
        label_text = ", ".join(f"`{lbl}`" for lbl in labels)
        lines.append(f"| `{name}` | {type_} | {label_text} | {_cell(help_)} | {origin} |")
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
        default = "" if info.default in (None, []) else f"`{info.default}`"
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
