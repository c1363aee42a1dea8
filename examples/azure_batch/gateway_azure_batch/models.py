"""The vendor's bodies, read tolerantly (`gateway.tolerant.lenient`): unknown fields kept, wrong values dropped."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

#: batch statuses (`status` of a batch)
NOT_STARTED = "NotStarted"
RUNNING = "Running"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
CANCELLED = "Cancelled"
CANCELLING = "Cancelling"
VALIDATION_FAILED = "ValidationFailed"


class _Vendor(BaseModel):
    model_config = ConfigDict(extra="allow")


class VendorError(_Vendor):
    code: str | None = None
    message: str | None = None


class Summary(_Vendor):
    total: int | None = None
    failed: int | None = None
    success: int | None = None
    inProgress: int | None = None
    notYetStarted: int | None = None
    cancelled: int | None = None
    totalCharacterCharged: int | None = None


class BatchStatus(_Vendor):
    """`POST /batches/{id}/status` (and the answer to a cancel)."""

    id: str | None = None
    status: str | None = None
    summary: Summary | None = None
    estimatedSecondsRemaining: float | None = None
    error: VendorError | None = None


class Created(_Vendor):
    """The 202 answer to `POST /batches`: the batch id and its per-batch secret."""

    id: str | None = None
    batchKey: str | None = None


class Document(_Vendor):
    id: str | None = None
    name: str | None = None
    status: str | None = None
    progress: float | None = None
    characterCharged: int | None = None
    error: VendorError | None = None


class Documents(_Vendor):
    """`POST /batches/{id}/documents`."""

    value: list[Document] = Field(default_factory=list)
