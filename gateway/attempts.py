"""A routed job's vendor attempts as the Job shows them (contract section 4), now and at an earlier version.

The store keeps each attempt as it was when it ended; the current attempt is completed when rendered: its
vendor_ref is the job's (as the vendor last refined it) and, once the job is terminal, its outcome is the job's
state with its error and end time. A version of the job shows the provider, vendor_ref and attempts of that time."""

from __future__ import annotations

from typing import Any

from gateway.store.records import JobRecord

#: the outcome of the attempt a job is on
ACCEPTED = "accepted"


def _iso(job: JobRecord) -> str | None:
    return None if job.finished_at is None else job.finished_at.isoformat().replace("+00:00", "Z")


def shown_attempts(job: JobRecord) -> list[dict[str, Any]]:
    """The job's attempts, the current one completed from the job (never a private vendor_ref field: the stored
    and the job's vendor_ref are public parts)."""
    attempts = [dict(a) for a in job.attempts]
    if attempts and attempts[-1].get("outcome") == ACCEPTED:
        current = attempts[-1]
        current["vendor_ref"] = dict(job.vendor_ref)
        if job.terminal:
            error = job.status.error
            current.update(
                outcome=job.state.value,
                error=None if error is None else error.model_dump(include={"code", "message"}),
                ended_at=_iso(job),
            )
    return attempts


def as_of_version(job: JobRecord, version: int) -> JobRecord:
    """The job's provider, vendor_ref and attempts as they were at `version` (the attempts that had started by
    then, the one it was on still running)."""
    started = [a for a in job.attempts if int(a.get("version") or 1) <= version]
    if len(started) == len(job.attempts):
        return job
    current = next((a for a in reversed(started) if a.get("vendor_ref") is not None), None)
    if current is None:
        return job.model_copy(update={"attempts": started})
    shown = [*started[: started.index(current)], {**current, "outcome": ACCEPTED, "error": None, "ended_at": None}]
    shown += started[started.index(current) + 1 :]
    return job.model_copy(
        update={"attempts": shown, "provider": current["provider"], "vendor_ref": dict(current["vendor_ref"])}
    )
