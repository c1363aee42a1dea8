"""Delivers the store's webhook outbox: every event POSTed, signed, until its receiver answers 2xx or the schedule
ends (docs/webhooks.md).

- Events are taken from the durable outbox (`Store.due_events`), so nothing is lost across restarts; each try is
  logged (`Store.record_attempt`), with the same event id on every try.
- Tries follow the configured schedule (`schedule.next_delay`), honouring Retry-After; an event failing every try
  is dead-lettered (kept, replayable); a 410 Gone disables the endpoint (`Store.disable_endpoint`).
- Deliveries of different jobs run concurrently (at most `concurrency` at once); the events of one job go
  strictly one after the other (version N+1 is never sent before version N is settled).
- Events are never sent unsigned: a tenant without a webhook secret has its tries logged as `no_secret`.
- Webhook URLs are checked against the network rules before each try, and the connection itself goes through
  `GuardedResolver` (when the dispatcher makes its own session), so a rebound name is refused at connect time.
- Time comes from the injected clock (`gateway.clock`): tests drive a whole schedule with a FakeClock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import aiohttp

from gateway import __version__
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.config import WebhookConfig
from gateway.metrics import Metrics
from gateway.render import job_at, webhook_body
from gateway.store.base import Store, StoreError
from gateway.store.records import DeliveryAttempt, DisabledEndpoint, OutboxEvent, iso_z
from gateway.webhooks.attempt import NO_SECRET, REFUSED, Outcome, post
from gateway.webhooks.schedule import describe_seconds, horizon_s, next_delay
from gateway.webhooks.signing import signature_headers
from gateway.webhooks.ssrf import AnyResolver, GuardedResolver, NetworkPolicy, check_url, check_url_static

log = logging.getLogger("gateway.webhooks")

#: deliveries in flight at once (each of a different job)
CONCURRENCY = 16
#: the longest the loop sleeps without looking at the outbox (a safety net; `wake()` is the fast path)
IDLE_POLL_S = 5.0
#: pause before touching an event again after the store itself failed
STORE_RETRY_S = 1.0
#: on `stop()`, how long deliveries in flight may finish before they are cancelled (they are retried later)
STOP_GRACE_S = 2.0
#: the longest message kept in the delivery log
MAX_ERROR_CHARS = 500

NO_SECRET_MESSAGE = "tenant has no webhook secret: the event is held, never sent unsigned"
USER_AGENT = f"translation-gateway/{__version__} (webhooks)"

#: the secrets that sign a tenant's event sent at a time (current first; empty: none)
SecretsFor = Callable[[str, datetime], Sequence[str]]


def _redact(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "[redacted]")
    return text[:MAX_ERROR_CHARS]


def _metric_outcome(outcome: Outcome) -> str:
    """The `outcome` label of a try: delivered, gone, refused (SSRF rules or no secret) or failed."""
    if outcome.ok:
        return "delivered"
    if outcome.gone:
        return "gone"
    return "refused" if outcome.error in (REFUSED, NO_SECRET) else "failed"


class WebhookDispatcher:
    """Delivers outbox events; `start()` once the store is open, `wake()` after queuing events, `stop()` last."""

    def __init__(
        self,
        store: Store,
        secrets_for: SecretsFor,
        settings: WebhookConfig,
        metrics: Metrics,
        *,
        session: aiohttp.ClientSession | None = None,
        resolver: AnyResolver | None = None,
        concurrency: int = CONCURRENCY,
        clock: Clock = SYSTEM_CLOCK,
        rand: Callable[[], float] = random.random,
        idle_poll_s: float = IDLE_POLL_S,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.store = store
        self.secrets_for = secrets_for
        self.settings = settings
        self.policy = NetworkPolicy(settings.allow_networks)
        self.metrics = metrics
        self.concurrency = concurrency
        self.session = session
        self.resolver = resolver
        self.clock = clock
        self.rand = rand
        #: the longest sleep without reading the outbox (a replica on a shared store is woken by notifications)
        self.idle_poll_s = idle_poll_s
        #: without a session of its own the dispatcher cannot rely on `GuardedResolver`: names are checked first
        self._own_session = session is None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: job id -> its delivery in flight (at most one per job: the order per job)
        self._inflight: dict[str, asyncio.Task[None]] = {}
        #: event ids whose try ended since the current outbox read began (that read may predate their update)
        self._settled: set[str] = set()
        #: event id -> the time before which it is not tried again (the store failed to record its outcome)
        self._hold: dict[str, datetime] = {}
        self._warned_tenants: set[str] = set()

    # lifecycle

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Start delivering; events left undelivered in the store (e.g. before a restart) go out first."""
        if self._task is not None:
            return
        if self.session is None:
            connector = aiohttp.TCPConnector(
                resolver=GuardedResolver(self.policy, inner=self.resolver), limit=self.concurrency
            )
            self.session = aiohttp.ClientSession(connector=connector, trust_env=False)
        self._wake.set()
        self._task = asyncio.create_task(self._run(), name="gateway-webhooks")

    async def stop(self) -> None:
        """Stop; deliveries in flight get `STOP_GRACE_S` to finish, the rest stay in the outbox for later."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        inflight = list(self._inflight.values())
        if inflight:
            _, pending = await asyncio.wait(inflight, timeout=min(STOP_GRACE_S, self.settings.timeout_s))
            for delivery in pending:
                delivery.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        self._inflight.clear()
        if self._own_session and self.session is not None:
            await self.session.close()
            self.session = None

    def wake(self) -> None:
        """An event was queued or re-queued: look at the outbox now."""
        self._wake.set()

    # the loop

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                wake_at = await self._dispatch_due()
            except asyncio.CancelledError:
                raise
            except Exception:  # the store failed: try again shortly, never die
                log.exception("webhook outbox could not be read; retrying in %g s", STORE_RETRY_S)
                wake_at = self.clock.now() + timedelta(seconds=STORE_RETRY_S)
            # the delay is taken from the clock right before waiting (a FakeClock may have jumped meanwhile)
            delay = (wake_at - self.clock.now()).total_seconds()
            if delay > 0:
                await self.clock.wait(self._wake, delay)
            else:
                await asyncio.sleep(0)

    def _blocked(self, event: OutboxEvent) -> bool:
        """True when the event must not start now: its job is in flight, it is held, or the read may be stale."""
        return event.job_id in self._inflight or event.id in self._settled or event.id in self._hold

    async def _dispatch_due(self) -> datetime:
        """Start deliveries for due events; return when something may be due next (the earliest upcoming try of
        an event not in flight, the end of a hold, or the idle poll). One outbox read does both: events are read
        in the order they fall due, so the due ones come first. A finished delivery or `wake()` interrupts the
        sleep."""
        now = self.clock.now()
        self._hold = {event_id: until for event_id, until in self._hold.items() if until > now}
        wake_at = now + timedelta(seconds=self.idle_poll_s)
        free = self.concurrency - len(self._inflight)
        if free == 0:
            return wake_at
        self._settled.clear()
        if self._hold:
            wake_at = min(wake_at, *self._hold.values())
        # one head event per job: those of jobs in flight or held come back too, so ask for enough to fill every
        # free slot and still see the next event that is not blocked
        upcoming = await self.store.due_events(wake_at, free + len(self._inflight) + len(self._hold) + 1)
        for event in upcoming:
            if self._blocked(event):
                continue
            if event.next_attempt_at > now:
                return min(wake_at, event.next_attempt_at)
            if free == 0:
                return wake_at  # more are due than there are slots: a finished delivery wakes the loop
            self._launch(event)
            free -= 1
        return wake_at

    def _launch(self, event: OutboxEvent) -> None:
        task = asyncio.create_task(self._deliver_safely(event), name=f"webhook {event.id}")
        self._inflight[event.job_id] = task
        task.add_done_callback(lambda done: self._finished(event, done))

    def _finished(self, event: OutboxEvent, task: asyncio.Task[None]) -> None:
        if self._inflight.get(event.job_id) is task:
            del self._inflight[event.job_id]
        self._settled.add(event.id)
        if not task.cancelled() and task.exception() is not None:  # _deliver_safely catches; never expected
            log.error("webhook %s: delivery task failed", event.id, exc_info=task.exception())
        self.wake()  # the job's next event may be due now, and a slot is free

    async def _deliver_safely(self, event: OutboxEvent) -> None:
        try:
            await self._deliver(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the store failed to record the outcome: leave the event alone for a while
            log.error(
                "webhook %s for job %s: could not record the outcome (%s); retrying in %g s",
                event.id,
                event.job_id,
                type(exc).__name__,
                STORE_RETRY_S,
            )
            self._hold[event.id] = self.clock.now() + timedelta(seconds=STORE_RETRY_S)

    # one try

    def _secrets(self, tenant: str, now: datetime) -> list[str]:
        try:
            return [s for s in self.secrets_for(tenant, now) if s]
        except Exception:
            log.exception("webhook secrets of tenant %r could not be read", tenant)
            return []

    async def _precheck(self, url: str) -> str | None:
        if self._own_session:  # names are checked by GuardedResolver at connect time; IP literals here
            return check_url_static(url, self.policy)
        return await check_url(url, self.policy, resolver=self.resolver)

    async def _body(self, event: OutboxEvent) -> bytes:
        """The event's body: the job as it was at the event's version (the same on every try)."""
        job = await self.store.get_job(event.job_id)
        transition = await self.store.get_transition(event.job_id, event.version)
        if job is None or transition is None:  # jobs and transitions are never deleted
            raise StoreError(f"webhook {event.id}: job {event.job_id} version {event.version} is not stored")
        return json.dumps(webhook_body(job_at(job, transition), event.id), separators=(",", ":")).encode()

    async def _deliver(self, event: OutboxEvent) -> None:
        now = self.clock.now()
        secrets = self._secrets(event.tenant, now)
        if not secrets:
            if event.tenant not in self._warned_tenants:
                self._warned_tenants.add(event.tenant)
                log.warning(
                    "tenant %r has no webhook secret: its webhooks are held, never sent unsigned "
                    "(set webhook_secret_env for the tenant)",
                    event.tenant,
                )
            await self._settle(event, now, Outcome(None, NO_SECRET, NO_SECRET_MESSAGE, 0), secrets)
            return
        self._warned_tenants.discard(event.tenant)
        problem = await self._precheck(event.url)
        if problem:
            await self._settle(event, now, Outcome(None, REFUSED, f"webhook URL refused: it {problem}", 0), secrets)
            return
        assert self.session is not None
        body = await self._body(event)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            **signature_headers(secrets, event.id, int(now.timestamp()), body),
        }
        outcome = await post(self.session, event.url, body, headers, timeout_s=self.settings.timeout_s, now=now)
        self.metrics.webhook_latency.observe(outcome.duration_ms / 1000, outcome=_metric_outcome(outcome))
        await self._settle(event, now, outcome, secrets)

    async def _settle(self, event: OutboxEvent, now: datetime, outcome: Outcome, secrets: Sequence[str]) -> None:
        """Log the try and move the event on: delivered, due again, dead-lettered, or its endpoint disabled."""
        message = None if outcome.message is None else _redact(outcome.message, secrets)
        attempt = DeliveryAttempt(
            event_id=event.id,
            number=event.attempts + 1,
            at=now,
            duration_ms=outcome.duration_ms,
            status=outcome.status,
            error=outcome.error,
            message=message,
        )
        self.metrics.webhooks.inc(outcome=_metric_outcome(outcome))
        if outcome.ok:
            await self.store.record_attempt(attempt, generation=event.generation)
            log.debug("webhook %s for job %s delivered (try %d)", event.id, event.job_id, attempt.number)
            return
        if outcome.gone:
            await self._disable(event, now, attempt)
            return
        step = event.step + 1
        delay = next_delay(step, self.settings, outcome.retry_after, self.rand)
        if delay is None:
            failure = (
                f"gave up after {step} tries (the end of the retry schedule, about "
                f"{describe_seconds(horizon_s(self.settings))}); the last: {message}"
            )
            if await self.store.record_attempt(attempt, generation=event.generation, failure=failure):
                self.metrics.webhook_dead_letters.inc(reason="exhausted")
            log.warning("webhook %s for job %s dead-lettered: %s", event.id, event.job_id, failure)
            return
        level = logging.WARNING if outcome.error == REFUSED else logging.INFO
        log.log(
            level,
            "webhook %s for job %s not delivered (try %d): %s; next try in %.3g s",
            event.id,
            event.job_id,
            attempt.number,
            message,
            delay,
        )
        await self.store.record_attempt(
            attempt, generation=event.generation, next_attempt_at=now + timedelta(seconds=delay)
        )

    async def _disable(self, event: OutboxEvent, now: datetime, attempt: DeliveryAttempt) -> None:
        reason = (
            f"the receiver answered 410 Gone at {iso_z(now)}: deliveries to this URL "
            "are stopped (retry or replay an event to resume them)"
        )
        await self.store.record_attempt(attempt, generation=event.generation, failure=reason)
        others = await self.store.disable_endpoint(
            DisabledEndpoint(tenant=event.tenant, url=event.url, disabled_at=now, reason=reason, event_id=event.id)
        )
        self.metrics.webhook_dead_letters.inc(1 + len(others), reason="gone")
        log.warning(
            "webhook endpoint of tenant %r disabled: the receiver answered 410 Gone to %s (%d more events stopped)",
            event.tenant,
            event.id,
            len(others),
        )
