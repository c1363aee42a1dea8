"""Records the store tests build: a job, a status, the time they start from; tries of webhook events."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.states import CanonicalStatus, State
from gateway.store import JobRecord, Store
from gateway.store.records import DeliveryAttempt
from gateway.store.sqlite_schema import MIGRATIONS

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


def job(
    job_id: str,
    *,
    tenant: str = "t1",
    provider: str = "camb",
    created_at: datetime = T0,
    state: State = State.QUEUED,
    webhook_url: str | None = None,
) -> JobRecord:
    return JobRecord(
        id=job_id,
        tenant=tenant,
        provider=provider,
        vendor_ref={"task_id": job_id},
        status=CanonicalStatus(state=state),
        created_at=created_at,
        updated_at=created_at,
        webhook_url=webhook_url,
    )


def status(state: State = State.RUNNING, **kw: Any) -> CanonicalStatus:
    return CanonicalStatus(state=state, **kw)


async def delivered(store: Store, event_id: str, at: datetime) -> bool:
    """Log a 2xx try of the event (at its current generation)."""
    event = await store.get_event(event_id)
    assert event is not None, event_id
    attempt = DeliveryAttempt(event_id=event_id, number=1, at=at, duration_ms=3, status=204)
    return await store.record_attempt(attempt, generation=event.generation)


async def failed(store: Store, event_id: str, at: datetime, retry_at: datetime, message: str = "HTTP 500") -> bool:
    """Log a failed (HTTP 500) try of the event, due again at `retry_at`."""
    event = await store.get_event(event_id)
    assert event is not None, event_id
    attempt = DeliveryAttempt(
        event_id=event_id, number=1, at=at, duration_ms=3, status=500, error="http_status", message=message
    )
    return await store.record_attempt(attempt, generation=event.generation, next_attempt_at=retry_at)


def sqlite_at_version(path: Path, version: int) -> sqlite3.Connection:
    """A new SQLite store file at an old schema `version` (its first migrations applied, as a gateway of that
    version left it), open for the test to fill; the test commits and closes it before a store opens the file."""
    conn = sqlite3.connect(path)
    for statements in MIGRATIONS[:version]:
        for statement in statements:
            conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {version:d}")
    return conn
