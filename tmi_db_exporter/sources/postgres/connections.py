"""The connections of one server: one long-lived session per monitored database.

A database that cannot be reached is tried again only after a backoff of its own, so that one
refusing database is neither knocked on by every collector of every scrape nor holds up the
others. The main database (`settings.database`) is the one the probe and cluster-wide queries
use.
"""

from __future__ import annotations

import asyncio

import psycopg

from tmi_db_exporter.config.settings import PostgresSettings
from tmi_db_exporter.core.contract import PartialFailure, Unavailable
from tmi_db_exporter.core.reachability import Backoff
from tmi_db_exporter.sources.postgres.session import Session


class Connections:
    """The open sessions of one server by database name, opened on first use."""

    def __init__(self, settings: PostgresSettings) -> None:
        self.settings = settings
        self._sessions: dict[str, Session] = {}
        self._connect_locks: dict[str, asyncio.Lock] = {}
        self._backoffs: dict[str, Backoff] = {}  # only databases whose last connect failed
        self._closed = False

    @property
    def main(self) -> Session | None:
        """The main connection as it is now (None when not open; it may be broken)."""
        return self._sessions.get(self.settings.database)

    def with_extension(self, extension: str) -> Session | None:
        """Any working connection whose database has `extension` installed."""
        for session in self._sessions.values():
            if extension in session.extensions and not session.broken:
                return session
        return None

    def _connecting(self, dbname: str) -> asyncio.Lock:
        """Held while deciding whether to connect to `dbname` and doing it: the collectors of
        a scrape run concurrently, and each must not open its own connection (all but one
        would be left over)."""
        return self._connect_locks.setdefault(dbname, asyncio.Lock())

    async def _connect(self, dbname: str) -> Session:
        session = await Session.open(self.settings, dbname)
        if self._closed:  # closed while it was connecting: it would be left over
            await session.close()
            raise asyncio.CancelledError("the connections are closed")
        self._sessions[dbname] = session
        return session

    async def reopen_main(self) -> Session:
        """The main connection, opened again unless a collector just did. No backoff here: the
        probe's reachability decides when to try."""
        async with self._connecting(self.settings.database):
            main = self.main
            if main is None or main.broken:
                main = await self._connect(self.settings.database)
            return main

    async def session(self, dbname: str) -> Session | None:
        """A connection to `dbname`, or None while it cannot be reached (retried later)."""
        session = self._sessions.get(dbname)
        if session is not None and not session.broken:
            return session
        async with self._connecting(dbname):
            session = self._sessions.get(dbname)
            if session is not None and not session.broken:  # another collector connected
                return session
            if session is not None:
                await self.drop(session)
            retry = self._backoffs.get(dbname)
            if retry is not None and retry.waiting:
                return None
            try:
                session = await self._connect(dbname)
            except (psycopg.Error, OSError) as exc:
                self._backoffs.setdefault(dbname, Backoff()).failed()
                raise PartialFailure([], f"cannot connect to database {dbname}: {exc}") from None
            self._backoffs.pop(dbname, None)
            return session

    async def main_session(self) -> Session:
        """The main connection; lost since the probe (a cut link), it is opened again."""
        main = await self.session(self.settings.database)
        if main is None:  # reconnecting is backing off: the next probe says pg_up 0
            raise Unavailable
        return main

    async def drop(self, session: Session) -> None:
        if self._sessions.get(session.dbname) is session:
            del self._sessions[session.dbname]
        await session.close()

    async def drop_idle(self, broken_main: Session) -> None:
        """After the main connection broke (restarted server or cut link) the other connections
        are gone as well; drop the idle ones now rather than failing a collector on each of
        them later."""
        for session in list(self._sessions.values()):
            if session is broken_main or not session.busy:
                await self.drop(session)

    async def keep_only(self, dbnames: list[str]) -> None:
        """Close the connections to databases no longer monitored."""
        for gone in set(self._sessions) - set(dbnames):
            session = self._sessions.get(gone)  # (dropped meanwhile by a failing collector)
            if session is not None:
                await self.drop(session)

    async def close(self) -> None:
        """Close every connection at once: each close is bounded, and a busy one waits."""
        self._closed = True
        sessions, self._sessions = list(self._sessions.values()), {}
        await asyncio.gather(*(session.close() for session in sessions))
