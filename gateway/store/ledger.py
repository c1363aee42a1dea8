"""The usage ledger's rules, shared by every backend: the entry of a job's attempt that has just ended (what the
vendor reported in the kept result, how long the attempt took), and its row.

A backend writes the entry in the same transaction as the transition that ends the attempt (the job's terminal
transition, or the move to its next attempt on fail-over), under a uniqueness constraint on (job, attempt), so an
attempt is counted exactly once: never again after a restart, a repeated result fetch, or on another replica."""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from gateway.models import Usage
from gateway.states import CanonicalStatus
from gateway.store.columns import ENUM, FLAG, JSON, TIME, Columns
from gateway.store.records import JobRecord, UsageEntry, to_utc

log = logging.getLogger("gateway.store")

#: money is kept in millionths of the currency's unit: sums are exact
MICROS = Decimal(1_000_000)

LEDGER = Columns(
    UsageEntry,
    "job_id", "attempt", "tenant", "provider", "route", ("shadow", FLAG), ("state", ENUM), ("final", FLAG),
    "error_code", ("submitted_us", "submitted_at", TIME), ("finished_us", "finished_at", TIME), "input_tokens",
    "output_tokens", "cost_micros", "currency", ("units", JSON),
)  # fmt: skip
LEDGER_FIELDS = LEDGER.names
LEDGER_COLUMNS = LEDGER.sql
#: the ledger row of an entry (LEDGER_FIELDS order), and the entry of a row
entry_values = LEDGER.values
entry_from = LEDGER.from_row


def to_micros(amount: float | Decimal | str) -> int:
    """An amount of money in millionths (rounded half to even past the sixth decimal)."""
    return int((Decimal(str(amount)) * MICROS).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def from_micros(micros: int) -> Decimal:
    return Decimal(micros) / MICROS


def attempt_started(job: JobRecord) -> datetime:
    """When the job's current attempt was submitted (its entry in `attempts`; the job's creation without one)."""
    raw = job.attempts[-1].get("submitted_at") if job.attempts else None
    if isinstance(raw, str):
        try:
            return to_utc(datetime.fromisoformat(raw))
        except ValueError:
            pass
    return job.created_at


def reported_usage(result: dict[str, Any] | None) -> Usage | None:
    """The usage in a kept result, or None (none reported, or not readable as the Usage shape)."""
    raw = (result or {}).get("usage")
    if not isinstance(raw, dict):
        return None
    try:
        return Usage.model_validate(raw)
    except ValidationError:
        log.warning("a kept result's usage is not readable; the ledger records none for it")
        return None


def usage_entry(
    job: JobRecord, ended: CanonicalStatus, at: datetime, result: dict[str, Any] | None, *, final: bool
) -> UsageEntry:
    """The ledger entry of the job's current attempt, ended at `at` in `ended` (with the usage of `result`)."""
    usage = reported_usage(result)
    cost_micros = currency = None
    if usage is not None and usage.cost is not None:
        try:
            cost_micros, currency = to_micros(usage.cost.amount), usage.cost.currency
        except (InvalidOperation, ValueError):
            log.warning("job %s: the vendor's cost is not a finite amount; the ledger records none", job.id)
    if cost_micros is not None and cost_micros < 0:
        cost_micros = currency = None
    units: dict[str, float] = {}
    for count in usage.units if usage is not None else []:
        units[count.unit.value] = units.get(count.unit.value, 0.0) + count.quantity
    started = attempt_started(job)
    return UsageEntry(
        job_id=job.id,
        attempt=job.attempt,
        tenant=job.tenant,
        provider=job.provider,
        route=job.route,
        shadow=job.shadow_of is not None,
        state=ended.state,
        final=final,
        error_code=ended.error.code if ended.error is not None else None,
        submitted_at=started,
        finished_at=max(to_utc(at), started),
        input_tokens=usage.input_tokens if usage is not None else None,
        output_tokens=usage.output_tokens if usage is not None else None,
        cost_micros=cost_micros,
        currency=currency,
        units=units,
    )
