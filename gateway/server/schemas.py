"""The gateway's own request bodies (strict, unknown fields refused) and the shapes of its other answers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from gateway.config import ServerConfig
from gateway.models import Job, Result

_DEFAULTS = ServerConfig()
#: the configured limits a request model reads from its validation context, and their defaults
METADATA_LIMITS = {
    "max_metadata_bytes": float(_DEFAULTS.max_metadata_bytes),
    "max_metadata_depth": float(_DEFAULTS.max_metadata_depth),
    "max_metadata_keys": float(_DEFAULTS.max_metadata_keys),
}


def metadata_shape(value: Any) -> tuple[int, int]:
    """(nesting depth, keys at all levels) of a JSON value; an object or array is one level. Iterative."""
    deepest, keys = 0, 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            keys += len(item)
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in item)
    return deepest, keys


def _bounded_metadata(value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
    """Metadata is kept with the job and shown on every read of it: bound its depth, keys and size."""
    context = info.context if isinstance(info.context, Mapping) else {}
    limits = {name: int(context.get(name, default)) for name, default in METADATA_LIMITS.items()}
    depth, keys = metadata_shape(value)
    if depth > limits["max_metadata_depth"]:
        raise ValueError(f"may nest at most {limits['max_metadata_depth']} levels deep")
    if keys > limits["max_metadata_keys"]:
        raise ValueError(f"may hold at most {limits['max_metadata_keys']} keys in all")
    try:
        size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode())
    except (ValueError, RecursionError):
        raise ValueError("must be JSON with finite numbers and UTF-8 text") from None
    if size > limits["max_metadata_bytes"]:
        raise ValueError(f"may be at most {limits['max_metadata_bytes']} bytes as compact JSON")
    return value


Metadata = Annotated[
    dict[str, Any],
    AfterValidator(_bounded_metadata),
    Field(
        description="your own data, kept with the job and shown on every read of it; bounded in depth, keys "
        "at all levels and size (the server's configured limits)"
    ),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def _exactly_one_target(schema: dict[str, Any]) -> None:
    """The document states what the server enforces: `provider` and `route` are strings (not null), and
    exactly one of them is given."""
    for name in ("provider", "route"):
        prop = schema["properties"][name]
        prop.update(next(s for s in prop.pop("anyOf") if s.get("type") == "string"))
        prop.pop("default", None)
    schema["oneOf"] = [{"required": ["provider"]}, {"required": ["route"]}]


class SubmitRequest(_Strict):
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=_exactly_one_target)

    provider: str | None = Field(default=None, min_length=1, max_length=100)
    route: str | None = Field(default=None, min_length=1, max_length=100)
    input: dict[str, Any]
    webhook_url: str | None = Field(default=None, min_length=1, max_length=2048)
    metadata: Metadata = Field(default_factory=dict)

    @field_validator("provider", "route", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("must be a string (leave the field out rather than sending null)")
        return value

    @model_validator(mode="after")
    def _one_target(self) -> SubmitRequest:
        if (self.provider is None) == (self.route is None):
            raise ValueError("give exactly one of provider or route")
        return self


class AttachRequest(_Strict):
    provider: str = Field(min_length=1, max_length=100)
    vendor_ref: dict[str, Any]
    webhook_url: str | None = Field(default=None, min_length=1, max_length=2048)
    metadata: Metadata = Field(default_factory=dict)


class ReplayRequest(_Strict):
    #: re-send the job's events from this version on
    from_version: int = Field(default=1, ge=1, le=2**62)


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


class WebhookAttempt(BaseModel):
    number: int
    at: str
    duration_ms: int
    status: int | None = Field(description="the receiver's HTTP status, when it answered")
    error: str | None = Field(
        description="http_status, timeout, connection, tls, refused (SSRF rules) or no_secret; null when delivered"
    )
    message: str | None


class WebhookDelivery(BaseModel):
    id: str = Field(description="the event id: webhook-id, the same on every try")
    version: int
    state: Literal["pending", "delivered", "failed"]
    created_at: str | None
    next_attempt_at: str | None = Field(description="when pending: the next try")
    delivered_at: str | None
    failed_at: str | None
    failure: str | None = Field(description="when failed: why the gateway stopped trying (a dead letter)")
    attempts: list[WebhookAttempt]


class WebhookEndpoint(BaseModel):
    url: str
    disabled: bool
    disabled_at: str | None
    reason: str | None


class DeliveryLog(BaseModel):
    webhook_url: str | None
    endpoint: WebhookEndpoint | None
    data: list[WebhookDelivery]


class WebhookDeliveryList(BaseModel):
    data: list[WebhookDelivery]


class ProviderInfo(BaseModel):
    name: str
    display_name: str
    capabilities: dict[str, Any]
    mapping: dict[str, str]


class ProviderList(BaseModel):
    providers: list[ProviderInfo]


class Health(BaseModel):
    status: str = Field(examples=["ok"])
    #: /readyz: "ok" once the store answered
    store: str | None = None
    #: /readyz on a shared store: this replica's lease loop (replica, ok, replicas, held, open_jobs, lease_s,
    #: renewed_s_ago, error, round_trips)
    leases: dict[str, Any] | None = None


class OperatorJob(Job):
    """A job as the operator sees it: the tenant's Job plus whose it is and where its webhooks go."""

    tenant: str
    webhook_url: str | None = None


class OperatorJobList(BaseModel):
    data: list[OperatorJob]
    next_cursor: str | None


class OperatorJobDetail(BaseModel):
    job: OperatorJob
    transitions: list[Transition]
    result: Result | None
    #: the job's webhook delivery log, as GET /v1/jobs/{id}/deliveries gives it to the tenant
    deliveries: DeliveryLog


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
