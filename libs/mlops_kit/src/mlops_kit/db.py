"""SQLAlchemy 2 engines and sessions: one request = one transaction."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from alembic import command
from alembic.config import Config
from sqlalchemy import DateTime, Engine, Select, TypeDecorator, create_engine, event, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

log = logging.getLogger("mlops.db")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def normalize_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@dataclass(frozen=True)
class DbTimeouts:
    """How long the database may take, so a stalled server costs a request seconds, not minutes.

    `statement` is PostgreSQL's own statement_timeout; a server that does not answer at all
    (frozen, partitioned) cannot enforce it, so the client gives up after `statement + grace`
    and drops the connection."""

    connect: float = 5.0  # the whole connection handshake (psycopg's minimum is 2 s)
    statement: float = 30.0
    pool: float = 10.0  # waiting for a free pooled connection
    grace: float = 1.0

    @property
    def io(self) -> float:
        return self.statement + self.grace

    def connect_args(self) -> dict[str, Any]:
        return {"connect_timeout": max(2, math.ceil(self.connect))}

    def with_statement_timeout(self, cparams: dict[str, Any]) -> dict[str, Any]:
        """The connection parameters plus the statement timeout, after any `options` of the URL."""
        option = f"-c statement_timeout={max(1, round(self.statement * 1000))}"
        return {**cparams, "options": f"{cparams.get('options') or ''} {option}".strip()}


class _WaitBound:
    """Every round trip of a connection ends within `io_timeout` seconds, or the connection is
    closed (its state is unknown) and the call fails with OperationalError, which SQLAlchemy takes
    for a disconnect: the pool drops the connection and the request answers 503."""

    io_timeout: float | None = None

    def _gave_up(self) -> psycopg.OperationalError:
        self.pgconn.finish()  # type: ignore[attr-defined]
        return psycopg.OperationalError(f"the database did not answer within {self.io_timeout:g} s")


class BoundedConnection(_WaitBound, psycopg.Connection[Any]):
    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        if timeout is not None:  # psycopg's own bounded waits keep their meaning
            return super().wait(gen, interval, timeout)
        try:
            return super().wait(gen, interval, self.io_timeout)
        except psycopg.errors._WaitTimeout:
            raise self._gave_up() from None


class BoundedAsyncConnection(_WaitBound, psycopg.AsyncConnection[Any]):
    async def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        if timeout is not None:
            return await super().wait(gen, interval, timeout)
        try:
            return await super().wait(gen, interval, self.io_timeout)
        except psycopg.errors._WaitTimeout:
            raise self._gave_up() from None


def _bounded_connect(timeouts: DbTimeouts) -> Callable[..., BoundedConnection]:
    def connect(_dialect: Any, _record: Any, cargs: Any, cparams: dict[str, Any]) -> BoundedConnection:
        conn = BoundedConnection.connect(*cargs, **timeouts.with_statement_timeout(cparams))
        conn.io_timeout = timeouts.io
        return conn

    return connect


def _bounded_async_connect(timeouts: DbTimeouts) -> Callable[..., Any]:
    async def connect(*args: Any, **kwargs: Any) -> BoundedAsyncConnection:
        conn = await BoundedAsyncConnection.connect(*args, **timeouts.with_statement_timeout(kwargs))
        conn.io_timeout = timeouts.io
        return conn

    return connect


def make_engine(
    url: str, *, pool_size: int = 10, immediate: bool = False, timeouts: DbTimeouts | None = None
) -> Engine:
    url = normalize_url(url)
    timeouts = timeouts or DbTimeouts()
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "isolation_level": None},
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_timeout=timeouts.pool,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling is off; we issue BEGIN ourselves, and writers take
        # the write lock up front so a read→write upgrade can never fail with SQLITE_BUSY.
        begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql(begin))
        return engine
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_timeout=timeouts.pool,
        connect_args=timeouts.connect_args(),
    )
    event.listen(engine, "do_connect", _bounded_connect(timeouts))
    return engine


@dataclass
class Database:
    """A reader and a writer engine (the same engine except on SQLite), and on PostgreSQL an
    async reader for hot paths that must not leave the event loop."""

    url: str
    reader: Engine
    writer: Engine
    async_reader: AsyncEngine | None = None
    timeouts: DbTimeouts = field(default_factory=DbTimeouts)

    @classmethod
    def connect(cls, url: str, pool_size: int = 10, timeouts: DbTimeouts | None = None) -> Database:
        url = normalize_url(url)
        timeouts = timeouts or DbTimeouts()
        writer = make_engine(url, pool_size=pool_size, immediate=True, timeouts=timeouts)
        if url.startswith("sqlite"):
            return cls(url, make_engine(url, pool_size=pool_size, timeouts=timeouts), writer, None, timeouts)
        async_reader = create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,
            pool_timeout=timeouts.pool,
            connect_args={**timeouts.connect_args(), "async_creator_fn": _bounded_async_connect(timeouts)},
        )
        return cls(url, writer, writer, async_reader, timeouts)

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    def session(self, *, write: bool) -> Session:
        return Session(self.writer if write else self.reader, expire_on_commit=False)

    def ping(self) -> None:
        with self.reader.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.writer.dispose()
        if self.reader is not self.writer:
            self.reader.dispose()

    async def adispose(self) -> None:
        if self.async_reader is not None:
            await self.async_reader.dispose()
        self.dispose()


MIGRATION_LOCK = 0x4D4C4F5053  # pg_advisory_lock key (per database): one migrating process at a time


@contextmanager
def _migration_lock(url: str) -> Iterator[None]:
    """Replicas starting together migrate one after the other (the others then find the schema at
    head): a PostgreSQL advisory lock, or a lock file beside a SQLite database."""
    if url.startswith("postgresql"):
        engine = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
                try:
                    yield
                finally:
                    conn.exec_driver_sql("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
        finally:
            engine.dispose()
        return
    with sqlite_file_lock(url, "migrate"):
        yield


@contextmanager
def sqlite_file_lock(url: str, name: str) -> Iterator[None]:
    """An exclusive lock shared by every process using the SQLite database at `url`: a lock file
    beside it (``<db>.<name>-lock``), held until the block ends. No-op for other databases and
    in-memory SQLite."""
    path = url.split("///", 1)[-1] if url.startswith("sqlite") else ""
    if not path or path == ":memory:":
        yield
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.{name}-lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_migrations(url: str, script_location: Path) -> None:
    url = normalize_url(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    with _migration_lock(url):
        command.upgrade(cfg, "head")


def count_rows(session: Session, query: Select[*tuple[Any, ...]]) -> int:
    """How many rows `query` returns (its ORDER BY dropped): the `total` of a page."""
    return session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0


def lock_key(session: Session, scope: str, key: str | int = "", *, shared: bool = False) -> None:
    """Hold a lock on (scope, key) until this transaction ends: the way to serialize a
    read-modify-write (one Production version, the next schema version) across replicas. Take it
    before reading what the write depends on, so those reads see every earlier holder's commit.
    `shared` holders exclude only exclusive ones (many runs logged while none is deleted).

    PostgreSQL: a transaction-level advisory lock on a stable 64-bit hash of the pair. SQLite:
    a write transaction holds the database's write lock from its ``BEGIN IMMEDIATE``
    (`Database.session(write=True)`), which is made to happen here if it has not yet."""
    if session.get_bind().dialect.name != "postgresql":
        session.connection()
        return
    digest = hashlib.blake2b(f"{scope}\0{key}".encode(), digest_size=8).digest()
    lock = int.from_bytes(digest, "big", signed=True)
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    session.execute(text(f"SELECT {function}(:k)"), {"k": lock})


def on_rollback(session: Session, callback: Callable[[], None]) -> None:
    """Run ``callback`` if this request's transaction does not commit (e.g. remove an artifact)."""
    session.info.setdefault("on_rollback", []).append(callback)


def after_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run ``callback`` once this request's transaction has committed."""
    session.info.setdefault("after_commit", []).append(callback)


def run_callbacks(session: Session, key: str) -> None:
    for callback in session.info.pop(key, []):
        try:
            callback()
        except Exception:
            log.exception("%s callback failed", key)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime column on every backend (SQLite hands back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value
