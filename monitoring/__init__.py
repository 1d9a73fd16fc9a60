"""Alerting and dashboards of tmi-db-exporter, built as data from `thresholds.toml`.

A dev-time package: it writes the files the deployment uses (`alerts/*.rules.yml`, their promtool
unit tests, the threshold table of `alerts/RUNBOOK.md`, `dashboards/*.json`) and holds the checks
the tests run over them. `python -m monitoring.build` regenerates everything.

Imports go one way: `rules` and `dashboards` both build on `thresholds` and `layout`; neither
imports the other, and only `build` imports both. `checks` (with `promql`) reads the generated
files, not the code that wrote them.
"""
