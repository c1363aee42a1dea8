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
            "at": self.at.isoformat().replace("+00:00", "Z"),
            "state": self.state.value,
            "vendor_status": self.vendor_status,
            "stage": self.stage,
            "progress": self.progress,
        }


class OutboxEvent(_Record):
    """A webhook delivery of one version of a job, waiting to be acknowledged; its id is the same on every try.
    The body is rendered when it is sent, from the job and its transition at `version`."""

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


class StoredArtifact(_Record):
    """A job's output file kept by the gateway; `path` is on local disk, ready to be streamed."""

    job_id: str
    content_type: str = "application/octet-stream"
    filename: str | None = None
    size: int = Field(ge=0)
    path: Path


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
