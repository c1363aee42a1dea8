"""Batch status -> canonical status: the mapping table and `normalize`, which never raises."""

from __future__ import annotations

from typing import Any

from gateway.states import CanonicalStatus, Issue, JobError, State, clamp_eta, clamp_progress
from gateway.tolerant import lenient, never_raises, read_status
from gateway_azure_batch.models import (
    CANCELLED,
    CANCELLING,
    FAILED,
    NOT_STARTED,
    RUNNING,
    SUCCEEDED,
    VALIDATION_FAILED,
    BatchStatus,
    Summary,
)

MAPPING: dict[str, State] = {
    NOT_STARTED: State.QUEUED,
    RUNNING: State.RUNNING,
    CANCELLING: State.RUNNING,
    SUCCEEDED: State.SUCCEEDED,
    FAILED: State.FAILED,
    VALIDATION_FAILED: State.FAILED,
    CANCELLED: State.CANCELLED,
}

MAPPING_NOTES: dict[str, str] = {
    RUNNING: "progress = finished documents / all documents; eta_s = estimatedSecondsRemaining",
    NOT_STARTED: "the vendor makes no estimate before it starts",
    CANCELLING: 'stage = "cancelling": the vendor stops the documents not finished yet',
    SUCCEEDED: "completed_with_issues when some documents failed (one issue documents_failed)",
    FAILED: "error.code = the vendor's error code, message = its message",
    VALIDATION_FAILED: 'error.code = "validation_failed": the vendor refused the batch after accepting it',
}

DOCUMENTS_FAILED = "documents_failed"


def _progress(summary: Summary | None) -> int | None:
    if summary is None or not summary.total:
        return None
    done = (summary.success or 0) + (summary.failed or 0) + (summary.cancelled or 0)
    return clamp_progress(100 * done / summary.total)


@never_raises
def normalize(body: Any) -> CanonicalStatus:
    """One batch status body to the canonical status."""
    status, state = read_status(body, MAPPING)
    batch = lenient(BatchStatus, body) or BatchStatus()
    progress = _progress(batch.summary)
    if status is None or state is State.UNKNOWN:
        return CanonicalStatus(state=State.UNKNOWN, vendor_status=status, progress=progress)
    if state is State.FAILED:
        code = "validation_failed" if status == VALIDATION_FAILED else (batch.error and batch.error.code) or "failed"
        message = (batch.error and batch.error.message) or f"the vendor reported the batch as {status}"
        return CanonicalStatus(
            state=state, vendor_status=status, progress=progress, error=JobError(code=code, message=message[:2000])
        )
    if state is State.SUCCEEDED:
        failed = batch.summary.failed if batch.summary else None
        if failed:
            total = batch.summary.total if batch.summary else None
            issue = Issue(code=DOCUMENTS_FAILED, message=f"{failed} of {total or '?'} documents failed")
            return CanonicalStatus(
                state=State.COMPLETED_WITH_ISSUES, vendor_status=status, progress=progress, issues=[issue]
            )
        return CanonicalStatus(state=state, vendor_status=status, progress=progress)
    return CanonicalStatus(
        state=state,
        vendor_status=status,
        stage="cancelling" if status == CANCELLING else None,
        progress=progress,
        eta_s=clamp_eta(batch.estimatedSecondsRemaining) if status == RUNNING else None,
    )
