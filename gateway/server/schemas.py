"""The gateway's own request bodies (strict, unknown fields refused) and the shapes of its other answers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.models import Job


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


def pydantic_errors(exc: Any) -> list[dict[str, Any]]:
    """pydantic ValidationError -> the contract's [{loc, msg}] with loc rooted at body."""
    return [{"loc": ["body", *[p for p in e["loc"]]], "msg": e["msg"]} for e in exc.errors()]
