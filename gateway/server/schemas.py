"""The gateway's own request bodies (strict, unknown fields refused) and the shapes of its other answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.models import Job, Result


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class SubmitRequest(_Strict):
    provider: str | None = Field(default=None, min_length=1, max_length=100)
    route: str | None = Field(default=None, min_length=1, max_length=100)
    input: dict[str, Any]
    webhook_url: str | None = Field(default=None, min_length=1, max_length=2048)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_target(self) -> SubmitRequest:
        if (self.provider is None) == (self.route is None):
            raise ValueError("give exactly one of provider or route")
        return self


class AttachRequest(_Strict):
    provider: str = Field(min_length=1, max_length=100)
    vendor_ref: dict[str, Any]
    webhook_url: str | None = Field(default=None, min_length=1, max_length=2048)
    metadata: dict[str, Any] = Field(default_factory=dict)


class ProblemDetail(BaseModel):
    """application/problem+json (RFC 9457) with the contract's `code`."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    code: str
    detail: str | None = None
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None
    job: Job | None = None


class JobList(BaseModel):
    data: list[Job]
    next_cursor: str | None


class Transition(BaseModel):
    version: int
    at: str
    state: str
    vendor_status: str | None
    stage: str | None
    progress: int | None


class TransitionList(BaseModel):
    data: list[Transition]


class ProviderInfo(BaseModel):
    name: str
    display_name: str
    capabilities: dict[str, Any]
    mapping: dict[str, str]


class ProviderList(BaseModel):
    providers: list[ProviderInfo]


class Health(BaseModel):
    status: str = Field(examples=["ok"])


class OperatorJob(Job):
    """A job as the operator sees it: the tenant's Job plus whose it is and where its webhooks go."""

    tenant: str
    webhook_url: str | None = None


class OperatorJobList(BaseModel):
    data: list[OperatorJob]
    next_cursor: str | None


class Delivery(BaseModel):
    """One webhook event of a job and how its delivery went."""

    id: str
    version: int
    url: str
    attempts: int
    delivered_at: datetime | None
    next_attempt_at: datetime | None
    last_error: str | None


class OperatorJobDetail(BaseModel):
    job: OperatorJob
    transitions: list[Transition]
    result: Result | None
    deliveries: list[Delivery]


class BreakerState(BaseModel):
    state: Literal["closed", "open", "half_open"]
    #: consecutive failed vendor requests
    failures: int
    #: seconds until an open breaker lets a trial request through
    retry_in_s: float


class VendorErrorNote(BaseModel):
    at: datetime
    error: str
    message: str


class ProviderHealth(BaseModel):
    name: str
    display_name: str
    breaker: BreakerState
    recent_errors: list[VendorErrorNote]
    #: how late the last polls started after they were due (seconds): the worst of the recent ones
    poll_lag_s: float | None
    #: jobs this gateway is watching for the provider now
    watching: int
    #: jobs of this provider in the store, by state (every state present)
    jobs: dict[str, int]


class ProviderHealthList(BaseModel):
    providers: list[ProviderHealth]


def pydantic_errors(exc: Any) -> list[dict[str, Any]]:
    """pydantic ValidationError -> the contract's [{loc, msg}] with loc rooted at body."""
    return [{"loc": ["body", *[p for p in e["loc"]]], "msg": e["msg"]} for e in exc.errors()]
