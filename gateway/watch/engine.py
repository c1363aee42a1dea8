"""The watch engine: the gateway polls vendors for every non-terminal job, so readers never do.

One scheduled poll per job (a heap of due times), at most one upstream request per job at a time, per-provider
pacing (lanes.py), transitions recorded in the store before anyone is told, and, once a job is terminal, its
result and artifact copied into the store so a vendor's purge loses nothing (results.py).

Costs (issue 10): the latest snapshot of every watched job lives in memory (`snapshot`), so a poll reads nothing
from the store and HTTP reads of watched jobs never touch it; a poll that finds nothing new only notes the check,
and those notes are written in batches (checks.py, `Store.save_checks`); only a transition is written at once.
A vendor answer equal to the job's previous one is not normalized again (its canonical status is reused).
Backpressure: a due job goes to its provider's ready queue, drained by at most the lane's concurrency of worker
tasks, so however many jobs are due the engine never holds one waiting task per job.

On a shared store (several replicas, leases) this replica polls only the jobs it holds; `heard` refreshes a
snapshot another replica wrote a newer version of, and a refused write (`LeaseLost`) drops the job."""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Callable
from typing import Any

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.errors import VendorError, VendorNotFound
from gateway.metrics import Metrics
from gateway.provider import Provider
from gateway.refs import RefSealer, SealError, secret_values
from gateway.render import estimated_finish
from gateway.routing import Router
from gateway.states import CanonicalStatus, JobError, StaleReason, State, is_transition
from gateway.store.base import LeaseLost, Store
from gateway.store.records import JobRecord
from gateway.store.shared import SharedStore
from gateway.vendor_http import VendorConnection
from gateway.watch.checks import CheckBatcher
from gateway.watch.lanes import Lane
from gateway.watch.notifier import Notifier
from gateway.watch.results import RESULT_UNAVAILABLE, empty_result, ended_without_result, keep_result
from gateway.watch.routed import RoutedJobs
from gateway.watch.schedule import Watched

log = logging.getLogger("gateway.watch")

__all__ = ["RESULT_UNAVAILABLE", "Watcher", "ended_without_result", "vendor_job_lost"]

#: why a snapshot is stale while the breaker keeps the gateway from asking the vendor
BREAKER_OPEN = StaleReason(
    code="upstream_unavailable", message="the vendor failed repeatedly; the gateway waits before asking it again"
)
#: why a finished job is stale while its result could not be copied yet
RESULT_NOT_KEPT = StaleReason(code="result_not_kept", message="the vendor finished; its result could not be read yet")


def vendor_job_lost(previous: CanonicalStatus) -> CanonicalStatus:
    return CanonicalStatus(
        state=State.FAILED,
        vendor_status=previous.vendor_status,
        error=JobError(code="vendor_job_lost", message="the vendor no longer knows this job", retryable=False),
    )


class Watcher(RoutedJobs):
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
        router: Router | None = None,
    ) -> None:
        super().__init__(lanes, clock)
        #: routed jobs' fail-over and deadlines (contract section 4)
        self.router = router
        self.store = store
        self.providers = providers
        self.connections = connections
        self.metrics = metrics
        self.notifier = notifier
        #: called after a transition that queued a webhook event (wakes the webhook dispatcher)
        self.on_event = on_event
        #: seals and opens the providers' private vendor_ref fields
        self.refs = refs or RefSealer()
        self.checks = CheckBatcher(store, clock, on_lost=self.forget)
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
        self.checks.start()
        self._loop_task = asyncio.create_task(self._run(), name="gateway-watcher")

    async def stop(self) -> None:
        tasks = [t for t in (self._loop_task, *self._tasks) if t]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.checks.stop()

    def forget(self, job_id: str) -> None:
        """Stop polling a job without finishing it: another replica owns it now (shared store)."""
        self._watches.pop(job_id, None)
        self.checks.forget(job_id)

    def heard(self, job_id: str, version: int) -> None:
        """Another replica announced version `version` of a job (shared store): a snapshot held here that is
        older is read again from the store."""
        watched = self._watches.get(job_id)
        if watched is not None and watched.job.version < version:
            self._spawn(self._refresh(job_id), f"refresh-{job_id}")

    async def _refresh(self, job_id: str) -> None:
        fresh = await self.store.get_job(job_id)
        watched = self._watches.get(job_id)
        if fresh is not None and watched is not None and fresh.version >= watched.job.version:
            watched.set_job(fresh)

    async def poll_now(self, job_id: str) -> None:
        """Poll this job now, or join the poll already in flight (never two at once). On a shared store this
        replica takes the job's lease over first (e.g. a cancel sent through it), so its write is not refused."""
        running = self._inflight.get(job_id)
        if running is None:
            if isinstance(self.store, SharedStore):
                await self.store.take_over(job_id)
                running = self._inflight.get(job_id)
        if running is None:
            running = self._inflight[job_id] = asyncio.get_running_loop().create_future()
            self._spawn(self._poll(job_id, running), f"poll-{job_id}")
        await asyncio.shield(running)

    # -- one poll ----------------------------------------------------------------------------
    def vendor_io(self, job: JobRecord) -> tuple[dict[str, Any], VendorConnection]:
        """The job's whole vendor_ref (its private fields opened) and a connection that scrubs those fields'
        values from every message: what each provider I/O method for this job gets. SealError when the
        private fields cannot be opened."""
        if not job.private_ref:  # most jobs: nothing to open, nothing more to scrub
            return dict(job.vendor_ref), self.connections[job.provider]
        private = self.refs.open(job.private_ref)
        conn = self.connections[job.provider].with_secrets(secret_values(private))
        return {**job.vendor_ref, **private}, conn

    async def _poll(self, job_id: str, done: asyncio.Future[None]) -> None:
        """One poll of the job; `done` (its entry in the in-flight table) resolves when it ends, however."""
        used: list[VendorConnection] = []
        try:
            await self._poll_once(job_id, used)
        except asyncio.CancelledError:
            raise
        except LeaseLost:  # another replica took the job over: it is that replica's to poll now
            log.info("job %s: lease taken over by another replica; no longer polled here", job_id)
            self.forget(job_id)
        except Exception:  # a bug must not stop watching this job; its trace holds no secret of it
            trace = traceback.format_exc()
            for conn in used:
                trace = conn.scrub(trace)
            log.error("poll of %s failed:\n%s", job_id, trace)
            watched = self._watches.get(job_id)
            if watched is not None:
                self._schedule(job_id, watched, self.lanes[watched.job.provider].settings.max_s)
        finally:
            if self._inflight.get(job_id) is done:
                del self._inflight[job_id]
            if not done.done():
                done.set_result(None)

    async def _watched(self, job_id: str) -> Watched | None:
        """The job's watch entry; a job not watched here (e.g. polled on request) is read from the store once."""
        watched = self._watches.get(job_id)
        if watched is None:
            job = await self.store.get_job(job_id)
            if job is None or job.provider not in self.lanes:
                return None
            self.watch(job)
            watched = self._watches[job_id]
        job = watched.job
        if job.terminal and (job.result_available or not job.state.has_result):
            self._finish(job)
            return None
        return watched

    async def _poll_once(self, job_id: str, used: list[VendorConnection]) -> None:
        """One poll of one job; `used` gets the connection it talks through (to scrub a failure's trace)."""
        watched = await self._watched(job_id)
        if watched is None:
            return
        job = watched.job
        provider = self.providers[job.provider]
        lane = self.lanes[job.provider]
        try:
            ref, conn = self.vendor_io(job)
        except SealError as exc:
            log.error("job %s: %s", job_id, exc)
            self._note_stale(watched, StaleReason(code="private_ref_unreadable", message=str(exc)))
            self._schedule(job_id, watched, lane.settings.max_s)
            return
        used.append(conn)
        if await self._past_deadline(watched, ref, conn):
            return
        if not lane.breaker.allow():
            self._note_stale(watched, BREAKER_OPEN)
            self._schedule(job_id, watched, max(lane.breaker.retry_in(), 0.05))
            return
        if job.terminal:  # terminal but its result is not kept yet (e.g. attached after the fact): finish that
            await self._keep_result(watched, job.status, ref, conn, None)
            return
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
            self._note_stale(watched, StaleReason(code=body.problem_code, message=body.message))
            wait = watched.interval = lane.next_interval(watched.interval, changed=False)
            retry_after = getattr(body, "retry_after", None)
            self._schedule(job_id, watched, max(wait, retry_after) if retry_after else lane.jittered(wait))
            return
        refined = ref
        if outcome == "not_found":
            status = vendor_job_lost(job.status)
        else:
            status = self._normalize(provider, watched, body)
            refined = provider.refine_ref(ref, body)
        moved, attempts = await self._failed_over(watched, status)
        if moved:  # on to the route's next provider: nothing of this vendor job is the job's state
            lane.breaker.success()
            return
        if status.terminal and status.state.has_result:
            # the result is kept before the terminal state is told: whoever sees `succeeded` can fetch it; the
            # breaker hears of this poll once the result is kept or not
            kept = await self._keep_result(watched, status, refined, conn, body)
            if kept is None:
                return
            status = kept
        else:
            lane.breaker.success()
        updated = await self._record(watched, status, None if refined == ref else refined, attempts)
        if updated.terminal:
            self._finish(updated)
            return
        watched.interval = lane.next_interval(watched.interval, changed=updated.version != job.version)
        suggested = provider.suggest_poll_s(status)  # shortly after the vendor's own estimate, where it gives one
        delay = lane.after_estimate(suggested) if suggested is not None else lane.jittered(watched.interval)
        self._schedule(job_id, watched, delay)

    def _normalize(self, provider: Provider, watched: Watched, body: Any) -> CanonicalStatus:
        """The canonical status of the vendor's answer. `normalize` is pure, so a body equal to the job's previous
        one (the common poll: nothing moved) has that one's status, without validating or building anything."""
        status = watched.answer_status
        if status is None or watched.answer != body:
            status = provider.canonical_status(body)
            if status == watched.job.status:  # kept as the one object the snapshot holds already
                status = watched.job.status
            watched.answer, watched.answer_status = body, status
        if status.state is State.UNKNOWN:
            self.metrics.unknown_status.inc(provider=provider.name, vendor_status=str(status.vendor_status)[:64])
        return status

    def _note_stale(self, watched: Watched, reason: StaleReason) -> None:
        """The vendor could not confirm the snapshot: stale now in memory, in the store with the next batch."""
        watched.stale(reason)
        self.checks.stale(watched.job.id, reason)

    async def _record(
        self,
        watched: Watched,
        status: CanonicalStatus,
        ref: dict[str, Any] | None = None,
        attempts: list[dict[str, Any]] | None = None,
    ) -> JobRecord:
        """Store what the vendor said; `ref` is the whole vendor_ref after this answer (None: unchanged), `attempts`
        the routed job's attempts with its ending (None: unchanged)."""
        job = watched.job
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
            # nothing new but perhaps the estimate: the snapshot moves now, the store with the next batch
            watched.checked(checked, finish)
            self.checks.confirm(job.id, checked, finish)
            return job
        self.checks.forget(job.id)  # this write supersedes the job's pending note
        updated, transitioned = await self.store.record_status(
            job.id,
            status,
            checked_at=checked,
            vendor_ref=public if public != job.vendor_ref else None,
            private_ref=sealed,
            estimated_finish_at=finish,
            attempts=attempts,
        )
        watched.set_job(updated)
        if updated.anomalies > job.anomalies:
            self.metrics.anomalies.inc(provider=job.provider)
            log.warning("job %s: vendor reported %s after terminal %s", job.id, status.state, job.state)
        if transitioned:
            if updated.terminal:
                await self._count_usage(job.id, updated.attempt)
            self.metrics.transitions.inc(provider=job.provider, state=updated.state.value)
            self.notifier.publish(job.id)
            if updated.webhook_url and self.on_event:
                self.on_event()
        return updated

    # -- results -----------------------------------------------------------------------------
    async def _keep_result(
        self, watched: Watched, status: CanonicalStatus, ref: dict[str, Any], conn: VendorConnection, body: Any
    ) -> CanonicalStatus | None:
        """Keep the finished job's result (the caller asked the breaker): the status to record, or None when it
        failed. A failure is retried with the poll backoff (vendor failures count towards the breaker) until
        `result_deadline_s` has passed since the first one; then the job ends without it (`end_without_result`)."""
        job = watched.job
        lane = self.lanes[job.provider]
        provider = self.providers[job.provider]
        kept = await keep_result(self.store, self.metrics, job, status, provider, ref, conn, body)
        if isinstance(kept, CanonicalStatus):
            lane.breaker.success()
            watched.result_since = None
            if job.terminal:  # the terminal state was recorded before: only the result was missing
                self._finish(job.model_copy(update={"result_available": True}))
                self.notifier.publish(job.id)
            return kept
        if isinstance(kept, VendorError):
            lane.breaker.failure()
        now = self.clock()
        if watched.result_since is None:
            watched.result_since = now
        if now - watched.result_since >= lane.settings.result_deadline_s:
            reason = f"{type(kept).__name__}: {kept}" if str(kept) else type(kept).__name__
            await self.end_without_result(job.id, status, conn.scrub(f"the result could not be kept ({reason})"))
            return None
        self._note_stale(watched, RESULT_NOT_KEPT)
        watched.interval = lane.next_interval(watched.interval, changed=False)
        retry_after = getattr(kept, "retry_after", None)
        wait = max(watched.interval, retry_after) if retry_after else lane.jittered(watched.interval)
        self._schedule(job.id, watched, max(wait, lane.breaker.retry_in()))
        return None

    async def end_without_result(self, job_id: str, status: CanonicalStatus, message: str) -> JobRecord | None:
        """End a finished job whose result cannot be kept: its terminal state (`completed_with_issues` where the
        vendor said success) with an issue `result_unavailable` carrying `message`, an empty Result (no outputs,
        that issue) kept in its place, and the job no longer watched. The one way a job ends without its result
        after the fact (a keep failing past its deadline, a result the store cannot hold). Returns the job as
        stored (None when the store has no such job)."""
        watched = self._watches.get(job_id)
        job = watched.job if watched is not None else await self.store.get_job(job_id)
        if job is None:
            return None
        ended = ended_without_result(status, message)
        try:
            await self.store.save_result(job.id, empty_result(job, ended))
        except LeaseLost:
            raise
        except Exception:
            log.exception("job %s: even the empty result could not be kept", job.id)
        log.warning("job %s ends %s without its result: %s", job.id, ended.state.value, message)
        if not job.terminal:  # a terminal state already recorded stays as it is (terminal is sticky)
            await self._record(watched if watched is not None else Watched(job, 0.0), ended)
        final = await self.store.get_job(job.id)
        if final is not None:
            self._finish(final)
        self.notifier.publish(job.id)
        return final
