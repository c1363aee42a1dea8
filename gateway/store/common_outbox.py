"""The webhook outbox's statements and rules that both SQL backends run inside their own transactions (the
`$n` form; SQLite reads it through `sqlite_db.dialect`): logging a try, moving its event on, disabling and
re-enabling an endpoint, and pairing the event stream's transitions with their jobs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from gateway.store.codec import to_us
from gateway.store.columns import Row
from gateway.store.records import DeliveryAttempt, JobEvent, JobRecord
from gateway.store.rows import ATTEMPT, ENDPOINT, placeholders, transition_from

#: the number of an event's ($1) next try
NEXT_TRY = "SELECT coalesce(max(number), 0) + 1 FROM delivery_attempts WHERE event_id = $1"
_INSERT_TRY = f"INSERT INTO delivery_attempts ({ATTEMPT.sql}) VALUES ({placeholders(len(ATTEMPT.names))})"
_COUNT_TRY = "UPDATE outbox SET attempts = attempts + 1, last_error = coalesce($2, last_error) WHERE id = $1"
#: remember a disabled endpoint (ENDPOINT's columns), or update the one remembered
DISABLE_ENDPOINT = (
    f"INSERT INTO disabled_endpoints ({ENDPOINT.sql}) VALUES ({placeholders(len(ENDPOINT.names))}) "
    "ON CONFLICT (tenant, url) DO UPDATE SET disabled_us = excluded.disabled_us, reason = excluded.reason, "
    "event_id = excluded.event_id"
)
#: allow deliveries to the tenant's ($1) endpoint at a URL ($2) again
ENABLE_ENDPOINT = "DELETE FROM disabled_endpoints WHERE tenant = $1 AND url = $2"


def log_try(attempt: DeliveryAttempt, number: int) -> list[tuple[str, tuple[Any, ...]]]:
    """The statements (and their parameters) that log a try as its event's try `number` and count it on the event
    (`last_error` takes a failed try's message)."""
    return [
        (_INSERT_TRY, ATTEMPT.values(attempt.model_copy(update={"number": number}))),
        (_COUNT_TRY, (attempt.event_id, None if attempt.ok else attempt.message)),
    ]


def moved(
    attempt: DeliveryAttempt, next_attempt_at: datetime | None, failure: str | None
) -> tuple[str, list[int | str]]:
    """How a try moves its event on (`record_attempt`): the outbox columns to set, numbered from `$2` (`$1` is the
    event's id), and their values."""
    at_us = to_us(attempt.at)
    if attempt.ok:
        return "delivered_us = $2", [at_us]
    if failure is not None:
        return "failed_us = $2, failure = $3", [at_us, failure]
    assert next_attempt_at is not None
    return "next_attempt_us = $2", [to_us(next_attempt_at)]


def job_events_from(rows: Sequence[Row], jobs: Mapping[str, JobRecord]) -> list[JobEvent]:
    """The events read by `events_query`, each with its job (`jobs` by id)."""
    return [JobEvent(seq=row["seq"], job=jobs[row["job_id"]], transition=transition_from(row)) for row in rows]
