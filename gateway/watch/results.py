"""Keeping a finished job's result (and output file) in the store, and the ending of a job whose result cannot be
kept. The watcher retries a keep that fails with the same backoff and circuit breaker as its polls, and after
`PollSettings.result_deadline_s` of failures ends the job (`Watcher.end_without_result`); a provider saying the
result is gone for good (`ResultGone`) ends it at once. Either way the job ends as `ended_without_result` says."""

from __future__ import annotations

import logging
from typing import Any

from gateway.errors import ResultGone, UnsupportedOperation, VendorError
from gateway.metrics import Metrics
from gateway.models import ArtifactLink, Result, ResultParts
from gateway.provider import Provider
from gateway.states import CanonicalStatus, Issue, State
from gateway.store.base import LeaseLost, Store
from gateway.store.records import JobRecord
from gateway.vendor_http import VendorConnection

log = logging.getLogger("gateway.watch")

#: the issue of a job whose result the gateway could not keep
RESULT_UNAVAILABLE = "result_unavailable"


def ended_without_result(status: CanonicalStatus, message: str) -> CanonicalStatus:
    """The terminal status of a job whose result (or part of it) cannot be kept: the issue
    `result_unavailable`, and `completed_with_issues` where the vendor said `succeeded`. The one place this
    ending is made."""
    issue = Issue(code=RESULT_UNAVAILABLE, message=message[:2000])
    state = State.COMPLETED_WITH_ISSUES if status.state is State.SUCCEEDED else status.state
    return status.model_copy(update={"state": state, "issues": [*status.issues, issue]})


def empty_result(job: JobRecord, status: CanonicalStatus) -> dict[str, Any]:
    """The Result kept for a job that ended without one: no outputs; its issues say why."""
    result = Result(
        job_id=job.id,
        provider=job.provider,
        state=status.state,
        outputs=[],
        artifact=None,
        usage=None,
        issues=status.issues,
        vendor={},
    )
    return result.model_dump(mode="json")


async def keep_result(
    store: Store,
    metrics: Metrics,
    job: JobRecord,
    status: CanonicalStatus,
    provider: Provider,
    ref: dict[str, Any],
    conn: VendorConnection,
    body: Any,
) -> CanonicalStatus | Exception:
    """Copy the finished job's result and artifact into the store. The status to record (with the issue
    `result_unavailable` when the provider said part of the result is gone for good), or what failed: a vendor
    error or UnsupportedOperation, or any other error (e.g. a result the store cannot hold) to retry later."""
    missing: list[str] = []
    try:
        if body is None:
            body = await provider.fetch_status(conn, ref)
        try:
            parts = await provider.fetch_result(conn, ref, body)
        except ResultGone as exc:
            parts = ResultParts()
            missing.append(conn.scrubbed(exc).message)
        link = None
        if parts.has_artifact:
            try:
                async with provider.open_artifact(conn, ref) as download:
                    stored = await store.save_artifact(
                        job.id, content_type=download.content_type, filename=download.filename,
                        chunks=download.chunks,
                    )  # fmt: skip
                link = ArtifactLink(
                    href=f"/v1/jobs/{job.id}/artifact", content_type=stored.content_type, filename=stored.filename
                )
            except ResultGone as exc:
                missing.append(conn.scrubbed(exc).message)
        issues = parts.issues or status.issues
        if missing:
            status = ended_without_result(status, "; ".join(missing))
            issues = [*issues, status.issues[-1]]
        result = Result(
            job_id=job.id,
            provider=job.provider,
            state=status.state,
            outputs=parts.outputs,
            artifact=link,
            usage=parts.usage,
            issues=issues,
            vendor=parts.vendor,
        )
        await store.save_result(job.id, result.model_dump(mode="json"))
    except (VendorError, UnsupportedOperation) as exc:
        if isinstance(exc, VendorError):
            conn.scrubbed(exc)
        metrics.upstream.inc(provider=job.provider, operation="result", outcome=type(exc).__name__)
        log.warning("job %s: result not kept yet (%s); will retry", job.id, exc)
        return exc
    except LeaseLost:
        raise
    except Exception as exc:  # e.g. a result the store cannot hold: retried, bounded by the same deadline
        log.warning("job %s: result not kept (%s); will retry", job.id, conn.scrub(f"{type(exc).__name__}: {exc}"))
        return exc
    metrics.upstream.inc(provider=job.provider, operation="result", outcome="gone" if missing else "ok")
    return status
