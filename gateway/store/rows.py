"""Rows <-> the store's records, for both SQL backends (the PostgreSQL schema mirrors the SQLite one): the column
lists, the queries both build alike (`$n` placeholders), and the conversions; `INSERT_JOB`, `UPDATE_JOB`,
`INSERT_TRANSITION` and `SAVE_CHECK` are SQLite's own statements (`pg_rows` has PostgreSQL's)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from gateway.states import CanonicalStatus, StaleReason, State
from gateway.store.codec import decode_cursor, dumps, encode_cursor, from_us, from_us_or_none, to_us
from gateway.store.columns import STATUS, TIME, TIME_OR_NONE, Columns, Row
from gateway.store.records import (
    Check,
    DeliveryAttempt,
    DisabledEndpoint,
    EventDeliveries,
    JobRecord,
    OutboxEvent,
    TransitionRecord,
)


def mark(n: int) -> str:
    """The n-th placeholder of a statement both backends share (SQLite reads `$n` as `?n`: `sqlite_db.dialect`)."""
    return f"${n}"


def placeholders(n: int) -> str:
    """The placeholders of n values, `$1` to `$n`."""
    return ", ".join(mark(i) for i in range(1, n + 1))


def equal_to(params: list[Any], **columns: Any) -> list[str]:
    """The conditions `column = $n` of each column given a value (None: no condition), each value appended to
    `params` (so numbered after what it holds)."""
    where = []
    for column, value in columns.items():
        if value is not None:
            params.append(value)
            where.append(f"{column} = {mark(len(params))}")
    return where


JOB_FIELDS = (
    "id", "tenant", "provider", "state", "terminal", "version", "created_us", "updated_us", "finished_us",
    "checked_us", "stale", "webhook_url", "route", "result_available", "anomalies", "vendor_ref", "status",
    "metadata", "attempts", "eta_us", "stale_reason", "private_ref", "shadow_of", "shadow",
)  # fmt: skip
JOB_COLUMNS = ", ".join(JOB_FIELDS)
#: columns a job never changes after it is created
_JOB_FIXED = ("id", "tenant", "created_us")
INSERT_JOB = f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES ({', '.join(':' + f for f in JOB_FIELDS)})"
UPDATE_JOB = f"UPDATE jobs SET {', '.join(f'{f} = :{f}' for f in JOB_FIELDS if f not in _JOB_FIXED)} WHERE id = :id"
TRANSITION = Columns(
    TransitionRecord,
    "job_id", "version", ("at_us", "at", TIME), "state", "vendor_status", "stage", "progress", ("status", STATUS),
)  # fmt: skip
TRANSITION_COLUMNS = TRANSITION.sql
transition_from = TRANSITION.from_row
OUTBOX = Columns(
    OutboxEvent,
    "id", "job_id", "version", "tenant", "url", "attempts", ("next_attempt_us", "next_attempt_at", TIME),
    ("delivered_us", "delivered_at", TIME_OR_NONE), "last_error", ("created_us", "created_at", TIME_OR_NONE), "step",
    "generation", ("failed_us", "failed_at", TIME_OR_NONE), "failure",
)  # fmt: skip
OUTBOX_COLUMNS = OUTBOX.sql
event_from = OUTBOX.from_row
#: a new transition (TRANSITION_COLUMNS, then tenant and provider), with the next store-wide sequence number (the
#: single writer makes it commit-ordered)
INSERT_TRANSITION = (
    f"INSERT INTO transitions ({TRANSITION_COLUMNS}, tenant, provider, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
    "(SELECT coalesce(max(seq), 0) + 1 FROM transitions))"
)
ATTEMPT = Columns(
    DeliveryAttempt, "event_id", "number", ("at_us", "at", TIME), "duration_ms", "status", "error", "message"
)
ATTEMPT_COLUMNS = ATTEMPT.sql
attempt_values = ATTEMPT.values
attempt_from = ATTEMPT.from_row
ENDPOINT = Columns(DisabledEndpoint, "tenant", "url", ("disabled_us", "disabled_at", TIME), "reason", "event_id")
ENDPOINT_COLUMNS = ENDPOINT.sql
endpoint_from = ENDPOINT.from_row


def job_values(job: JobRecord) -> dict[str, Any]:
    """The column values of a job."""
    return {
        "id": job.id,
        "tenant": job.tenant,
        "provider": job.provider,
        "state": job.status.state.value,
        "terminal": int(job.status.terminal),
        "version": job.version,
        "created_us": to_us(job.created_at),
        "updated_us": to_us(job.updated_at),
        "finished_us": None if job.finished_at is None else to_us(job.finished_at),
        "checked_us": None if job.checked_at is None else to_us(job.checked_at),
        "stale": int(job.stale),
        "webhook_url": job.webhook_url,
        "route": job.route,
        "result_available": int(job.result_available),
        "anomalies": job.anomalies,
        "vendor_ref": dumps(job.vendor_ref),
        "status": job.status.model_dump_json(),
        "metadata": dumps(job.metadata),
        "attempts": dumps(job.attempts),
        "eta_us": None if job.estimated_finish_at is None else to_us(job.estimated_finish_at),
        "stale_reason": None if job.stale_reason is None else job.stale_reason.model_dump_json(),
        "private_ref": job.private_ref,
        "shadow_of": job.shadow_of,
        "shadow": job.shadow,
    }


def job_from(row: Row) -> JobRecord:
    return JobRecord(
        id=row["id"],
        tenant=row["tenant"],
        provider=row["provider"],
        vendor_ref=json.loads(row["vendor_ref"]),
        status=CanonicalStatus.model_validate_json(row["status"]),
        version=row["version"],
        created_at=from_us(row["created_us"]),
        updated_at=from_us(row["updated_us"]),
        finished_at=from_us_or_none(row["finished_us"]),
        checked_at=from_us_or_none(row["checked_us"]),
        stale=bool(row["stale"]),
        metadata=json.loads(row["metadata"]),
        webhook_url=row["webhook_url"],
        route=row["route"],
        attempts=json.loads(row["attempts"]),
        result_available=bool(row["result_available"]),
        anomalies=row["anomalies"],
        estimated_finish_at=from_us_or_none(row["eta_us"]),
        stale_reason=None if row["stale_reason"] is None else StaleReason.model_validate_json(row["stale_reason"]),
        private_ref=row["private_ref"],
        shadow_of=row["shadow_of"],
        shadow=row["shadow"],
    )


def transition_values(job: JobRecord, at_us: int) -> tuple[Any, ...]:
    """The row of the job's current version in `transitions` (TRANSITION_COLUMNS order)."""
    status = job.status
    return (
        job.id,
        job.version,
        at_us,
        status.state.value,
        status.vendor_status,
        status.stage,
        status.progress,
        status.model_dump_json(),
    )


def _state(state: State | str | None) -> str | None:
    """A state filter's value; ValueError for a word that is no state."""
    return None if state is None else State(state).value


def list_query(
    tenant: str | None,
    *,
    state: State | str | None,
    provider: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[str, list[Any]]:
    """The SELECT of one page of jobs, newest first (one tenant's, or every tenant's when `tenant` is None), one row
    more than `limit` to tell whether a page follows, and its parameters (numbered `$n`, as every statement both
    backends share). ValueError for a bad limit, state or cursor."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    params: list[Any] = []
    where = equal_to(params, tenant=tenant, state=_state(state), provider=provider)
    if cursor is not None:
        params.extend(decode_cursor(cursor))
        where.append(f"(created_us, id) < ({mark(len(params) - 1)}, {mark(len(params))})")
    params.append(limit + 1)
    sql = (
        f"SELECT {JOB_COLUMNS} FROM jobs {'WHERE ' if where else ''}{' AND '.join(where)} "
        f"ORDER BY created_us DESC, id DESC LIMIT {mark(len(params))}"
    )
    return sql, params


def job_page(rows: Sequence[Row], limit: int) -> tuple[list[JobRecord], str | None]:
    """The jobs of a page read by `list_query`, and the cursor of the next page (None on the last)."""
    jobs = [job_from(row) for row in rows[:limit]]
    if len(rows) <= limit:
        return jobs, None
    last = rows[limit - 1]
    return jobs, encode_cursor(last["created_us"], last["id"])


#: one freshness note (`Store.save_checks`): a confirmation sets checked_at and the estimate and clears stale and
#: its reason; a stale note sets stale and its reason, keeping checked_at (unless it has one) and the estimate
SAVE_CHECK = (
    "UPDATE jobs SET stale = ?1, stale_reason = ?2, checked_us = coalesce(?3, checked_us), "
    "eta_us = CASE WHEN ?1 THEN eta_us ELSE ?4 END WHERE id = ?5"
)


def check_values(check: Check) -> tuple[int, str | None, int | None, int | None, str]:
    """SAVE_CHECK's parameters for one note (also the PostgreSQL store's, column by column)."""
    reason = check.reason.model_dump_json() if check.stale and check.reason is not None else None
    checked = None if check.checked_at is None else to_us(check.checked_at)
    eta = None if check.stale or check.estimated_finish_at is None else to_us(check.estimated_finish_at)
    return int(check.stale), reason, checked, eta, check.job_id


def events_query(
    tenant: str,
    *,
    after: int,
    provider: str | None,
    state: State | str | None,
    limit: int,
) -> tuple[str, list[Any]]:
    """The SELECT of a tenant's transitions numbered above `after` (the event stream), in number order, and its
    parameters (numbered `$n`). ValueError for a bad limit or state."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    params: list[Any] = [tenant, after]
    where = [f"tenant = {mark(1)}", f"seq > {mark(2)}", *equal_to(params, provider=provider, state=_state(state))]
    params.append(limit)
    sql = (
        f"SELECT seq, {TRANSITION_COLUMNS} FROM transitions WHERE {' AND '.join(where)} "
        f"ORDER BY seq LIMIT {mark(len(params))}"
    )
    return sql, params


#: every webhook event of a job ($1) by version, each with its tries (`deliveries_from`), in one statement
JOB_DELIVERIES = (
    f"SELECT {OUTBOX_COLUMNS}, {ATTEMPT_COLUMNS} FROM outbox LEFT JOIN delivery_attempts ON event_id = id "
    "WHERE job_id = $1 ORDER BY version, number"
)


def deliveries_from(rows: Sequence[Row]) -> list[EventDeliveries]:
    """Each event read by JOB_DELIVERIES with its own tries (no tries: a row without an attempt)."""
    events: dict[str, OutboxEvent] = {}
    attempts: dict[str, list[DeliveryAttempt]] = {}
    for row in rows:
        if row["id"] not in events:
            events[row["id"]], attempts[row["id"]] = event_from(row), []
        if row["event_id"] is not None:
            attempts[row["id"]].append(attempt_from(row))
    return [EventDeliveries(event=event, attempts=attempts[key]) for key, event in events.items()]
