"""Delivers the store's webhook outbox: every event POSTed, signed, until its receiver answers 2xx.

- Events are taken from the durable outbox (`Store.due_events`), so nothing is lost across restarts; each is
  retried with exponential backoff and jitter until acknowledged, with the same event id on every try.
- Deliveries of different jobs run concurrently (at most `concurrency` at once); the events of one job go
  strictly one after the other (version N+1 is never sent before version N is acknowledged).
- Events are never sent unsigned: a tenant without a webhook secret has its events held (retried later).
- Webhook URLs are checked against the SSRF guard before each try, and the connection itself goes through
  `GuardedResolver` (when the dispatcher makes its own session).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import aiohttp

from gateway import __version__
from gateway.config import WebhookConfig
from gateway.metrics import Metrics
from gateway.render import job_at, webhook_body
from gateway.store.base import Store, StoreError
from gateway.store.records import OutboxEvent
from gateway.webhooks.signing import EVENT_ID_HEADER, SIGNATURE_HEADER, sign
from gateway.webhooks.ssrf import AddressRefused, GuardedResolver, check_url, check_url_static

log = logging.getLogger("gateway.webhooks")

#: deliveries in flight at once (each of a different job)
CONCURRENCY = 16
#: the longest the loop sleeps without looking at the outbox (a safety net; `wake()` is the fast path)
IDLE_POLL_S = 5.0
#: pause before touching an event again after the store itself failed
STORE_RETRY_S = 1.0
#: on `stop()`, how long deliveries in flight may finish before they are cancelled (they are retried later)
STOP_GRACE_S = 2.0
#: the longest `last_error` kept
MAX_ERROR_CHARS = 500
#: the jitter: a delay is drawn uniformly from [JITTER * d, d]
JITTER = 0.8

NO_SECRET = "tenant has no webhook secret"
USER_AGENT = f"translation-gateway/{__version__} (webhooks)"


def backoff_delay(attempts: int, settings: WebhookConfig, rand: Callable[[], float] = random.random) -> float:
    """Seconds before the next try of an event that failed `attempts` times before this failure:
    `initial_backoff_s * 2**attempts`, capped at `max_backoff_s`, minus up to 20% jitter."""
    base = min(settings.max_backoff_s, settings.initial_backoff_s * 2.0 ** min(max(attempts, 0), 64))
    return base * (JITTER + (1.0 - JITTER) * rand())


def _resolve(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


def _redact(text: str, secret: str | None) -> str:
    if secret:
        text = text.replace(secret, "[redacted]")
    return text[:MAX_ERROR_CHARS]


def _refusal(exc: BaseException) -> AddressRefused | None:
    """The guard's refusal behind a connection error (aiohttp wraps the resolver's OSError), if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, AddressRefused):
            return current
        seen.add(id(current))
        os_error = getattr(current, "os_error", None)
        if isinstance(os_error, AddressRefused):
            return os_error
        current = current.__cause__ or current.__context__
    return None


class WebhookDispatcher:
    """Delivers outbox events; `start()` once the store is open, `wake()` after queuing events, `stop()` last."""

    def __init__(
        self,
        store: Store,
        secret_for: Callable[[str], str | None],
        settings: WebhookConfig,
        metrics: Metrics,
        *,
        session: aiohttp.ClientSession | None = None,
        concurrency: int = CONCURRENCY,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.store = store
        self.secret_for = secret_for
        self.settings = settings
        self.metrics = metrics
        self.concurrency = concurrency
        self.session = session
        #: without a session of its own the dispatcher cannot rely on `GuardedResolver`: names are checked first
        self._own_session = session is None
        self._woken = False
        self._waiter: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        #: job id -> its delivery in flight (at most one per job: the order per job)
        self._inflight: dict[str, asyncio.Task[None]] = {}
        #: event ids whose try ended since the current outbox read began (that read may predate their update)
        self._settled: set[str] = set()
        #: event id -> loop time before which it is not tried again (the store failed to record its outcome)
        self._hold: dict[str, float] = {}
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
                resolver=GuardedResolver(self.settings.allow_private), limit=self.concurrency
            )
            self.session = aiohttp.ClientSession(connector=connector, trust_env=False)
        self._woken = True
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
        """An event was queued (a transition of a job with a webhook URL): look at the outbox now."""
        self._woken = True
        _resolve(self._waiter)

    # the loop

    async def _run(self) -> None:
        while True:
            self._woken = False
            try:
                delay = await self._dispatch_due()
            except asyncio.CancelledError:
                raise
            except Exception:  # the store failed: try again shortly, never die
                log.exception("webhook outbox could not be read; retrying in %g s", STORE_RETRY_S)
                delay = STORE_RETRY_S
            await self._sleep(delay)

    async def _sleep(self, delay: float) -> None:
        """Until `delay` passes or `wake()` is called (also a call made while the round ran).

        Not `asyncio.wait_for(event.wait())`: on Python 3.11 that can swallow a cancellation arriving as the
        event is set, and `stop()` would then wait forever.
        """
        if self._woken:
            return
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        self._waiter = waiter
        timer = loop.call_later(delay, _resolve, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def _blocked(self, event: OutboxEvent) -> bool:
        """True when the event must not start now: its job is in flight, it is held, or the read may be stale."""
        return event.job_id in self._inflight or event.id in self._settled or event.id in self._hold

    async def _dispatch_due(self) -> float:
        """Start deliveries for due events; the seconds until something may be due (a finished delivery or
        `wake()` interrupts the sleep)."""
        loop = asyncio.get_running_loop()
        self._hold = {event_id: until for event_id, until in self._hold.items() if until > loop.time()}
        free = self.concurrency - len(self._inflight)
        if free > 0:
            self._settled.clear()
            # one head event per job; those of jobs in flight come back too, so ask for enough to fill every slot
            due = await self.store.due_events(datetime.now(UTC), free + len(self._inflight) + len(self._hold))
            for event in due:
                if free == 0:
                    break
                if not self._blocked(event):
                    self._launch(event)
                    free -= 1
        if free == 0:
            return IDLE_POLL_S
        return await self._until_next_due()

    async def _until_next_due(self) -> float:
        loop = asyncio.get_running_loop()
        now = datetime.now(UTC)
        delay = IDLE_POLL_S
        if self._hold:
            delay = min(delay, max(0.0, min(self._hold.values()) - loop.time()))
        upcoming = await self.store.due_events(
            now + timedelta(seconds=IDLE_POLL_S), len(self._inflight) + len(self._hold) + 1
        )
        for event in upcoming:
            if event.job_id in self._inflight or event.id in self._hold:
                continue
            delay = min(delay, (event.next_attempt_at - datetime.now(UTC)).total_seconds())
            break
        return max(delay, 0.005)

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
            self._hold[event.id] = asyncio.get_running_loop().time() + STORE_RETRY_S

    # one try

    def _secret(self, tenant: str) -> str | None:
        try:
            return self.secret_for(tenant) or None
        except Exception:
            log.exception("webhook secret of tenant %r could not be read", tenant)
            return None

    async def _precheck(self, url: str) -> str | None:
        if self._own_session:  # names are checked by GuardedResolver at connect time; IP literals here
            return check_url_static(url, allow_private=self.settings.allow_private)
        return await check_url(url, allow_private=self.settings.allow_private)

    async def _payload(self, event: OutboxEvent) -> dict[str, object]:
        """The event's body: the job as it was at the event's version (the same on every try)."""
        job = await self.store.get_job(event.job_id)
        transition = await self.store.get_transition(event.job_id, event.version)
        if job is None or transition is None:  # jobs and transitions are never deleted
            raise StoreError(f"webhook {event.id}: job {event.job_id} version {event.version} is not stored")
        return webhook_body(job_at(job, transition), event.id)

    async def _deliver(self, event: OutboxEvent) -> None:
        secret = self._secret(event.tenant)
        if secret is None:
            if event.tenant not in self._warned_tenants:
                self._warned_tenants.add(event.tenant)
                log.warning(
                    "tenant %r has no webhook secret: its webhooks are held, never sent unsigned "
                    "(set webhook_secret_env for the tenant)",
                    event.tenant,
                )
            await self._retry_later(event, "refused", NO_SECRET, None)
            return
        self._warned_tenants.discard(event.tenant)
        problem = await self._precheck(event.url)
        if problem:
            await self._retry_later(event, "refused", f"webhook URL refused: it {problem}", secret)
            return
        assert self.session is not None
        body = json.dumps(await self._payload(event), separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(secret, body, int(time.time())),
            EVENT_ID_HEADER: event.id,
            "User-Agent": USER_AGENT,
        }
        timeout = self.settings.timeout_s
        outcome, error = "failed", None
        try:
            async with self.session.post(
                event.url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
                allow_redirects=False,
                raise_for_status=False,
            ) as resp:
                status = resp.status
            if not 200 <= status < 300:
                error = f"receiver answered HTTP {status}"
        except TimeoutError:
            error = f"no answer within {timeout:g} s"
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            refused = _refusal(exc)
            if refused is not None:
                outcome, error = "refused", f"webhook URL refused: {refused}"
            else:
                error = f"delivery failed: {type(exc).__name__}: {exc}"
        if error is None:
            await self.store.mark_delivered(event.id, datetime.now(UTC))
            self.metrics.webhooks.inc(outcome="delivered")
            log.debug("webhook %s for job %s delivered (try %d)", event.id, event.job_id, event.attempts + 1)
            return
        await self._retry_later(event, outcome, error, secret)

    async def _retry_later(self, event: OutboxEvent, outcome: str, error: str, secret: str | None) -> None:
        error = _redact(error, secret)
        delay = backoff_delay(event.attempts, self.settings)
        self.metrics.webhooks.inc(outcome=outcome)
        level = logging.WARNING if outcome == "refused" and error != NO_SECRET else logging.INFO
        log.log(
            level,
            "webhook %s for job %s not delivered (try %d): %s; next try in %.3g s",
            event.id,
            event.job_id,
            event.attempts + 1,
            error,
            delay,
        )
        await self.store.reschedule(
            event.id,
            next_attempt_at=datetime.now(UTC) + timedelta(seconds=delay),
            attempts=event.attempts + 1,
            last_error=error,
        )
