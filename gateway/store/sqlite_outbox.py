"""The SQLite store's webhook outbox, delivery log, disabled endpoints and tenant event stream (mixed into
`SqliteStore`; the contracts are the `Store` methods')."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from gateway.store.base import StoreError
from gateway.store.codec import event_id, now_us, to_us
from gateway.store.common_outbox import DISABLE_ENDPOINT, ENABLE_ENDPOINT, NEXT_TRY, job_events_from, log_try, moved
from gateway.store.common_sql import PENDING
from gateway.store.records import (
    DeliveryAttempt,
    DisabledEndpoint,
    JobEvent,
    JobRecord,
    OutboxEvent,
)
from gateway.store.rows import (
    ENDPOINT,
    JOB_COLUMNS,
    OUTBOX_COLUMNS,
    event_from,
    job_from,
)
from gateway.store.sqlite_db import SqliteDatabase, dialect

#: how an event is made pending and due again (a retry or a replay)
_REQUEUE = (
    "UPDATE outbox SET delivered_us = NULL, failed_us = NULL, failure = NULL, next_attempt_us = ?, step = 0, "
    "generation = generation + 1 WHERE id = ?"
)


def queue_event(conn: sqlite3.Connection, job: JobRecord, at_us: int) -> None:
    """Queue the webhook of the job's current version: pending and due at `at_us`, or failed at once when the
    tenant's endpoint at that URL is disabled."""
    disabled = conn.execute(
        "SELECT reason FROM disabled_endpoints WHERE tenant = ? AND url = ?", (job.tenant, job.webhook_url)
    ).fetchone()
    conn.execute(
        f"INSERT INTO outbox ({OUTBOX_COLUMNS}) VALUES (?, ?, ?, ?, ?, 0, ?, NULL, NULL, ?, 0, 0, ?, ?)",
        (
            event_id(job.id, job.version),
            job.id,
            job.version,
            job.tenant,
            job.webhook_url,
            at_us,
            now_us(),
            None if disabled is None else at_us,
            None if disabled is None else disabled["reason"],
        ),
    )


def _event(conn: sqlite3.Connection, event_id: str) -> OutboxEvent | None:
    row = conn.execute(f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE id = ?", (event_id,)).fetchone()
    return None if row is None else event_from(row)


def _requeue(conn: sqlite3.Connection, event: OutboxEvent, now_us_: int) -> OutboxEvent:
    conn.execute(dialect(ENABLE_ENDPOINT), (event.tenant, event.url))
    conn.execute(_REQUEUE, (now_us_, event.id))
    requeued = _event(conn, event.id)
    assert requeued is not None
    return requeued


class SqliteOutbox:
    """The outbox half of `SqliteStore`: every method runs one transaction on `db`."""

    db: SqliteDatabase

    async def due_events(self, now: datetime, limit: int = 100) -> list[OutboxEvent]:
        rows = await self.db.read(
            lambda conn: conn.execute(
                f"SELECT {OUTBOX_COLUMNS} FROM outbox AS o WHERE {PENDING} AND next_attempt_us <= ? "
                "AND NOT EXISTS (SELECT 1 FROM outbox AS p WHERE p.job_id = o.job_id "
                "AND p.delivered_us IS NULL AND p.failed_us IS NULL AND p.seq < o.seq) "
                "ORDER BY next_attempt_us, seq LIMIT ?",
                (to_us(now), limit),
            ).fetchall()
        )
        return [event_from(row) for row in rows]

    async def _record_attempt(
        self, attempt: DeliveryAttempt, generation: int, next_attempt_at: datetime | None, failure: str | None
    ) -> bool:
        return await self.db.write(self._write_attempt, attempt, generation, next_attempt_at, failure)

    @staticmethod
    def _write_attempt(
        conn: sqlite3.Connection,
        attempt: DeliveryAttempt,
        generation: int,
        next_attempt_at: datetime | None,
        failure: str | None,
    ) -> bool:
        event = _event(conn, attempt.event_id)
        if event is None:
            raise StoreError(f"no webhook event {attempt.event_id!r}")
        number = conn.execute(dialect(NEXT_TRY), (event.id,)).fetchone()[0]
        for sql, args in log_try(attempt, number):
            conn.execute(dialect(sql), args)
        if event.generation != generation or event.state != "pending":
            return False
        assignments, params = moved(attempt, next_attempt_at, failure)
        conn.execute(dialect(f"UPDATE outbox SET {assignments}, step = step + 1 WHERE id = $1"), (event.id, *params))
        return True

    async def disable_endpoint(self, endpoint: DisabledEndpoint) -> list[str]:
        return await self.db.write(self._disable_endpoint, endpoint)

    @staticmethod
    def _disable_endpoint(conn: sqlite3.Connection, endpoint: DisabledEndpoint) -> list[str]:
        at_us = to_us(endpoint.disabled_at)
        conn.execute(dialect(DISABLE_ENDPOINT), ENDPOINT.values(endpoint))
        rows = conn.execute(
            f"UPDATE outbox SET failed_us = ?, failure = ? WHERE tenant = ? AND url = ? AND {PENDING} RETURNING id",
            (at_us, endpoint.reason, endpoint.tenant, endpoint.url),
        ).fetchall()
        return sorted(row[0] for row in rows)

    async def retry_event(self, event_id: str, *, tenant: str, now: datetime) -> OutboxEvent | None:
        return await self.db.write(self._retry_event, event_id, tenant, to_us(now))

    @staticmethod
    def _retry_event(conn: sqlite3.Connection, event_id: str, tenant: str, now: int) -> OutboxEvent | None:
        event = _event(conn, event_id)
        if event is None or event.tenant != tenant:
            return None
        return _requeue(conn, event, now)

    async def replay_events(self, job_id: str, *, from_version: int, now: datetime) -> list[OutboxEvent]:
        return await self.db.write(self._replay_events, job_id, from_version, to_us(now))

    @staticmethod
    def _replay_events(conn: sqlite3.Connection, job_id: str, from_version: int, now: int) -> list[OutboxEvent]:
        rows = conn.execute(
            f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE job_id = ? AND version >= ? ORDER BY version",
            (job_id, from_version),
        ).fetchall()
        return [_requeue(conn, event_from(row), now) for row in rows]

    # the event stream of a tenant

    async def _job_events(self, sql: str, params: list[Any]) -> list[JobEvent]:
        def read(conn: sqlite3.Connection) -> list[JobEvent]:
            rows = conn.execute(dialect(sql), params).fetchall()
            ids = sorted({row["job_id"] for row in rows})
            jobs = {
                job.id: job
                for job in (
                    job_from(row)
                    for row in conn.execute(
                        f"SELECT {JOB_COLUMNS} FROM jobs WHERE id IN ({', '.join('?' * len(ids))})", ids
                    ).fetchall()
                )
            }
            return job_events_from(rows, jobs)

        return await self.db.read(read)

    async def last_event_seq(self) -> int:
        return await self.db.read(
            lambda conn: conn.execute("SELECT coalesce(max(seq), 0) FROM transitions").fetchone()[0]
        )
