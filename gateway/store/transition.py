"""The store's rules for a job's versions, shared by every backend: what a new job looks like, and how a freshly
observed status changes a stored job (a transition, an anomaly after a terminal state, or only `checked_at`)."""

from __future__ import annotations

import logging

from gateway.states import CanonicalStatus, State, is_regression, is_transition
from gateway.store.records import Idempotency, JobRecord, NextAttempt, StatusUpdate

log = logging.getLogger("gateway.store")


def new_job(record: JobRecord, idempotency: Idempotency | None) -> JobRecord:
    """The record `create_job` stores: version 1, `finished_at` set for a job created terminal."""
    if idempotency is not None and idempotency[0] != record.tenant:
        raise ValueError("the idempotency key's tenant is not the job's tenant")
    job = record.model_copy(deep=True)
    job.version = 1
    if job.status.terminal and job.finished_at is None:
        job.finished_at = job.updated_at
    return job


def apply_status(job: JobRecord, update: StatusUpdate) -> bool:
    """Change `job` (a copy the caller owns) by what the vendor said at `update.checked_at`; True for a transition.

    A transition bumps the version; a terminal state is sticky (a later different state only counts an anomaly).
    Always sets `checked_at` and `estimated_finish_at` (none once terminal), clears `stale` and its reason, and
    replaces `vendor_ref`, the sealed `private_ref` and (while the job was not terminal) `attempts` when given."""
    status, checked_at, vendor_ref, private_ref, estimated_finish_at, attempts = update
    previous = job.status
    if attempts is not None and not previous.terminal:
        job.attempts = [dict(a) for a in attempts]
    transitioned = False
    if previous.terminal:
        # terminal is sticky: a later state (non-terminal or another terminal one) is an anomaly
        if is_regression(previous, status) or status.state != previous.state:
            job.anomalies += 1
            log.warning(
                "job %s: vendor reported %s (%r) after terminal %s; ignored (anomaly %d)",
                job.id,
                status.state.value,
                status.vendor_status,
                previous.state.value,
                job.anomalies,
            )
    elif is_transition(previous, status):
        job.status = status.model_copy(deep=True)
        job.version += 1
        job.updated_at = checked_at
        if status.terminal:
            job.finished_at = checked_at
        transitioned = True
    job.checked_at = checked_at
    job.stale = False
    job.stale_reason = None
    job.estimated_finish_at = None if job.status.terminal else estimated_finish_at
    if vendor_ref is not None:
        job.vendor_ref = dict(vendor_ref)
    if private_ref is not None:
        job.private_ref = private_ref
    return transitioned


def move_to_attempt(job: JobRecord, move: NextAttempt) -> None:
    """Change `job` (a copy the caller owns) to its next vendor attempt: `queued` at `provider` as a new version.
    ValueError for a terminal job (terminal is sticky: an ended job never fails over)."""
    if job.terminal:
        raise ValueError(f"job {job.id} is already {job.state.value}")
    job.provider = move.provider
    job.vendor_ref = dict(move.vendor_ref)
    job.private_ref = move.private_ref
    job.attempts = [dict(a) for a in move.attempts]
    job.status = CanonicalStatus(state=State.QUEUED)
    job.version += 1
    job.updated_at = move.at
    job.checked_at = move.at
    job.stale = False
    job.stale_reason = None
    job.estimated_finish_at = None
    job.result_available = False
