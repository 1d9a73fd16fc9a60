"""Regenerate everything that derives from `monitoring/thresholds.toml`.

The thresholds file is the one place where alerting is tuned; the rule files, the promtool tests,
the runbook's threshold table and the dashboards' threshold colours all derive from it. Keeping
the rules as data (and not as hand-edited YAML) is what lets one number change everywhere at
once: the unit tests are generated with inputs on both sides of each threshold, and their
expected annotations are rendered with the same humanize functions Prometheus uses, so a test
checks the template text too.

    python -m monitoring.build          # rewrite every generated file
    python -m monitoring.build --check  # exit 1 if any generated file is out of date
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

from monitoring.dashboards import dashboards
from monitoring.layout import ALERTS_DIR, DASHBOARDS_DIR, ROOT, RULE_TESTS_DIR, RUNBOOK
from monitoring.rules.render import dump, refresh_runbook, rule_files, test_files
from monitoring.thresholds import Thresholds, load_thresholds


def outputs(thresholds: Thresholds | None = None) -> dict[Path, str]:
    """Every generated file (path -> content) under the current thresholds."""
    thresholds = thresholds or load_thresholds()
    files = {ALERTS_DIR / name: dump(doc) for name, doc in rule_files(thresholds).items()}
    files |= {RULE_TESTS_DIR / name: dump(doc) for name, doc in test_files(thresholds).items()}
    files[RUNBOOK] = refresh_runbook(RUNBOOK.read_text(), thresholds)
    files |= {DASHBOARDS_DIR / name: doc for name, doc in dashboards(thresholds).items()}
    return files


def stale(files: Iterable[tuple[Path, str]]) -> list[Path]:
    return [p for p, text in files if not p.exists() or p.read_text() != text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only report out-of-date files")
    args = parser.parse_args(argv)
    files = outputs()
    out_of_date = stale(files.items())
    if args.check:
        for path in out_of_date:
            print(f"out of date: {path.relative_to(ROOT)}")
        return 1 if out_of_date else 0
    for path in out_of_date:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[path])
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
