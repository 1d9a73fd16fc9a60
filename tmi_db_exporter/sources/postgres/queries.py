"""PostgreSQL monitoring queries as data: load and validate queries.yaml into typed specs.

A spec says everything about the series it makes (SQL per server version, which columns are
labels, which are metrics with type and unit, where it runs, how often, how many rows at most),
so adding a check is a YAML edit, not a code change. The whole file is validated before anything
runs, and every mistake is reported with file, line and field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from tmi_db_exporter.config.durations import Duration
from tmi_db_exporter.config.settings import PostgresSettings, Settings
from tmi_db_exporter.config.yamlfile import ConfigError, Problem, YamlDocument, load_yaml_file

NAME_RE = r"^[a-zA-Z_][a-zA-Z0-9_]*$"
# `{name}` in SQL is filled in from the settings (integers, or a validated identifier), so
# operators tune limits and thresholds without editing SQL.
# What each `{placeholder}` of queries.yaml stands for, from the PostgreSQL settings (integers
# or a validated identifier, never free text); `{limit}` is the entry's own `limit`. A new
# placeholder is a setting plus one line here.
SETTING_PLACEHOLDERS: dict[str, Callable[[PostgresSettings], str]] = {
    "statements_limit": lambda s: str(s.statements_limit),
    "slow_statement_ms": lambda s: str(round(s.slow_statement_threshold * 1000, 3)),
    "statement_text_length": lambda s: str(s.statement_text_length),
    "tables_limit": lambda s: str(s.tables_limit),
    "indexes_limit": lambda s: str(s.indexes_limit),
    "sequences_limit": lambda s: str(s.sequences_limit),
    "applications_limit": lambda s: str(s.applications_limit),
    "migrations_table": lambda s: s.migrations_table,
}
PLACEHOLDERS = frozenset({"limit", *SETTING_PLACEHOLDERS})
PLACEHOLDER_RE = re.compile(r"\{([a-z_]+)\}")
UNIT_SUFFIXES = {"seconds": "_seconds", "bytes": "_bytes", "ratio": "_ratio"}


def _version_num(value: object, *, upper: bool) -> object:
    """Accept a major version (`13`, `9.6`) or a server_version_num (`130000`). A major as an
    upper bound means its last minor release, so `max_version: 12` includes 12.22."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return value
    try:
        number = float(value)
    except ValueError:
        return value
    if not math.isfinite(number) or number < 1:
        return value  # left to the field's own checks (finite, >= 90000)
    if number >= 100:
        return int(number)
    major_text, _, minor_text = f"{number:g}".partition(".")
    major, minor = int(major_text), int(minor_text or 0)
    if major >= 10:
        return major * 10000 + (9999 if upper else 0)
    return major * 10000 + minor * 100 + (99 if upper else 0)


MinVersion = Annotated[
    int, BeforeValidator(lambda v: _version_num(v, upper=False)), Field(ge=90000)
]
MaxVersion = Annotated[int, BeforeValidator(lambda v: _version_num(v, upper=True)), Field(ge=90000)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricColumn(_Strict):
    """A result column that becomes a metric."""

    column: str = Field(pattern=NAME_RE)
    name: str | None = Field(None, pattern=NAME_RE, description="default: <entry>_<column>")
    type: Literal["gauge", "counter"]
    help: str = Field(min_length=1)
    unit: Literal["seconds", "bytes", "ratio"] | None = None
    scale: float = Field(
        1.0, allow_inf_nan=False, description="multiplier to the base unit, e.g. 0.001 for ms"
    )


class Variant(_Strict):
    """SQL for a range of server versions (inclusive bounds, server_version_num)."""

    min_version: MinVersion | None = None
    max_version: MaxVersion | None = None
    sql: str = Field(min_length=1)

    def matches(self, version: int) -> bool:
        return (self.min_version is None or version >= self.min_version) and (
            self.max_version is None or version <= self.max_version
        )


class QuerySpec(_Strict):
    """One queries.yaml entry; `name` is its key in the file."""

    name: str = Field(pattern=NAME_RE)
    help: str = Field(min_length=1)
    scope: Literal["cluster", "database"] = "cluster"
    sql: str | None = Field(None, min_length=1)
    min_version: MinVersion | None = None
    max_version: MaxVersion | None = None
    variants: list[Variant] | None = None
    labels: list[Annotated[str, Field(pattern=NAME_RE)]] = []
    metrics: list[MetricColumn] = Field(min_length=1)
    requires_extension: str | None = None
    requires_table: str | None = Field(
        None, description="run only where this table exists and is readable (placeholders ok)"
    )
    ttl: Duration = Field(0.0, allow_inf_nan=False)
    timeout: Duration = Field(5.0, gt=0, allow_inf_nan=False)
    limit: int | None = Field(None, ge=1, le=2**31 - 1)  # it goes into SQL as LIMIT
    enabled: bool = Field(True, description="off-by-default entries are turned on in settings")
    background: bool = Field(
        False, description="run every `ttl` on its own; scrapes never wait for it"
    )
    left_out: bool = Field(
        False, description="SQL returns `total_rows`; export <name>_left_out = rows not returned"
    )
    source: str = Field("", exclude=True, description="file:line, set by the loader")

    @model_validator(mode="after")
    def _check(self) -> QuerySpec:
        if (self.sql is None) == (self.variants is None):
            raise ValueError("give either `sql` or `variants`, not both and not neither")
        if self.variants is not None and (self.min_version or self.max_version):
            raise ValueError("with `variants`, put min_version/max_version on each variant")
        if "datname" in self.labels and self.scope == "database":
            raise ValueError("scope `database` adds the `datname` label itself; remove it")
        columns = [m.column for m in self.metrics] + self.labels
        duplicates = sorted({c for c in columns if columns.count(c) > 1})
        if duplicates:
            raise ValueError(f"column used twice (as label or metric): {', '.join(duplicates)}")
        for metric in self.metrics:
            name = self.metric_name(metric)
            suffix = UNIT_SUFFIXES.get(metric.unit or "")
            if suffix and suffix not in name:
                raise ValueError(f"metric {name} has unit {metric.unit} but no {suffix} in it")
        for variant in self.all_variants():
            unknown = set(PLACEHOLDER_RE.findall(variant.sql)) - PLACEHOLDERS
            if unknown:
                raise ValueError(f"unknown placeholder(s) in sql: {', '.join(sorted(unknown))}")
            if self.background and self.ttl <= 0:
                raise ValueError("a background entry needs a ttl (its interval)")
            if "{limit}" in variant.sql and self.limit is None:
                raise ValueError("sql uses {limit} but the entry has no `limit`")
        ranges = self.all_variants()
        for i, a in enumerate(ranges):
            for b in ranges[i + 1 :]:
                lo = max(a.min_version or 0, b.min_version or 0)
                hi = min(a.max_version or 10**9, b.max_version or 10**9)
                if lo <= hi:
                    raise ValueError(f"variants overlap for server version {lo}")
        return self

    def metric_name(self, metric: MetricColumn) -> str:
        return metric.name or f"{self.name}_{metric.column}"

    def all_variants(self) -> list[Variant]:
        if self.variants is not None:
            return list(self.variants)
        assert self.sql is not None
        return [Variant(min_version=self.min_version, max_version=self.max_version, sql=self.sql)]

    def variant_for(self, version: int) -> Variant | None:
        return next((v for v in self.all_variants() if v.matches(version)), None)

    def left_out_name(self) -> str:
        return f"{self.name}_left_out"

    def label_names(self) -> list[str]:
        return [*self.labels, "datname"] if self.scope == "database" else list(self.labels)


def placeholder_values(settings: PostgresSettings) -> dict[str, str]:
    """What the settings' placeholders stand for on this server."""
    return {name: value(settings) for name, value in SETTING_PLACEHOLDERS.items()}


def fill_placeholders(sql: str, values: dict[str, str]) -> str:
    return PLACEHOLDER_RE.sub(lambda m: values.get(m.group(1), m.group(0)), sql)


def default_queries_path() -> Path:
    """The queries.yaml shipped with the package (wheel) or at the project root (checkout)."""
    package = Path(__file__).resolve().parents[2]
    packaged = package / "queries.yaml"
    return packaged if packaged.exists() else package.parent / "queries.yaml"


def _specs_from(doc: YamlDocument) -> tuple[list[QuerySpec], list[Problem]]:
    if doc.data is None:
        return [], [doc.problem((), "file is empty; expected a mapping of query name to entry")]
    if not isinstance(doc.data, dict):
        return [], [doc.problem((), "expected a mapping of query name to entry")]
    specs: list[QuerySpec] = []
    problems: list[Problem] = []
    for name, body in doc.data.items():
        if not isinstance(body, dict):
            problems.append(doc.problem((name,), "expected a mapping (help, sql, metrics, ...)"))
            continue
        where = f"{doc.source}:{doc.line_of((name,))}"
        try:
            specs.append(QuerySpec.model_validate({**body, "name": name, "source": where}))
        except ValidationError as exc:
            problems.extend(doc.problems_from(exc, prefix=(name,)))
    return specs, problems


def _check_unique_metrics(specs: Iterable[QuerySpec]) -> list[Problem]:
    """Each metric name may be made by exactly one entry, across all loaded files."""
    owner: dict[str, QuerySpec] = {}
    problems = []
    for spec in specs:
        names = [spec.metric_name(m) for m in spec.metrics]
        for name in names + ([spec.left_out_name()] if spec.left_out else []):
            first = owner.setdefault(name, spec)
            if first is not spec:
                problems.append(
                    Problem(
                        spec.source,
                        f"{spec.name}.metrics",
                        f"metric {name} is already defined by {first.name} at {first.source}",
                    )
                )
    return problems


def load_queries(paths: Iterable[Path]) -> list[QuerySpec]:
    """Load and validate one or more queries files; raises ConfigError listing every problem."""
    specs: list[QuerySpec] = []
    problems: list[Problem] = []
    seen: dict[str, QuerySpec] = {}
    for path in paths:
        try:
            doc = load_yaml_file(path)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        file_specs, file_problems = _specs_from(doc)
        problems.extend(file_problems)
        for spec in file_specs:
            if spec.name in seen:
                first = seen[spec.name]
                problems.append(
                    Problem(spec.source, spec.name, f"query name already used at {first.source}")
                )
                continue
            seen[spec.name] = spec
            specs.append(spec)
    problems.extend(_check_unique_metrics(specs))
    if problems:
        raise ConfigError(problems)
    return specs


def load_specs(settings: Settings) -> list[QuerySpec]:
    """The queries the settings ask for: built-in (or replaced) plus extra files, minus those
    turned off, plus the off-by-default ones turned on."""
    main = settings.queries_file or default_queries_path()
    specs = load_queries([main, *settings.extra_queries_files])
    if settings.postgres is None:
        return specs
    enable, disable = settings.postgres.enable_queries, settings.postgres.disable_queries
    unknown = sorted(set(enable + disable) - {s.name for s in specs})
    if unknown:
        raise ConfigError(
            [Problem("postgres.enable_queries/disable_queries", "", f"no such query: {n}")
             for n in unknown]
        )
    return [s for s in specs if (s.enabled or s.name in enable) and s.name not in disable]
