"""The PostgreSQL connection plumbing of `PostgresStore`: an asyncpg pool, every statement counted as a database
round trip (the benchmarks report them), connection failures turned into `StoreUnavailable` (the API answers 503
and the caller retries; the pool reconnects by itself once the server is back), the migration at open, and one
dedicated connection that LISTENs for other replicas' notifications and reconnects after an outage."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from gateway.store.base import StoreError, StoreUnavailable
from gateway.store.pg_schema import migrate

log = logging.getLogger("gateway.store")

#: errors that mean "the database cannot be reached right now" (as opposed to a bug or a constraint)
UNREACHABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
)
#: seconds to wait for a pooled connection (or a new one) before giving up on a request
ACQUIRE_TIMEOUT_S = 5.0
#: the longest one statement may run
COMMAND_TIMEOUT_S = 30.0
#: pause between reconnection attempts of the listening connection
RECONNECT_S = 0.5
#: how often the listening connection checks that it is still connected (a closed connection is noticed at once;
#: this catches a silently dead one)
LISTEN_CHECK_S = 30.0


@contextlib.contextmanager
def reachable() -> Iterator[None]:
    """Turn a connection failure into StoreUnavailable."""
    try:
        yield
    except UNREACHABLE as exc:
        raise StoreUnavailable(f"database unreachable: {type(exc).__name__}") from exc


async def _keep_session(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """A connection goes back to the pool as it is: the store leaves no session state behind (no SET, no LISTEN
    on pooled connections, advisory locks only per transaction), so asyncpg's default reset query would be one
    more round trip per statement for nothing. (An open transaction is still rolled back by the pool.)"""


class Session:
    """Statements on one connection (in or out of a transaction), each counted as a round trip."""

    def __init__(self, conn: PoolConnectionProxy[asyncpg.Record], db: PgDatabase) -> None:
        self.conn = conn
        self.db = db

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        self.db.round_trips += 1
        return list(await self.conn.fetch(sql, *args))

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        self.db.round_trips += 1
        return await self.conn.fetchrow(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        self.db.round_trips += 1
        return await self.conn.fetchval(sql, *args)

    async def execute(self, sql: str, *args: Any) -> str:
        self.db.round_trips += 1
        return str(await self.conn.execute(sql, *args))


class PgDatabase:
    """One PostgreSQL database, reached through a pool."""

    def __init__(self, dsn: str, *, pool_min: int = 1, pool_max: int = 10) -> None:
        self.dsn = dsn
        self.pool_min = pool_min
        self.pool_max = pool_max
        self.pool: asyncpg.Pool | None = None
        #: statements sent (BEGIN and COMMIT included): the benchmarks' "database round trips"
        self.round_trips = 0

    @property
    def is_open(self) -> bool:
        return self.pool is not None

    async def open(self) -> None:
        if self.pool is not None:
            return
        with reachable():
            pool = await asyncpg.create_pool(
                self.dsn,
                min_size=self.pool_min,
                max_size=self.pool_max,
                timeout=ACQUIRE_TIMEOUT_S,
                command_timeout=COMMAND_TIMEOUT_S,
                reset=_keep_session,
            )
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
        except BaseException:
            await pool.close()
            raise
        self.pool = pool

    async def close(self) -> None:
        pool, self.pool = self.pool, None
        if pool is not None:
            with contextlib.suppress(*UNREACHABLE):
                await asyncio.wait_for(pool.close(), ACQUIRE_TIMEOUT_S)
            pool.terminate()

    def _pool(self) -> asyncpg.Pool:
        if self.pool is None:
            raise StoreError("the store is not open")
        return self.pool

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[Session]:
        """A pooled connection (each statement commits on its own)."""
        pool = self._pool()
        with reachable():
            async with pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as conn:
                yield Session(conn, self)

    @contextlib.asynccontextmanager
    async def tx(self) -> AsyncIterator[Session]:
        """A pooled connection in one transaction (committed when the block ends, rolled back on an error)."""
        async with self.session() as session:
            self.round_trips += 2  # BEGIN and COMMIT (or ROLLBACK)
            async with session.conn.transaction():
                yield session

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        async with self.session() as s:
            return await s.fetch(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        async with self.session() as s:
            return await s.fetchrow(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        async with self.session() as s:
            return await s.fetchval(sql, *args)

    async def execute(self, sql: str, *args: Any) -> str:
        async with self.session() as s:
            return await s.execute(sql, *args)

    # notifications

    async def listen(
        self,
        channel: str,
        on_payload: Callable[[str], None],
        on_connected: Callable[[bool], Awaitable[None] | None],
    ) -> None:
        """LISTEN on `channel` until cancelled, reconnecting after a failure. `on_connected(again)` runs each time
        the listener is (re)connected: after a reconnection, notifications sent meanwhile are lost, so readers
        must re-read the store."""
        first = True
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self.dsn, timeout=ACQUIRE_TIMEOUT_S)
                closed = asyncio.Event()
                conn.add_termination_listener(lambda _c, event=closed: event.set())
                self.round_trips += 1
                await conn.add_listener(channel, lambda _c, _pid, _ch, payload: on_payload(payload))
                outcome = on_connected(not first)
                if outcome is not None:
                    await outcome
                if not first:
                    log.info("listening for store notifications again")
                first = False
                while not closed.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(closed.wait(), LISTEN_CHECK_S)
                    if not closed.is_set():
                        self.round_trips += 1
                        await conn.fetchval("SELECT 1", timeout=LISTEN_CHECK_S)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("store notifications interrupted (%s); reconnecting", type(exc).__name__)
            finally:
                if conn is not None and not conn.is_closed():
                    conn.terminate()
            await asyncio.sleep(RECONNECT_S)
