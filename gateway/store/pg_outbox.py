"""The PostgreSQL store's webhook outbox, delivery log, disabled endpoints and tenant event stream (mixed into
`PostgresStore`; the contracts are the `Store` methods'). Each event is leased to one replica at a time while it is
being delivered; the outcome of a try moves it on only while that replica still holds it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.store.base import StoreError
from gateway.store.codec import to_us
from gateway.store.common_outbox import DISABLE_ENDPOINT, ENABLE_ENDPOINT, NEXT_TRY, job_events_from, log_try, moved
from gateway.store.common_sql import PENDING
from gateway.store.pg_db import PgDatabase, Session
from gateway.store.records import DeliveryAttempt, DisabledEndpoint, JobEvent, OutboxEvent
from gateway.store.rows import (
    ENDPOINT,
    JOB_COLUMNS,
    OUTBOX_COLUMNS,
    event_from,
    job_from,
)

_SELECT_EVENT = f"SELECT {OUTBOX_COLUMNS}, lease_owner FROM outbox WHERE id = $1"
_OUTBOX_RETURNING = ", ".join(f"outbox.{c.strip()}" for c in OUTBOX_COLUMNS.split(","))
#: a retry or replay: pending, due at $2, a fresh schedule, a new generation, no lease
_REQUEUE = (
    "UPDATE outbox SET delivered_us = NULL, failed_us = NULL, failure = NULL, next_attempt_us = $2, step = 0, "
    f"generation = generation + 1, lease_owner = NULL WHERE id = $1 RETURNING {OUTBOX_COLUMNS}"
)


async def _requeue(tx: Session, event: OutboxEvent, now_us: int) -> OutboxEvent:
    await tx.execute(ENABLE_ENDPOINT, event.tenant, event.url)
    row = await tx.fetchrow(_REQUEUE, event.id, now_us)
    assert row is not None
    return event_from(row)


class PgOutbox:
    """The outbox half of `PostgresStore`."""

    db: PgDatabase
    replica: str
    _lease_us: int

    async def due_events(self, now: datetime, limit: int = 100) -> list[OutboxEvent]:
        rows = await self.db.fetch(
            "WITH due AS (SELECT o.seq FROM outbox AS o WHERE o.delivered_us IS NULL AND o.failed_us IS NULL "
            "AND o.next_attempt_us <= $1 "
            "AND (o.lease_owner IS NULL OR o.lease_owner = $3 OR o.lease_until_us < gw_now_us()) "
            "AND NOT EXISTS (SELECT 1 FROM outbox AS p WHERE p.job_id = o.job_id AND p.delivered_us IS NULL "
            "AND p.failed_us IS NULL AND p.seq < o.seq) ORDER BY o.next_attempt_us, o.seq LIMIT $2 "
            "FOR UPDATE OF o SKIP LOCKED) "
            "UPDATE outbox SET lease_owner = $3, lease_until_us = gw_now_us() + $4 FROM due "
            f"WHERE outbox.seq = due.seq RETURNING outbox.seq, {_OUTBOX_RETURNING}",
            to_us(now),
            limit,
            self.replica,
            self._lease_us,
        )
        rows.sort(key=lambda row: (row["next_attempt_us"], row["seq"]))
        return [event_from(row) for row in rows]

    async def _record_attempt(
        self, attempt: DeliveryAttempt, generation: int, next_attempt_at: datetime | None, failure: str | None
    ) -> bool:
        async with self.db.tx() as tx:
            row = await tx.fetchrow(_SELECT_EVENT + " FOR UPDATE", attempt.event_id)
            if row is None:
                raise StoreError(f"no webhook event {attempt.event_id!r}")
            event = event_from(row)
            number = await tx.fetchval(NEXT_TRY, event.id)
            for sql, args in log_try(attempt, number):
                await tx.execute(sql, *args)
            held = row["lease_owner"] in (None, self.replica)
            if event.generation != generation or event.state != "pending" or not held:
                return False
            assignments, params = moved(attempt, next_attempt_at, failure)
            await tx.execute(
                f"UPDATE outbox SET {assignments}, step = step + 1, lease_owner = NULL WHERE id = $1", event.id, *params
            )
            return True

    async def disable_endpoint(self, endpoint: DisabledEndpoint) -> list[str]:
        at_us = to_us(endpoint.disabled_at)
        async with self.db.tx() as tx:
            await tx.execute(DISABLE_ENDPOINT, *ENDPOINT.values(endpoint))
            rows = await tx.fetch(
                f"UPDATE outbox SET failed_us = $1, failure = $2, lease_owner = NULL "
                f"WHERE tenant = $3 AND url = $4 AND {PENDING} RETURNING id",
                at_us,
                endpoint.reason,
                endpoint.tenant,
                endpoint.url,
            )
        return sorted(row["id"] for row in rows)

    async def retry_event(self, event_id: str, *, tenant: str, now: datetime) -> OutboxEvent | None:
        async with self.db.tx() as tx:
            row = await tx.fetchrow(_SELECT_EVENT + " FOR UPDATE", event_id)
            if row is None or row["tenant"] != tenant:
                return None
            return await _requeue(tx, event_from(row), to_us(now))

    async def replay_events(self, job_id: str, *, from_version: int, now: datetime) -> list[OutboxEvent]:
        async with self.db.tx() as tx:
            rows = await tx.fetch(
                f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE job_id = $1 AND version >= $2 ORDER BY version FOR UPDATE",
                job_id,
                from_version,
            )
            return [await _requeue(tx, event_from(row), to_us(now)) for row in rows]

    # the event stream of a tenant

    async def _job_events(self, sql: str, params: list[Any]) -> list[JobEvent]:
        async with self.db.tx() as tx:
            rows = await tx.fetch(sql, *params)
            jobs = {
                row["id"]: job_from(row)
                for row in await tx.fetch(
                    f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ANY($1::text[])", list({r["job_id"] for r in rows})
                )
            }
        return job_events_from(rows, jobs)

    async def last_event_seq(self) -> int:
        return int(await self.db.fetchval("SELECT last FROM event_seq WHERE id = 1"))
