"""The public Job and Result shapes of the HTTP API (contract section 2)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gateway.states import Action, Issue, JobError, StaleReason, State


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Cost(_Out):
    amount: float
    currency: str


class Unit(StrEnum):
    """The units vendors count (and bill) translation work in."""

    CHARACTERS = "characters"
    WORDS = "words"
    SEGMENTS = "segments"
    DOCUMENTS = "documents"
    PAGES = "pages"


class UnitCount(_Out):
    """A quantity the vendor reported for the job, in one of its own units (e.g. billed characters)."""

    unit: Unit
    quantity: float = Field(ge=0)


class Usage(_Out):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: Cost | None = None
    #: what the vendor counted the job as, each in its own unit (one entry per unit)
    units: list[UnitCount] = Field(default_factory=list)


class Output(_Out):
    name: str | None = None
    source: str | None = None
    target: str | None = None
    status: str | None = None
    quality: float | None = None


class ArtifactLink(_Out):
    href: str
    content_type: str | None = None
    filename: str | None = None


class ResultParts(_Out):
    """What a provider extracts from a finished vendor job; the gateway adds the job's identity."""

    outputs: list[Output] = Field(default_factory=list)
    usage: Usage | None = None
    issues: list[Issue] = Field(default_factory=list)
    vendor: dict[str, Any] = Field(default_factory=dict)
    has_artifact: bool = False


class Result(_Out):
    job_id: str
    provider: str
    state: State
    outputs: list[Output]
    artifact: ArtifactLink | None
    usage: Usage | None
    issues: list[Issue]
    vendor: dict[str, Any]


class JobLinks(_Out):
    self_: str = Field(alias="self", serialization_alias="self")
    result: str
    events: str

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Job(_Out):
    id: str
    provider: str
    vendor_ref: dict[str, Any]
    state: State
    terminal: bool
    vendor_status: str | None
    stage: str | None
    progress: int | None
    result_available: bool
    error: JobError | None
    action: Action | None
    issues: list[Issue]
    version: int
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    stale: bool
    checked_at: datetime | None
    poll_after_s: float | None
    #: seconds until the vendor expects the job to finish, by its latest estimate; null without one
    eta_s: float | None = None
    #: when that is
    estimated_finish_at: datetime | None = None
    #: why `stale` is true: the vendor failure's problem code and message; null when not stale
    stale_reason: StaleReason | None = None
    metadata: dict[str, Any]
    route: str | None = None
    #: every vendor attempt of a routed job (contract section 4)
    attempts: list[dict[str, Any]] = Field(default_factory=list)
    #: a shadow job: the id of the job it is a copy of
    shadow_of: str | None = None
    #: a job sampled for its route's shadow run: the id of the shadow job
    shadow: str | None = None
    links: JobLinks
