"""Engines, migrations on open, and transactions.

``open_store(url)`` accepts ``sqlite:///path.db`` (WAL journal, ``synchronous=NORMAL``,
foreign keys on) or ``postgresql://user@host:port/db`` (driven by psycopg 3), creates the
engine and upgrades the schema to the latest Alembic revision.

SQLite upgrades a read lock to a write lock only if no other writer committed in between, so
write transactions start with ``BEGIN IMMEDIATE`` (``Store.write``) and wait on the busy
timeout instead of failing; reads use ``Store.read`` (a deferred transaction).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, case, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from steppe.core.errors import ConfigError
from steppe.store.schema import usage_records

BUSY_TIMEOUT_MS = 30000


def sqlite_url(path: Path) -> str:
    """The URL of an SQLite database file."""
    return f"sqlite:///{path}"


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` and pick the psycopg 3 driver for them."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    if url.startswith(("sqlite:", "postgresql+psycopg:")):
        return url
    raise ConfigError(url, "", "database URL must start with sqlite:/// or postgresql://")


def make_engine(url: str) -> Engine:
    """An engine for ``url`` with the settings the hub needs."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, pool_size=8, max_overflow=16)
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_size=8, max_overflow=16, pool_pre_ping=True)


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # transactions are begun explicitly in _sqlite_begin
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    """``BEGIN IMMEDIATE`` (a write) or ``BEGIN DEFERRED``, on the driver's own connection: every
    transaction begins here, and SQLAlchemy's ``exec_driver_sql`` costs several times the driver's call."""
    sql = "BEGIN IMMEDIATE" if conn.get_execution_options().get("steppe_write") else "BEGIN DEFERRED"
    driver = conn.connection.driver_connection
    try:
        driver.execute(sql)  # type: ignore[union-attr]
    except sqlite3.Error as exc:  # as SQLAlchemy reports it (OperationalError for a busy database, ...)
        raise DBAPIError.instance(sql, (), exc, sqlite3.Error, dialect=conn.dialect) from exc


def migrate(engine: Engine) -> None:
    """Upgrade the schema to the latest revision (a no-op when it is current)."""
    cfg = Config()
    cfg.set_main_option("script_location", "steppe.store:migrations")
    with engine.connect().execution_options(steppe_write=True) as conn, conn.begin():
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class Store:
    """An engine plus the transactions and dialect-specific statements the hub uses."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        # SQLite has one writer at a time and its busy handler waits by sleeping; queueing this
        # process's writers on a lock instead keeps throughput up under many concurrent requests.
        self._write_lock: AbstractContextManager[object] = (
            threading.Lock() if self.dialect == "sqlite" else contextlib.nullcontext()
        )

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction, committed on success and rolled back on error."""
        with (
            self._write_lock,
            self.engine.connect().execution_options(steppe_write=True) as conn,
            conn.begin(),
        ):
            yield conn

    @contextmanager
    def write_on(self, conn: Connection) -> Iterator[Connection]:
        """A write transaction on ``conn``, a connection its caller keeps open (``GroupCommit``'s, made by
        ``writer``), committed on success and rolled back on error; the same lock as ``write``."""
        with self._write_lock, conn.begin():
            yield conn

    def writer(self) -> Connection:
        """A connection for ``write_on``, kept by its caller (no pool checkout per transaction)."""
        return self.engine.connect().execution_options(steppe_write=True)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def add_usage(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Add usage to usage records, creating them on first use (an upsert).

        Each row has ``job_id, project_id, period, gpu_type, gpu_seconds, it_kwh, facility_kwh,
        carbon_kg, cost_kzt, energy_source, first_s, last_s`` (a ``UsageRecord.row``); GPU-seconds
        and energy add up, the source becomes ``mixed`` when two parts differ.
        """
        if not rows:
            return
        dialect = postgresql if self.dialect == "postgresql" else sqlite
        stmt = dialect.insert(usage_records)
        c, new = usage_records.c, stmt.excluded
        stmt = stmt.on_conflict_do_update(
            index_elements=["job_id", "period", "gpu_type"],
            set_={
                "gpu_seconds": c.gpu_seconds + new.gpu_seconds,
                "it_kwh": c.it_kwh + new.it_kwh,
                "facility_kwh": c.facility_kwh + new.facility_kwh,
                "carbon_kg": c.carbon_kg + new.carbon_kg,
                "cost_kzt": c.cost_kzt + new.cost_kzt,
                "energy_source": case((c.energy_source == new.energy_source, new.energy_source), else_="mixed"),
                "last_s": new.last_s,
            },
        )
        conn.execute(stmt, rows)

    def close(self) -> None:
        self.engine.dispose()


WriteFn = Callable[[Connection], Any]
Outcome = tuple[bool, Any]  # (True, result) or (False, the exception)


class GroupCommit:
    """Runs write functions handed over by many threads in shared transactions (group commit).

    Each ``run(fn)`` returns a future for ``fn(conn)``'s result, set once the transaction that
    ran it has committed. A single thread takes every function waiting, runs them in one
    transaction and commits once, so N concurrent submissions cost one commit, not N. If one
    function raises, the batch is rolled back and each function is run again in its own
    transaction, so only the failing one sees the error.

    ``run_soon(fn)``, for coroutines on an event loop, gathers the functions handed over in one
    turn of that loop and hands them to the thread together, and the thread hands their results
    back together: one crossing between the threads each way per turn, not per function (on a
    loaded machine a crossing costs more CPU than the three inserts of a job). Example: 16
    ``POST /jobs`` handled in one turn cost one hand-over, one transaction and one wake-up of
    the loop. On SQLite the thread keeps one connection for its life; other databases check one
    out per transaction (so the pool's pre-ping still guards against a dropped connection).
    """

    def __init__(self, store: Store, max_batch: int = 256) -> None:
        self.store = store
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[tuple[list[WriteFn], Callable[[list[Outcome]], None]] | None] = (
            queue.SimpleQueue()
        )
        self._gathered: dict[asyncio.AbstractEventLoop, list[tuple[WriteFn, asyncio.Future[Any]]]] = {}
        self._thread = threading.Thread(target=self._serve, name="steppe-group-commit", daemon=True)
        self._thread.start()

    def run(self, fn: WriteFn) -> Future[Any]:
        fut: Future[Any] = Future()
        self._queue.put(([fn], lambda outcomes: _settle(fut, outcomes[0])))
        return fut

    def run_soon(self, fn: WriteFn) -> asyncio.Future[Any]:
        """``run`` from a coroutine: the future of the running event loop, set with the others of its turn."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        gathered = self._gathered.get(loop)
        if gathered is None:
            gathered = self._gathered[loop] = []
            loop.call_soon(self._hand_over, loop)
        gathered.append((fn, fut))
        return fut

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        items = self._gathered.pop(loop)
        futures = [fut for _, fut in items]

        def finish(outcomes: list[Outcome]) -> None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: no one waits for these any more
                loop.call_soon_threadsafe(_settle_all, futures, outcomes)

        self._queue.put(([fn for fn, _ in items], finish))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _serve(self) -> None:
        if self.store.dialect != "sqlite":
            self._serve_with(self.store.write)
            return
        conn = self.store.writer()  # this thread's for its life: a transaction costs no pool checkout
        try:
            self._serve_with(lambda: self.store.write_on(conn))
        finally:
            conn.close()

    def _serve_with(self, write: Callable[[], AbstractContextManager[Connection]]) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            size = len(first[0])
            while size < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)
                    break
                batch.append(item)
                size += len(item[0])
            fns = [fn for fns, _ in batch for fn in fns]
            outcomes: list[Outcome]
            try:
                with write() as conn:
                    outcomes = [(True, fn(conn)) for fn in fns]
            except Exception:
                outcomes = [self._alone(write, fn) for fn in fns]
            at = 0
            for item_fns, finish in batch:
                finish(outcomes[at : at + len(item_fns)])
                at += len(item_fns)

    @staticmethod
    def _alone(write: Callable[[], AbstractContextManager[Connection]], fn: WriteFn) -> Outcome:
        """``fn`` in a transaction of its own (after its batch failed)."""
        try:
            with write() as conn:
                return True, fn(conn)
        except Exception as exc:
            return False, exc


def _settle(fut: Future[Any] | asyncio.Future[Any], outcome: Outcome) -> None:
    if fut.cancelled():
        return
    ok, value = outcome
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(value)


def _settle_all(futures: list[asyncio.Future[Any]], outcomes: list[Outcome]) -> None:
    for fut, outcome in zip(futures, outcomes, strict=True):
        _settle(fut, outcome)


def open_store(url: str) -> Store:
    """Open (and migrate) the store at ``url``."""
    engine = make_engine(url)
    migrate(engine)
    return Store(engine)
