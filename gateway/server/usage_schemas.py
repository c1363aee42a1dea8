"""The shapes of `GET /v1/usage` (contract section 4.2), for the OpenAPI document."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class UsageTotals(BaseModel):
    """What the vendors reported for a set of attempts, summed."""

    input_tokens: int
    output_tokens: int
    #: money by ISO 4217 currency code, exact to the millionth
    cost: dict[str, float]
    #: quantities by unit (characters, words, segments, documents, pages)
    units: dict[str, float]
    #: attempts whose vendor reported any usage
    reported: int


class Durations(BaseModel):
    """Attempt durations, submit to end, in seconds (nearest-rank percentiles)."""

    count: int
    p50_s: float
    p90_s: float
    p99_s: float
    max_s: float


class UsageGroup(BaseModel):
    #: the provider, the route (null: jobs submitted to a provider directly) or the UTC day (YYYY-MM-DD)
    key: str | None
    #: the group holds shadow runs
    shadow: bool
    #: attempts by how they ended (an attempt the job failed over from is `failed`)
    attempts: dict[str, int]
    #: jobs by their final state, counted in the group of their last attempt
    jobs: dict[str, int]
    usage: UsageTotals
    #: attempt durations per provider
    durations: dict[str, Durations]


class UsageOverall(BaseModel):
    attempts: int
    jobs: dict[str, int]
    usage: UsageTotals


class UsageReport(BaseModel):
    from_: str = Field(alias="from", serialization_alias="from")
    to: str
    group_by: str
    groups: list[UsageGroup]
    total: UsageOverall
    #: the tenant's budget now (limits, spend, resets); null without a budget
    budget: dict[str, Any] | None = None
