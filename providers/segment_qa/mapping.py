"""Segment-QA status -> canonical status: the mapping table of contract section 1.1 and `normalize`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gateway.states import CanonicalStatus, Issue, JobError, State, clamp_progress
from gateway.tolerant import lenient, never_raises, read_status
from providers.segment_qa.models import DeliveryNote, JobStatus, SegmentId

MAPPING: dict[str, State] = {
    "queued": State.QUEUED,
    "processing": State.RUNNING,
    "correcting": State.RUNNING,
    "completed": State.SUCCEEDED,
    "completed_with_blocks": State.COMPLETED_WITH_ISSUES,
    "needs_review": State.COMPLETED_WITH_ISSUES,
    "failed": State.QUEUED,
    "dead": State.FAILED,
}

MAPPING_NOTES: dict[str, str] = {
    "processing": "stage = the vendor's current_step",
    "correcting": 'stage = "correcting"',
    "completed_with_blocks": 'one issue per blocked segment (code "blocked", target = segment id)',
    "needs_review": 'issue code "needs_review", message = the vendor\'s warning',
    "failed": "the vendor retries it (recoverable error); error is set with retryable = true",
    "dead": 'error.code = "retries_exhausted", retryable = false',
}

#: segment statuses that count as finished for `progress`
FINISHED_SEGMENT_STATUSES = frozenset({"qa_passed", "done", "blocked", "failed"})

RETRYING_CODE = "vendor_retrying"
RETRYING_MESSAGE = "The vendor hit a recoverable error and will retry the job."
DEAD_CODE = "retries_exhausted"
DEAD_MESSAGE = "The vendor gave up on the job after exhausting its retries."
NEEDS_REVIEW_MESSAGE = "The QA score stayed below the vendor's minimum after the maximum number of correction loops."
MAX_MESSAGE = 2000


@never_raises
def normalize(body: Any) -> CanonicalStatus:
    """Map one Segment-QA status body to the canonical status. Never raises, whatever the body."""
    status, state = read_status(body, MAPPING)
    job = lenient(JobStatus, body) or JobStatus()
    progress = segment_progress(job)
    if status is None or state is State.UNKNOWN:
        return CanonicalStatus(state=State.UNKNOWN, vendor_status=status, progress=progress)

    stage: str | None = None
    error: JobError | None = None
    issues: list[Issue] = []
    if status == "processing":
        stage = job.current_step
    elif status == "correcting":
        stage = "correcting"
    elif status == "completed_with_blocks":
        issues = blocked_issues((s.id, s.status, s.error) for s in job.segments)
    elif status == "needs_review":
        issues = [needs_review_issue(job.warning)]
    elif status == "failed":
        error = JobError(code=RETRYING_CODE, message=last_error(job.error_log) or RETRYING_MESSAGE, retryable=True)
    elif status == "dead":
        error = JobError(code=DEAD_CODE, message=last_error(job.error_log) or DEAD_MESSAGE, retryable=False)
    return CanonicalStatus(
        state=state, vendor_status=status, stage=stage, progress=progress, error=error, issues=issues
    )


def segment_progress(job: JobStatus) -> int | None:
    """Whole percent of finished segments, or None while there are no segments to count.

    When `segment_count` and the `segments` list disagree, `segment_count` wins: the vendor's own example
    lists 2 of 5 segments, so the list can be a partial breakdown and the count is the real total. Only
    when the list is longer than the count (a stale count) is the list's length used, so that progress
    never passes 100. A missing (or unreadable, or negative) `segment_count` falls back to the list's
    length; a `segment_count` of 0 means the job is not segmented yet, and so does an empty list.
    """
    segments = job.segments
    if not segments:
        return None
    count = job.segment_count
    if count is not None and count == 0:
        return None
    total = len(segments) if count is None or count < 0 else max(count, len(segments))
    finished = sum(1 for s in segments if s.status in FINISHED_SEGMENT_STATUSES)
    return clamp_progress(100 * finished // total)


def segment_target(segment_id: SegmentId | None) -> str | None:
    """A segment id as an issue target / output name."""
    return None if segment_id is None else str(segment_id)


def blocked_issues(segments: Iterable[tuple[SegmentId | None, str | None, str | None]]) -> list[Issue]:
    """One `blocked` issue per (id, status, error) whose status is `blocked`; message = its error if any."""
    return [
        Issue(code="blocked", target=segment_target(seg_id), message=_cap(error))
        for seg_id, seg_status, error in segments
        if seg_status == "blocked"
    ]


def needs_review_issue(warning: str | None) -> Issue:
    """The `needs_review` issue: the vendor's warning when it gave one, else a fixed sentence."""
    text = warning.strip() if isinstance(warning, str) else ""
    return Issue(code="needs_review", message=_cap(text) if text else NEEDS_REVIEW_MESSAGE)


def delivery_note_issues(notes: list[Any]) -> list[Issue]:
    """Structured delivery notes (objects with a string `type`) as issues; other entries are skipped."""
    issues = []
    for raw in notes:
        note = lenient(DeliveryNote, raw)
        if note is None or not note.type:
            continue
        issues.append(
            Issue(
                code=note.type,
                message=_cap(note.message or note.detail),
                target=segment_target(note.segment_id),
                hint=_cap(note.suggestion),
            )
        )
    return issues


def last_error(error_log: list[Any]) -> str | None:
    """The message of the last readable `error_log` entry (a string, or an object with message/error/detail)."""
    for entry in reversed(error_log):
        text: Any = entry
        if isinstance(entry, dict):
            text = next((entry[k] for k in ("message", "error", "detail") if isinstance(entry.get(k), str)), None)
        if isinstance(text, str) and text.strip():
            return _cap(text.strip())
    return None


def _cap(text: str | None) -> str | None:
    if text is None:
        return None
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"
