"""The rows of the durable store: jobs, their transitions, pending webhooks and stored artifacts."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NamedTuple

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from gateway.states import CanonicalStatus, StaleReason, State


def to_utc(value: datetime) -> datetime:
    """An aware datetime in UTC; a naive one is refused (it would silently mean local time)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware")
    return value.astimezone(UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(to_utc)]


def iso_z(value: datetime) -> str:
    """An aware datetime as ISO 8601 in UTC with a `Z` (how the API writes times)."""
    return to_utc(value).isoformat().replace("+00:00", "Z")


def iso_z_or_none(value: datetime | None) -> str | None:
    return None if value is None else iso_z(value)


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class JobRecord(_Record):
    """One job as the gateway stores it; `status` is the snapshot at `version`."""

    id: str
    tenant: str
    provider: str
    vendor_ref: dict[str, Any] = Field(default_factory=dict)
    status: CanonicalStatus
    version: int = Field(default=1, ge=1)
    created_at: UtcDatetime
    updated_at: UtcDatetime
    finished_at: UtcDatetime | None = None
    checked_at: UtcDatetime | None = None
    stale: bool = False
    metadata: dict[str, Any] = Field(default_factory=dict)
    webhook_url: str | None = None
    route: str | None = None
    attempts: list[dict[str, Any]] = Field(default_factory=list)
    result_available: bool = False
    anomalies: int = Field(default=0, ge=0)
    #: when the vendor expects the job to finish (its last estimate, from `status.eta_s` when it was read)
    estimated_finish_at: UtcDatetime | None = None
    #: why the snapshot is stale (None when it is not)
    stale_reason: StaleReason | None = None
    #: the provider's private vendor_ref fields, sealed (gateway.refs); never rendered
    private_ref: str | None = None
    #: a shadow job: the id of the primary job whose copy it is (its route's `shadow`)
    shadow_of: str | None = None
    #: a primary job sampled for a shadow run: the id of its shadow job
    shadow: str | None = None

    @property
    def state(self) -> State:
        return self.status.state

    @property
    def terminal(self) -> bool:
        return self.status.terminal

    @property
    def attempt(self) -> int:
        """The number of the job's current vendor attempt (1-based: its place in `attempts`, 1 without any)."""
        return max(1, len(self.attempts))


class TransitionRecord(_Record):
    """One version of a job: when it happened and the full canonical status at that version."""

    job_id: str
    version: int = Field(ge=1)
    at: UtcDatetime
    state: State
    vendor_status: str | None = None
    stage: str | None = None
    progress: int | None = None
    status: CanonicalStatus

    def public(self) -> dict[str, Any]:
        """The entry of `GET /v1/jobs/{id}/transitions` (contract section 2)."""
        return {
            "version": self.version,
            "at": iso_z(self.at),
            "state": self.state.value,
            "vendor_status": self.vendor_status,
            "stage": self.stage,
            "progress": self.progress,
        }


class OutboxEvent(_Record):
    """A webhook delivery of one version of a job; its id is the same on every try. The body is rendered when it
    is sent, from the job and its transition at `version`.

    State: pending (due at `next_attempt_at`), delivered (`delivered_at`), or failed (`failed_at`, `failure`: a
    dead letter, kept and replayable). `attempts` counts every try ever made; `step` the tries of the current
    schedule, which a retry or replay restarts; `generation` grows on each retry or replay, so that the outcome
    of a try started before one does not overwrite it."""

    id: str
    job_id: str
    version: int = Field(ge=1)
    tenant: str
    url: str
    attempts: int = Field(default=0, ge=0)
    next_attempt_at: UtcDatetime
    delivered_at: UtcDatetime | None = None
    last_error: str | None = None
    created_at: UtcDatetime | None = None
    step: int = Field(default=0, ge=0)
    generation: int = Field(default=0, ge=0)
    failed_at: UtcDatetime | None = None
    failure: str | None = None

    @property
    def state(self) -> str:
        """ "pending", "delivered" or "failed"."""
        if self.delivered_at is not None:
            return "delivered"
        return "failed" if self.failed_at is not None else "pending"


class DeliveryAttempt(_Record):
    """One try of a webhook event, as the delivery log shows it. `status` is the receiver's HTTP status when it
    answered; `error` the class of failure otherwise ("timeout", "connection", "refused", "no_secret", ...) or
    "http_status" for a non-2xx answer; `message` says it in words and never names a resolved address."""

    event_id: str
    number: int = Field(ge=1)
    at: UtcDatetime
    duration_ms: int = Field(ge=0)
    status: int | None = None
    error: str | None = None
    message: str | None = None

    @property
    def ok(self) -> bool:
        """The receiver acknowledged the event (2xx)."""
        return self.error is None and self.status is not None and 200 <= self.status < 300


class EventDeliveries(_Record):
    """A webhook event and every try of it, oldest first."""

    event: OutboxEvent
    attempts: list[DeliveryAttempt] = Field(default_factory=list)


class DisabledEndpoint(_Record):
    """A tenant's webhook URL that asked for no more deliveries (410 Gone); re-enabled by a retry or replay."""

    tenant: str
    url: str
    disabled_at: UtcDatetime
    reason: str
    event_id: str | None = None


class JobEvent(_Record):
    """One entry of a tenant's event stream: a job's transition, with the store-wide sequence number `seq`
    (strictly increasing in commit order) and the job's current record (render it at the transition's version)."""

    seq: int = Field(ge=1)
    job: JobRecord
    transition: TransitionRecord


class StoredArtifact(_Record):
    """A job's output file kept by the gateway; `path` is on local disk, ready to be streamed."""

    job_id: str
    content_type: str = "application/octet-stream"
    filename: str | None = None
    size: int = Field(ge=0)
    path: Path


#: (tenant, idempotency key, hash of the request body)
Idempotency = tuple[str, str, str]


class StatusUpdate(NamedTuple):
    """What the vendor said about a job at `checked_at` (`Store.record_status`'s arguments, times in UTC)."""

    status: CanonicalStatus
    checked_at: datetime
    vendor_ref: dict[str, Any] | None = None
    private_ref: str | None = None
    estimated_finish_at: datetime | None = None
    attempts: list[dict[str, Any]] | None = None


class NextAttempt(NamedTuple):
    """Where a job goes on after a fail-over (`Store.next_attempt`'s arguments, `at` in UTC)."""

    provider: str
    vendor_ref: dict[str, Any]
    private_ref: str | None
    attempts: list[dict[str, Any]]
    at: datetime


class Check(NamedTuple):
    """A freshness note about a job whose status did not change (no transition): the vendor confirmed the
    snapshot at `checked_at` with its latest estimate of the finish (`stale` False), or could not be asked or
    could not confirm it, for `reason` (`stale` True, `checked_at` None: the last check stays)."""

    job_id: str
    checked_at: datetime | None
    stale: bool
    reason: StaleReason | None = None
    estimated_finish_at: datetime | None = None


class UsageEntry(_Record):
    """One vendor attempt of a job in the usage ledger (exactly one per job and attempt): whose it was, where it
    ran, how it ended, how long it took, and what the vendor counted for it (None / empty: not reported)."""

    job_id: str
    attempt: int = Field(ge=1)
    tenant: str
    provider: str
    route: str | None = None
    #: the attempt of a shadow job (a copy of a routed job, run to compare vendors)
    shadow: bool = False
    #: how the attempt ended: the job's terminal state, or `failed` for an attempt the job moved on from
    state: State
    #: the job's last attempt (its state is the job's)
    final: bool = True
    error_code: str | None = None
    submitted_at: UtcDatetime
    finished_at: UtcDatetime
    input_tokens: int | None = Field(default=None, ge=0)
    output_tokens: int | None = Field(default=None, ge=0)
    #: the vendor's cost in millionths of `currency` (exact sums)
    cost_micros: int | None = Field(default=None, ge=0)
    currency: str | None = None
    #: what the vendor counted, by unit (characters, words, segments, documents, pages)
    units: dict[str, float] = Field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return max(0.0, (self.finished_at - self.submitted_at).total_seconds())
