"""Records the store tests build: a job, a status, the time they start from."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gateway.states import CanonicalStatus, State
from gateway.store import JobRecord

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
