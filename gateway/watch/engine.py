"""The watch engine: the gateway polls vendors for every non-terminal job, so readers never do.

One scheduled poll per job (a heap of due times), at most one upstream request per job at a time, per-provider
pacing (lanes.py), transitions recorded in the store before anyone is told, and, once a job is terminal, its
result and artifact copied into the store so a vendor's purge loses nothing."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import traceback
from collections.abc import Callable
from typing import Any

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.errors import ResultGone, UnsupportedOperation, VendorError, VendorNotFound
from gateway.metrics import Metrics
from gateway.models import ArtifactLink, Result, ResultParts
from gateway.provider import Provider
from gateway.refs import RefSealer, SealError, secret_values
from gateway.render import estimated_finish
from gateway.states import CanonicalStatus, Issue, JobError, StaleReason, State, is_transition
from gateway.store.base import LeaseLost, Store
from gateway.store.records import JobRecord
from gateway.store.shared import SharedStore
from gateway.vendor_http import VendorConnection
from gateway.watch.lanes import Lane
from gateway.watch.notifier import Notifier

log = logging.getLogger("gateway.watch")

#: the issue of a job whose result the gateway could not keep
RESULT_UNAVAILABLE = "result_unavailable"


#: why a snapshot is stale while the breaker keeps the gateway from asking the vendor
BREAKER_OPEN = StaleReason(
    code="upstream_unavailable", message="the vendor failed repeatedly; the gateway waits before asking it again"
)
#: why a finished job is stale while its result could not be copied yet
RESULT_NOT_KEPT = StaleReason(code="result_not_kept", message="the vendor finished; its result could not be read yet")


def ended_without_result(status: CanonicalStatus, message: str) -> CanonicalStatus:
    """The terminal status of a job whose result (or part of it) cannot be kept: the issue
    `result_unavailable`, and `completed_with_issues` where the vendor said `succeeded`. The one place this
    ending is made (ResultGone ends a job here at once)."""
    issue = Issue(code=RESULT_UNAVAILABLE, message=message)
    state = State.COMPLETED_WITH_ISSUES if status.state is State.SUCCEEDED else status.state
    return status.model_copy(update={"state": state, "issues": [*status.issues, issue]})


def vendor_job_lost(previous: CanonicalStatus) -> CanonicalStatus:
    return CanonicalStatus(
        state=State.FAILED,
        vendor_status=previous.vendor_status,
        error=JobError(code="vendor_job_lost", message="the vendor no longer knows this job", retryable=False),
    )


class Watcher:
    def __init__(
        self,
        store: Store,
        providers: dict[str, Provider],
        connections: dict[str, VendorConnection],
        lanes: dict[str, Lane],
        metrics: Metrics,
        notifier: Notifier,
        on_event: Callable[[], None] | None = None,
        clock: Clock = SYSTEM_CLOCK,
        refs: RefSealer | None = None,
    ) -> None:
        self.store = store
        self.providers = providers
        self.connections = connections
        self.lanes = lanes
        self.metrics = metrics
        self.notifier = notifier
        #: called after a transition that queued a webhook event (wakes the webhook dispatcher)
        self.on_event = on_event
        self.clock = clock
        #: seals and opens the providers' private vendor_ref fields
        self.refs = refs or RefSealer()
        self._heap: list[tuple[float, int, str]] = []
        self._due: dict[str, float] = {}
        self._interval: dict[str, float] = {}
        self._provider_of: dict[str, str] = {}
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        #: several replicas share the store: this one polls only the jobs it holds a lease on (gateway.watch.leases)
        self.shared = isinstance(store, SharedStore)

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        """Resume every unfinished job from the store (on a shared store, the lease keeper hands this replica its
        share instead), then run the scheduler."""
        if not self.shared:
            for job in await self.store.non_terminal_jobs():
                self.watch(job, delay=0.0)
        self._loop_task = asyncio.create_task(self._run(), name="gateway-watcher")

    async def stop(self) -> None:
        if self._loop_task:
            self._loop_task.cancel()
        tasks = [t for t in (self._loop_task, *self._inflight.values()) if t]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- scheduling --------------------------------------------------------------------------
    def watch(self, job: JobRecord, *, delay: float | None = None) -> None:
        """Start (or keep) watching a job; the first poll after `delay` (default: the provider's first interval)."""
        lane = self.lanes.get(job.provider)
        if lane is None:
            return
        self._provider_of[job.id] = job.provider
        interval = self._interval.setdefault(job.id, lane.first_interval())
        self._schedule(job.id, interval if delay is None else delay)

    def watching(self) -> int:
        return len(self._due)

    def forget(self, job_id: str) -> None:
        """Stop polling a job without finishing it: another replica owns it now (shared store)."""
        self._unwatch(job_id)

    def heard(self, job_id: str, version: int) -> None:
        """Another replica announced version `version` of a job (shared store); nothing to do here, since this
        engine reads each job from the store at every poll."""

    def polling(self, job_id: str) -> bool:
        """A poll of this job is in flight."""
        return job_id in self._inflight

    def poll_after(self, job: JobRecord) -> float | None:
        """Seconds until the gateway will next ask the vendor about this job; None once it is terminal."""
        if job.terminal:
            return None
        due = self._due.get(job.id)
        if due is None:
            lane = self.lanes.get(job.provider)
            return lane.first_interval() if lane else None
        return round(max(0.0, due - self.clock()) + 0.05, 3)

    def _schedule(self, job_id: str, delay: float) -> None:
        due = self.clock() + delay
        self._due[job_id] = due
        heapq.heappush(self._heap, (due, next(self._seq), job_id))
        if self._heap[0][2] == job_id:
            self._wake.set()

    def _unwatch(self, job_id: str) -> None:
        self._due.pop(job_id, None)
        self._interval.pop(job_id, None)
        self._provider_of.pop(job_id, None)

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            now = self.clock()
            while self._heap and self._heap[0][0] <= now:
                due, _, job_id = heapq.heappop(self._heap)
                if self._due.get(job_id) != due:
                    continue  # superseded by a later schedule
                del self._due[job_id]
                if job_id not in self._inflight:
                    self._start_poll(job_id)
                    lane = self.lanes.get(self._provider_of.get(job_id, ""))
                    if lane is not None:
                        lane.health.started_late(now - due)
            timeout = (self._heap[0][0] - now) if self._heap else 3600.0
            await self.clock.wait(self._wake, timeout)

    def _start_poll(self, job_id: str) -> asyncio.Task[None]:
        task = asyncio.create_task(self._poll(job_id), name=f"poll-{job_id}")
        self._inflight[job_id] = task
        task.add_done_callback(lambda _done: self._inflight.pop(job_id, None))
        return task

    async def poll_now(self, job_id: str) -> None:
        """Poll this job now, or join the poll already in flight (never two at once). On a shared store this
        replica takes the job's lease over first (e.g. a cancel sent through it), so its write is not refused."""
        if isinstance(self.store, SharedStore) and job_id not in self._inflight:
            await self.store.take_over(job_id)
        task = self._inflight.get(job_id) or self._start_poll(job_id)
        await asyncio.shield(task)

    # -- one poll ----------------------------------------------------------------------------
    def vendor_io(self, job: JobRecord) -> tuple[dict[str, Any], VendorConnection]:
        """The job's whole vendor_ref (its private fields opened) and a connection that scrubs those fields'
        values from every message: what each provider I/O method for this job gets. SealError when the
        private fields cannot be opened."""
        private = self.refs.open(job.private_ref)
        conn = self.connections[job.provider].with_secrets(secret_values(private))
        return {**job.vendor_ref, **private}, conn

    async def _poll(self, job_id: str) -> None:
        used: list[VendorConnection] = []
        try:
            await self._poll_once(job_id, used)
        except asyncio.CancelledError:
            raise
        except LeaseLost:  # another replica took the job over: it is that replica's to poll now
            log.info("job %s: lease taken over by another replica; no longer polled here", job_id)
            self._unwatch(job_id)
        except Exception:  # a bug must not stop watching this job; its trace holds no secret of it
            trace = traceback.format_exc()
            for conn in used:
                trace = conn.scrub(trace)
            log.error("poll of %s failed:\n%s", job_id, trace)
            lane = self.lanes.get(self._provider_of.get(job_id, ""))
            if lane is not None:
                self._schedule(job_id, lane.settings.max_s)

    async def _poll_once(self, job_id: str, used: list[VendorConnection]) -> None:
        """One poll of one job; `used` gets the connection it talks through (to scrub a failure's trace)."""
        job = await self.store.get_job(job_id)
        if job is None or (job.terminal and (job.result_available or not job.state.has_result)):
            self._unwatch(job_id)
            return
        provider = self.providers[job.provider]
        lane = self.lanes[job.provider]
        try:
            ref, conn = self.vendor_io(job)
        except SealError as exc:
            log.error("job %s: %s", job_id, exc)
            await self.store.mark_stale(job_id, reason=StaleReason(code="private_ref_unreadable", message=str(exc)))
            self._schedule(job_id, lane.settings.max_s)
            return
        used.append(conn)
        if job.terminal:  # terminal but its result is not kept yet (e.g. attached after the fact): finish that
            if await self._keep_result(job, job.status, provider, ref, conn, None) is not None:
                self._unwatch(job_id)
                self.notifier.publish(job_id)
            else:
                self._schedule(job_id, lane.settings.max_s)
            return
        if not lane.breaker.allow():
            await self.store.mark_stale(job_id, reason=BREAKER_OPEN)
            self._schedule(job_id, max(lane.breaker.retry_in(), 0.05))
            return
        interval = self._interval.get(job_id, lane.first_interval())
        async with lane.semaphore:
            await lane.rate.acquire()
            started = self.clock()
            try:
                body = await provider.fetch_status(conn, ref)
                outcome = "ok"
            except VendorNotFound:
                body, outcome = None, "not_found"
            except VendorError as exc:
                body, outcome = conn.scrubbed(exc), type(exc).__name__
            finally:
                self.metrics.upstream_latency.observe(self.clock() - started, provider=job.provider)
        self.metrics.upstream.inc(provider=job.provider, operation="status", outcome=outcome)

        if isinstance(body, VendorError):
            lane.breaker.failure()
            lane.health.vendor_error(self.clock.now(), body)
            await self.store.mark_stale(job_id, reason=StaleReason(code=body.problem_code, message=body.message))
            wait = lane.next_interval(interval, changed=False)
            retry_after = getattr(body, "retry_after", None)
            if retry_after:
                wait = max(wait, retry_after)
            self._interval[job_id] = wait
            self._schedule(job_id, lane.jittered(wait) if not retry_after else wait)
            return
        lane.breaker.success()
        refined = ref
        if outcome == "not_found":
            status = vendor_job_lost(job.status)
        else:
            status = self._normalize(provider, body)
            refined = provider.refine_ref(ref, body)
        if status.terminal and status.state.has_result and not job.terminal:
            # the result is kept before the terminal state is told: whoever sees `succeeded` can fetch it
            kept = await self._keep_result(job, status, provider, refined, conn, body)
            if kept is None:
                await self.store.mark_stale(job_id, reason=RESULT_NOT_KEPT)
                self._schedule(job_id, lane.jittered(lane.next_interval(interval, changed=False)))
                return
            status = kept
        updated = await self._record(job, status, None if refined == ref else refined)
        if updated.terminal:
            self._unwatch(job_id)
            return
        changed = updated.version != job.version
        self._interval[job_id] = lane.next_interval(interval, changed=changed)
        self._schedule(job_id, self._next_delay(provider, lane, job_id, status))

    def _next_delay(self, provider: Provider, lane: Lane, job_id: str, status: CanonicalStatus) -> float:
        """When to ask the vendor again: shortly after the vendor's own estimate when the provider suggests a
        time from it (`Provider.suggest_poll_s`), else the next step of the backoff ladder."""
        suggested = provider.suggest_poll_s(status)
        if suggested is not None:
            return lane.after_estimate(suggested)
        return lane.jittered(self._interval[job_id])

    def _normalize(self, provider: Provider, body: Any) -> CanonicalStatus:
        status = provider.canonical_status(body)
        if status.state is State.UNKNOWN:
            self.metrics.unknown_status.inc(provider=provider.name, vendor_status=str(status.vendor_status)[:64])
        return status

    async def _record(self, job: JobRecord, status: CanonicalStatus, ref: dict[str, Any] | None = None) -> JobRecord:
        """Store what the vendor said; `ref` is the whole vendor_ref after this answer (None: unchanged)."""
        checked = self.clock.now()
        finish = estimated_finish(checked, status)
        public, sealed = job.vendor_ref, None
        if ref is not None:
            provider = self.providers[job.provider]
            public, private = self.refs.split(ref, provider.private_ref_fields)
            if private != self.refs.open(job.private_ref):
                sealed = self.refs.seal(private)
        ref_changed = public != job.vendor_ref or sealed is not None
        if not job.terminal and not ref_changed and not is_transition(job.status, status):
            # nothing new but perhaps the estimate: the cheap path
            await self.store.touch(job.id, checked_at=checked, estimated_finish_at=finish)
            return job.model_copy(
                update={"checked_at": checked, "stale": False, "stale_reason": None, "estimated_finish_at": finish}
            )
        updated, transitioned = await self.store.record_status(
            job.id,
            status,
            checked_at=checked,
            vendor_ref=public if public != job.vendor_ref else None,
            private_ref=sealed,
            estimated_finish_at=finish,
        )
        if updated.anomalies > job.anomalies:
            self.metrics.anomalies.inc(provider=job.provider)
            log.warning("job %s: vendor reported %s after terminal %s", job.id, status.state, job.state)
        if transitioned:
            self.metrics.transitions.inc(provider=job.provider, state=updated.state.value)
            self.notifier.publish(job.id)
            if updated.webhook_url and self.on_event:
                self.on_event()
        return updated

    async def _keep_result(
        self,
        job: JobRecord,
        status: CanonicalStatus,
        provider: Provider,
        ref: dict[str, Any],
        conn: VendorConnection,
        body: Any,
    ) -> CanonicalStatus | None:
        """Copy the finished job's result and artifact into the store; the status to record (with the issue
        `result_unavailable` when the provider said part of the result is gone for good), or None when the
        vendor failed (retry later)."""
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
                        stored = await self.store.save_artifact(
                            job.id, content_type=download.content_type, filename=download.filename,
                            chunks=download.chunks,
                        )  # fmt: skip
                    link = ArtifactLink(
                        href=f"/v1/jobs/{job.id}/artifact", content_type=stored.content_type, filename=stored.filename
                    )
                except ResultGone as exc:
                    missing.append(conn.scrubbed(exc).message)
        except (VendorError, UnsupportedOperation) as exc:
            if isinstance(exc, VendorError):
                conn.scrubbed(exc)
            self.metrics.upstream.inc(provider=job.provider, operation="result", outcome=type(exc).__name__)
            log.warning("job %s: result not kept yet (%s); will retry", job.id, exc)
            return None
        issues = parts.issues or status.issues
        if missing:
            status = ended_without_result(status, "; ".join(missing))
            issues = [*issues, status.issues[-1]]
        self.metrics.upstream.inc(provider=job.provider, operation="result", outcome="gone" if missing else "ok")
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
        await self.store.save_result(job.id, result.model_dump(mode="json"))
        return status
