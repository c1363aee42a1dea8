"""Delivers the outbox: each event POSTed, signed, until the receiver answers 2xx; in order per job."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import aiohttp

from gateway import __version__
from gateway.config import WebhookConfig
from gateway.metrics import Metrics
from gateway.store.base import Store
from gateway.store.records import OutboxEvent
from gateway.webhooks.signing import HEADER, sign
from gateway.webhooks.ssrf import GuardedResolver, check_url

log = logging.getLogger("gateway.webhooks")

#: deliveries in flight at once (events of different jobs)
PARALLEL = 16
BATCH = 200


class WebhookDispatcher:
    def __init__(
        self,
        store: Store,
        secret_for: Callable[[str], str | None],
        settings: WebhookConfig,
        metrics: Metrics,
        *,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.store = store
        self.secret_for = secret_for
        self.settings = settings
        self.metrics = metrics
        self._own_session = session is None
        self.session = session
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.session is None:
            connector = aiohttp.TCPConnector(resolver=GuardedResolver(self.settings.allow_private), limit=PARALLEL)
            self.session = aiohttp.ClientSession(connector=connector)
        self._task = asyncio.create_task(self._run(), name="gateway-webhooks")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._own_session and self.session:
            await self.session.close()

    def wake(self) -> None:
        """A transition queued an event: look at the outbox now."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                delay = await self._deliver_due()
            except asyncio.CancelledError:
                raise
            except Exception:  # the store hiccupped: try again shortly, never die
                log.exception("webhook dispatch round failed")
                delay = 1.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)

    async def _deliver_due(self) -> float:
        """Deliver what is due; the seconds until the next try is due (bounded)."""
        now = datetime.now(UTC)
        due = await self.store.due_events(now, BATCH)  # at most one per job: the head of its queue
        gate = asyncio.Semaphore(PARALLEL)

        async def deliver(event: OutboxEvent) -> bool:
            async with gate:
                return await self._deliver(event)

        delivered = await asyncio.gather(*(deliver(event) for event in due))
        if any(delivered) or len(due) >= BATCH:
            return 0.0  # the next event of a job that just got one may be due now
        upcoming = await self.store.due_events(now + timedelta(seconds=self.settings.max_backoff_s), 1)
        if not upcoming:
            return 60.0
        return max(0.0, min(60.0, (upcoming[0].next_attempt_at - datetime.now(UTC)).total_seconds()))

    async def _deliver(self, event: OutboxEvent) -> bool:
        secret = self.secret_for(event.tenant)
        problem = None
        if not secret:
            problem = "tenant has no webhook secret; events are never sent unsigned"
        else:
            problem = await check_url(event.url, allow_private=self.settings.allow_private)
        if problem:
            self.metrics.webhooks.inc(outcome="refused")
            log.warning("webhook %s for job %s refused: %s", event.id, event.job_id, problem)
            await self._retry_later(event, problem)
            return False
        assert self.session is not None and secret is not None
        body = json.dumps(event.payload, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            HEADER: sign(secret, body),
            "Gateway-Event-Id": event.id,
            "User-Agent": f"translation-gateway/{__version__}",
        }
        try:
            async with self.session.post(
                event.url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=self.settings.timeout_s),
                allow_redirects=False,
            ) as resp:
                ok = 200 <= resp.status < 300
                error = None if ok else f"receiver answered HTTP {resp.status}"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            ok, error = False, f"delivery failed: {type(exc).__name__}"
        if ok:
            await self.store.mark_delivered(event.id, datetime.now(UTC))
            self.metrics.webhooks.inc(outcome="delivered")
            return True
        self.metrics.webhooks.inc(outcome="failed")
        log.info("webhook %s for job %s: %s (attempt %d)", event.id, event.job_id, error, event.attempts + 1)
        await self._retry_later(event, error or "failed")
        return False

    async def _retry_later(self, event: OutboxEvent, error: str) -> None:
        backoff = min(self.settings.max_backoff_s, self.settings.initial_backoff_s * 2 ** min(event.attempts, 30))
        backoff *= random.uniform(0.8, 1.0)
        await self.store.reschedule(
            event.id,
            next_attempt_at=datetime.now(UTC) + timedelta(seconds=backoff),
            attempts=event.attempts + 1,
            last_error=error,
        )
