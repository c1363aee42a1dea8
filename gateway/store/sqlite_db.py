"""The SQLite connection plumbing of `SqliteStore`: one worker thread owning the write connection (every write
one immediate transaction), a reader thread with its own connection (WAL readers never wait for the writer),
the pragmas, and the schema migration at open."""

from __future__ import annotations

import asyncio
import functools
import re
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from gateway.store.base import StoreError
from gateway.store.sqlite_schema import migrate

T = TypeVar("T")

SYNCHRONOUS = ("normal", "full", "extra")

_NUMBERED = re.compile(r"\$(\d+)")


@functools.lru_cache(maxsize=256)
def dialect(sql: str) -> str:
    """A statement written with PostgreSQL's numbered placeholders (`$1`) in SQLite's (`?1`): the statements both
    backends share are written once, in that form."""
    return _NUMBERED.sub(r"?\1", sql)


class SqliteDatabase:
    """One SQLite file (or `:memory:`), driven from the event loop without blocking it."""

    def __init__(self, path: str, *, synchronous: str = "normal", busy_timeout_s: float = 10.0) -> None:
        sync = synchronous.lower()
        if sync not in SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {', '.join(SYNCHRONOUS)}, not {synchronous!r}")
        self.path = path
        self.synchronous = sync
        self.busy_timeout_s = busy_timeout_s
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        #: reads run on their own thread and connection, so API reads do not queue behind the watcher's writes;
        #: an in-memory database has only the one connection
        self._reader: ThreadPoolExecutor | None = None
        self._rconn: sqlite3.Connection | None = None

    @property
    def is_open(self) -> bool:
        return self._executor is not None

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise StoreError("the store is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError("the store is closed")
        return self._conn

    def _transaction(self, begin: str, fn: Callable[..., T], *args: Any) -> T:
        return self._transaction_on(self._connection(), begin, fn, *args)

    def _read_transaction(self, fn: Callable[..., T], *args: Any) -> T:
        conn = self._rconn if self._rconn is not None else self._connection()
        return self._transaction_on(conn, "BEGIN", fn, *args)

    @staticmethod
    def _transaction_on(conn: sqlite3.Connection, begin: str, fn: Callable[..., T], *args: Any) -> T:
        conn.execute(begin)
        try:
            result = fn(conn, *args)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return result

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """The one way to change the database: `fn(conn, *args)` in one immediate transaction."""
        return await self._call(self._transaction, "BEGIN IMMEDIATE", fn, *args)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(conn, *args)` on one consistent snapshot, on the reader thread."""
        if self._reader is None:
            return await self._call(self._transaction, "BEGIN", fn, *args)
        return await asyncio.get_running_loop().run_in_executor(self._reader, self._read_transaction, fn, *args)

    # one statement each, in the form both backends share (`dialect`): reads on the reader thread, `execute` a write

    async def fetch(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        return await self.read(lambda conn: conn.execute(dialect(sql), args).fetchall())

    async def fetchrow(self, sql: str, *args: Any) -> sqlite3.Row | None:
        row: sqlite3.Row | None = await self.read(lambda conn: conn.execute(dialect(sql), args).fetchone())
        return row

    async def fetchval(self, sql: str, *args: Any) -> Any:
        row = await self.fetchrow(sql, *args)
        return None if row is None else row[0]

    async def execute(self, sql: str, *args: Any) -> None:
        await self.write(lambda conn: conn.execute(dialect(sql), args))

    # lifecycle

    async def open(self) -> None:
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gateway-store")
        try:
            await self._call(self._connect)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise
        if self.path != ":memory:":
            self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gateway-store-read")
            await asyncio.get_running_loop().run_in_executor(self._reader, self._connect_reader)

    def _connect_reader(self) -> None:
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys=ON")
        self._rconn = conn

    def _connect(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            if self.path != ":memory:":
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StoreError(f"cannot use WAL journal mode on {self.path} (got {mode!r})")
            conn.execute(f"PRAGMA synchronous={self.synchronous.upper()}")
            conn.execute("PRAGMA foreign_keys=ON")
            self._conn = conn
            self._transaction("BEGIN IMMEDIATE", migrate)
        except BaseException:
            self._conn = None
            conn.close()
            raise

    async def close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            await asyncio.get_running_loop().run_in_executor(reader, self._disconnect_reader)
            reader.shutdown(wait=False)
        executor, self._executor = self._executor, None
        if executor is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(executor, self._disconnect)
        finally:
            executor.shutdown(wait=False)

    def _disconnect_reader(self) -> None:
        conn, self._rconn = self._rconn, None
        if conn is not None:
            conn.close()

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
