"""Tolerant models of the Segment-QA vendor bodies (vendor doc `segment-qa-job-status-and-result.txt`, contract 5).

Every model keeps unknown fields (`extra="allow"`) and every field is optional: the models are read through
`gateway.tolerant.lenient`, which drops invalid parts instead of failing. Statuses stay plain strings.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, StrictStr


def _not_bool(value: Any) -> Any:
    """JSON true/false is never a count or an amount (pydantic would read it as 1/0)."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    return value


#: a segment id: the vendor uses integers; strings are accepted too, never coerced
SegmentId = StrictInt | StrictStr
#: counts and amounts: numbers (or numeric strings), never booleans
Count = Annotated[int, BeforeValidator(_not_bool)]
Amount = Annotated[float, BeforeValidator(_not_bool)]


class _Vendor(BaseModel):
    model_config = ConfigDict(extra="allow", allow_inf_nan=False)


# -- GET /v1/jobs/{job_id} ------------------------------------------------------------------------
class StatusSegment(_Vendor):
    """One entry of the status body's `segments` breakdown."""

    id: SegmentId | None = None
    status: str | None = None
    qa_score: Amount | None = None
    retry_count: Count | None = None
    error: str | None = None


class StatusTokenUsage(_Vendor):
    input_tokens: Count | None = None
    output_tokens: Count | None = None


class JobStatus(_Vendor):
    """The status body."""

    job_id: str | None = None
    status: str | None = None
    segment_count: Count | None = None
    segments: list[StatusSegment] = Field(default_factory=list)
    token_usage: StatusTokenUsage | None = None
    cost_eur: Amount | None = None
    #: entries are strings in practice; objects are read through `message`/`error`/`detail`
    error_log: list[Any] = Field(default_factory=list)
    created_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    current_step: str | None = None
    source_review_enabled: bool | None = None
    #: not in the documented status body, but used when present (it is set on `needs_review` results)
    warning: str | None = None


# -- GET /v1/jobs/{job_id}/result -----------------------------------------------------------------
class ResultSegment(_Vendor):
    id: SegmentId | None = None
    source: str | None = None
    translation: str | None = None
    qa_score: Amount | None = None
    status: str | None = None


class ResultTokenUsage(_Vendor):
    input: Count | None = None
    output: Count | None = None
    cache_read: Count | None = None
    cache_write: Count | None = None
    total: Count | None = None


class WordCount(_Vendor):
    source: Count | None = None
    target: Count | None = None


class DeliveryNote(_Vendor):
    """A structured delivery note. The doc names only the `type` values (source_error, low_confidence,
    length_deviation, terminology); the other fields are read tolerantly under their likely names."""

    type: str | None = None
    message: str | None = None
    detail: str | None = None
    segment_id: SegmentId | None = None
    suggestion: str | None = None


class JobResult(_Vendor):
    """The result body (available for completed, completed_with_blocks and needs_review)."""

    job_id: str | None = None
    status: str | None = None
    translation: str | None = None
    segments: list[ResultSegment] = Field(default_factory=list)
    cost_eur: Amount | None = None
    token_usage: ResultTokenUsage | None = None
    word_count: WordCount | None = None
    qa_score: Amount | None = None
    warning: str | None = None
    #: structured notes (objects with a `type`); anything else is kept raw
    delivery_notes: list[Any] = Field(default_factory=list)


# -- POST /v1/jobs --------------------------------------------------------------------------------
class CreateAccepted(_Vendor):
    """202 answer to a create."""

    job_id: str | None = None
    status: str | None = None


class DuplicateContent(_Vendor):
    """409 answer to a create whose content the vendor already has: the existing job."""

    detail: str | None = None
    job_id: str | None = None
    status: str | None = None
