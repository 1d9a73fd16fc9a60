"""Running a queries.yaml entry: once on the server, or in every monitored database.

On each connection the entry runs the SQL variant for that server's version, with its
placeholders filled in from the settings; an entry whose extension or table is missing there is
skipped quietly. Its label and metric columns become samples, and `left_out` counts the rows
over its limit.
"""

from __future__ import annotations

import psycopg

from tmi_db_exporter.config.settings import PostgresSettings
from tmi_db_exporter.core.contract import PartialFailure, Skipped
from tmi_db_exporter.core.exposition import Family
from tmi_db_exporter.core.stopping import check_stop
from tmi_db_exporter.sources.postgres.connections import Connections
from tmi_db_exporter.sources.postgres.discovery import Databases
from tmi_db_exporter.sources.postgres.probe import Probe
from tmi_db_exporter.sources.postgres.queries import (
    QuerySpec,
    fill_placeholders,
    placeholder_values,
)
from tmi_db_exporter.sources.postgres.session import QueryFailed, QueryResult, Session, to_number

Labels = tuple[tuple[str, str], ...]


class SpecRunner:
    """Collects queries.yaml entries on the connections of one server."""

    def __init__(
        self,
        settings: PostgresSettings,
        probe: Probe,
        connections: Connections,
        databases: Databases,
    ) -> None:
        self.placeholders = placeholder_values(settings)
        self._main_database = settings.database
        self._probe = probe
        self._connections = connections
        self._databases = databases

    async def collect(self, spec: QuerySpec) -> list[Family]:
        await self._probe.require_up()
        families = [Family(spec.metric_name(m), m.help, m.type) for m in spec.metrics]
        if spec.left_out:
            families.append(
                Family(spec.left_out_name(), f"Rows of {spec.name} not exported (over the limit).")
            )
        if spec.scope == "cluster":
            await self._collect_cluster(spec, families)
        else:
            await self._collect_databases(spec, families)
        return families

    async def _collect_cluster(self, spec: QuerySpec, families: list[Family]) -> None:
        session = await self._cluster_session(spec)
        if spec.requires_table and not await self._readable(session, spec):
            raise Skipped(f"table {spec.requires_table} is missing or not readable")
        await self._run(spec, session, families, ())

    async def _collect_databases(self, spec: QuerySpec, families: list[Family]) -> None:
        """In every database that has what the entry needs; one that fails does not hide the
        others (PartialFailure keeps what was collected)."""
        errors = []
        for dbname in list(self._databases.names):
            check_stop()  # between databases: a closing target does not wait for all of them
            try:
                session = await self._connections.session(dbname)
                if session is None:
                    continue
                if spec.requires_extension and spec.requires_extension not in session.extensions:
                    continue
                if spec.requires_table and not await self._readable(session, spec):
                    continue
                await self._run(spec, session, families, (("datname", dbname),))
            except PartialFailure as exc:
                errors.append(str(exc))
            except psycopg.Error as exc:
                errors.append(f"{dbname}: {exc}".strip())
        if errors:
            raise PartialFailure(families, "; ".join(errors))

    async def _readable(self, session: Session, spec: QuerySpec) -> bool:
        """Whether `requires_table` exists here and we may read it (checked on every run:
        an application may create it at any time, e.g. its migrations on first start)."""
        assert spec.requires_table is not None
        table = fill_placeholders(spec.requires_table, self.placeholders).replace("'", "''")
        result = await session.query(
            f"SELECT coalesce(has_table_privilege(to_regclass('{table}'), 'SELECT'), false)",
            spec.timeout,
        )
        return bool(result.rows[0][0])

    async def _cluster_session(self, spec: QuerySpec) -> Session:
        """The main connection, or for an extension's view any database that has it."""
        main = await self._connections.main_session()
        if not spec.requires_extension or spec.requires_extension in main.extensions:
            return main
        session = self._connections.with_extension(spec.requires_extension)
        if session is not None:
            return session
        raise Skipped(
            f"extension {spec.requires_extension} is not installed",
            hint=f"(to enable: load it in shared_preload_libraries where it needs that, and run"
            f" CREATE EXTENSION {spec.requires_extension} in database {self._main_database})",
        )

    async def _run(
        self, spec: QuerySpec, session: Session, families: list[Family], extra_labels: Labels
    ) -> None:
        variant = spec.variant_for(session.version)
        if variant is None:
            raise Skipped(f"no SQL for server version {session.version}")
        values = self.placeholders | ({"limit": str(spec.limit)} if spec.limit else {})
        sql = fill_placeholders(variant.sql, values)
        try:
            result = await self._query(spec, session, sql)
        except psycopg.OperationalError:
            raise
        except psycopg.Error as exc:  # syntax, missing relation or column, privileges, ...
            message = f"{type(exc).__name__}: {exc}".strip()
            raise QueryFailed(f"{spec.source}: {spec.name}.sql: {message}") from None
        _add_samples(spec, result, families, extra_labels)

    async def _query(self, spec: QuerySpec, session: Session, sql: str) -> QueryResult:
        """The entry's rows, on a new connection when the one it had went stale."""
        try:
            return await session.query(sql, spec.timeout, spec.limit)
        except psycopg.OperationalError:
            # A statement or lock timeout leaves the connection fine: keep it (reconnecting
            # would churn connections, and may fail on a server that is out of slots).
            if not session.broken:
                raise
            # The link was lost since the last probe (a cut, a server restart): one new
            # connection and one more try, so that a collector running on its own schedule
            # does not fail on a connection that is merely stale.
            await self._connections.drop(session)
            fresh = await self._connections.session(session.dbname)
            if fresh is None:
                raise
            return await fresh.query(sql, spec.timeout, spec.limit)


def _add_samples(
    spec: QuerySpec, result: QueryResult, families: list[Family], extra_labels: Labels
) -> None:
    """The entry's label and metric columns as samples, and the rows over its limit."""
    index = {name: i for i, name in enumerate(result.columns)}
    wanted = spec.labels + [m.column for m in spec.metrics]
    missing = [c for c in wanted + (["total_rows"] if spec.left_out else []) if c not in index]
    if missing:
        raise QueryFailed(
            f"{spec.source}: {spec.name}.sql: the query returned no column(s)"
            f" {', '.join(missing)}"
        )
    label_columns = [(name, index[name]) for name in spec.labels]
    metric_columns = [
        (index[m.column], m.scale, family)
        for m, family in zip(spec.metrics, families[: len(spec.metrics)], strict=True)
    ]
    for row in result.rows:
        labels = tuple(
            (name, "" if row[column] is None else str(row[column]))
            for name, column in label_columns
        ) + extra_labels
        for column, scale, family in metric_columns:
            value = to_number(row[column])
            if value is not None:
                family.add(value * scale, labels)
    if spec.left_out:
        total = result.rows[0][index["total_rows"]] if result.rows else 0
        families[-1].add(max(0, total - len(result.rows)), extra_labels)
