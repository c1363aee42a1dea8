"""The document translator's status mapping (contract section 1.1) and `normalize`, which never raises."""

from __future__ import annotations

from typing import Any

from gateway.states import CanonicalStatus, JobError, State, clamp_progress
from gateway.tolerant import lenient, never_raises, read_status
from providers.doc_translator.models import COMPLETED, ERROR, FAILED, PROCESSING, STARTED, JobStatus

MAPPING: dict[str, State] = {
    STARTED: State.RUNNING,
    PROCESSING: State.RUNNING,
    COMPLETED: State.SUCCEEDED,
    FAILED: State.FAILED,
    ERROR: State.FAILED,
}

MAPPING_NOTES: dict[str, str] = {
    STARTED: "progress = the vendor's progress",
    PROCESSING: "progress = the vendor's progress",
    COMPLETED: "the translated file is the job's artifact",
    FAILED: 'error.code = "vendor_error", message = the vendor\'s `error`',
    ERROR: 'error.code = "vendor_error", message = the vendor\'s `error`',
}

MAX_MESSAGE = 2000


def _error_message(status: str, error: str | None) -> str:
    text = (error or "").strip()
    if not text:
        return f"the document translator reported the job as {status!r} without an error message"
    return text[:MAX_MESSAGE]


@never_raises
def normalize(body: Any) -> CanonicalStatus:
    """One `GET /status/{job_id}` body to the canonical status; any body, however strange, gives an answer."""
    status, state = read_status(body, MAPPING)
    if status is None:
        return CanonicalStatus(state=State.UNKNOWN, vendor_status=None)
    parsed = lenient(JobStatus, body) or JobStatus()
    progress = clamp_progress(parsed.progress)
    if state is State.SUCCEEDED:
        # the vendor reaches 100 when the output file exists; a completed job without a number is done all the same
        return CanonicalStatus(state=state, vendor_status=status, progress=100 if progress is None else progress)
    if state is State.FAILED:
        error = JobError(code="vendor_error", message=_error_message(status, parsed.error), retryable=False)
        return CanonicalStatus(state=state, vendor_status=status, progress=progress, error=error)
    return CanonicalStatus(state=state, vendor_status=status, progress=progress)
