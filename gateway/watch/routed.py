"""The watcher's part in choosing vendors (contract section 4): a routed job whose vendor job fails over moves on
to its route's next provider under the same id (`gateway.routing.Router.fail_over`), a job past its route's
deadline ends `deadline_exceeded`, and every attempt that ends is counted in the usage counters (Prometheus)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.errors import VendorError
from gateway.metrics import Metrics
from gateway.provider import Provider
from gateway.routing import Router, deadline_of, deadline_status
from gateway.states import CanonicalStatus, State
from gateway.store.base import Store
from gateway.store.ledger import from_micros
from gateway.store.records import JobRecord
from gateway.vendor_http import VendorConnection
from gateway.watch.notifier import Notifier
from gateway.watch.schedule import Scheduler, Watched

log = logging.getLogger("gateway.watch")


class RoutedJobs(Scheduler):
    """Mixed into the watcher: fail-over, deadlines and usage counters."""

    store: Store
    metrics: Metrics
    notifier: Notifier
    on_event: Callable[[], None] | None
    providers: dict[str, Provider]
    #: submits routed jobs again on fail-over (None: no fail-over, no deadlines)
    router: Router | None
    #: store what the vendor said (the engine's `Watcher._record`)
    _record: Callable[[Watched, CanonicalStatus], Awaitable[JobRecord]]

    def _until_deadline(self, job: JobRecord) -> float | None:
        """Seconds until the job's route deadline (negative once passed); None without one."""
        if self.router is None or job.terminal:
            return None
        deadline = deadline_of(job, self.router.route_of(job))
        return None if deadline is None else (deadline - self.clock.now()).total_seconds()

    def _schedule(self, job_id: str, watched: Watched, delay: float) -> None:
        """A job with a route deadline is polled at its deadline at the latest."""
        left = self._until_deadline(watched.job)
        super()._schedule(job_id, watched, min(delay, left) if left is not None and left > 0 else delay)

    async def _past_deadline(self, watched: Watched, ref: dict[str, Any], conn: VendorConnection) -> bool:
        """End a job whose route deadline has passed: its vendor job cancelled (best effort), the job `failed`
        with `deadline_exceeded`. True when it ended here."""
        job = watched.job
        left = self._until_deadline(job)
        if left is None or left > 0 or self.router is None:
            return False
        route = self.router.route_of(job)
        assert route is not None
        provider = self.providers[job.provider]
        if provider.capabilities.cancel:
            try:
                await provider.cancel(conn, ref)
                self.metrics.upstream.inc(provider=job.provider, operation="cancel", outcome="ok")
            except VendorError as exc:
                self.metrics.upstream.inc(provider=job.provider, operation="cancel", outcome=type(exc).__name__)
                log.warning("job %s: cancel at its deadline failed: %s", job.id, conn.scrubbed(exc).message)
        ended = await self._record(watched, deadline_status(job, route))
        self._finish(ended)
        log.info("job %s failed: past its route's deadline", job.id)
        return True

    async def _failed_over(self, watched: Watched, status: CanonicalStatus) -> tuple[bool, list[dict[str, Any]] | None]:
        """A vendor job that ended `failed`: (True, None) when the job moved on to its next attempt; else (False,
        the attempts to record with the job's ending, None when unchanged)."""
        job = watched.job
        if self.router is None or status.state is not State.FAILED:
            return False, None
        moved, attempts = await self.router.fail_over(job, status)
        if moved is None:
            return False, attempts if attempts != job.attempts else None
        await self._count_usage(moved.id, job.attempt)
        self.metrics.transitions.inc(provider=moved.provider, state=moved.state.value)
        watched.set_job(moved)
        lane = self.lanes[moved.provider]
        watched.interval = lane.first_interval()
        self._schedule(moved.id, watched, watched.interval)
        self.notifier.publish(moved.id)
        if moved.webhook_url and self.on_event:
            self.on_event()
        return True, None

    async def _count_usage(self, job_id: str, attempt: int) -> None:
        """The Prometheus counters of an attempt that ended (its ledger entry, as the store recorded it)."""
        try:
            entries = await self.store.job_usage(job_id)
        except Exception:  # counters are best effort; the ledger itself was written with the transition
            log.exception("job %s: its usage could not be read for the counters", job_id)
            return
        for entry in entries:
            if entry.attempt != attempt:
                continue
            provider = entry.provider
            self.metrics.usage_attempts.inc(
                provider=provider, state=entry.state.value, shadow=str(entry.shadow).lower()
            )
            if entry.cost_micros is not None and entry.currency:
                self.metrics.usage_cost.inc(
                    float(from_micros(entry.cost_micros)), provider=provider, currency=entry.currency
                )
            for direction, tokens in (("input", entry.input_tokens), ("output", entry.output_tokens)):
                if tokens:
                    self.metrics.usage_tokens.inc(tokens, provider=provider, direction=direction)
            for unit, quantity in entry.units.items():
                self.metrics.usage_units.inc(quantity, provider=provider, unit=unit)
