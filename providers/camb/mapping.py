"""CAMB.AI task status -> canonical status (contract section 1.1, vendor doc `camb-ai-translation-task-status.md`).

Status strings are compared case-sensitively: the vendor's OpenAPI schema `TaskStatus` is an enum of exact
upper-case values, so anything else (including `pending`) is a status this provider does not know -> `unknown`.
"""

from __future__ import annotations

from typing import Any

from gateway.states import CanonicalStatus, JobError, State
from gateway.tolerant import never_raises, read_status

MAPPING: dict[str, State] = {
    "PENDING": State.RUNNING,
    "SUCCESS": State.SUCCEEDED,
    "ERROR": State.FAILED,
    "TIMEOUT": State.FAILED,
    "PAYMENT_REQUIRED": State.FAILED,
}

MAPPING_NOTES: dict[str, str] = {
    "PENDING": "the vendor does not tell queued from running",
    "SUCCESS": "run_id is kept in vendor_ref; the result is fetched from /translation-result/{run_id}",
    "ERROR": 'error.code = "vendor_error", retryable = false',
    "TIMEOUT": 'error.code = "timeout", retryable = true',
    "PAYMENT_REQUIRED": 'error.code = "payment_required", retryable = false',
}

#: failed statuses: (error code, default message, retryable)
_ERRORS: dict[str, tuple[str, str, bool]] = {
    "ERROR": ("vendor_error", "CAMB.AI reported an error for the translation task", False),
    "TIMEOUT": ("timeout", "the translation task exceeded CAMB.AI's maximum processing time", True),
    "PAYMENT_REQUIRED": (
        "payment_required",
        "the CAMB.AI account has insufficient credits or permissions for this translation",
        False,
    ),
}

#: fields where the vendor may put "additional details about the nature of the error" (the doc names none)
_DETAIL_KEYS = ("message", "error", "detail", "error_message", "reason")
_MAX_DETAIL = 500


@never_raises
def normalize(body: Any) -> CanonicalStatus:
    """The canonical status of one `GET /translate/{task_id}` body. Never raises."""
    status, state = read_status(body, MAPPING)
    if status is None or state is State.UNKNOWN:
        return CanonicalStatus(state=State.UNKNOWN, vendor_status=status)
    error = None
    if status in _ERRORS:
        code, message, retryable = _ERRORS[status]
        detail = _vendor_detail(body)
        error = JobError(code=code, message=f"{message}: {detail}" if detail else message, retryable=retryable)
    return CanonicalStatus(state=state, vendor_status=status, error=error)


def _vendor_detail(body: Any) -> str | None:
    """A non-empty string the vendor added about an error, if any, cut to a sane length."""
    if not isinstance(body, dict):
        return None
    for key in _DETAIL_KEYS:
        value = body.get(key)
        if isinstance(value, str) and value.strip():
            text = value.strip()
            return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"
    return None
