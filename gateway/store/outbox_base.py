"""The webhook outbox and the tenant event stream of the `Store` interface (`Store` inherits these abstract
methods; every backend implements them). docs/webhooks.md says what they serve."""

from __future__ import annotations

import abc
from datetime import datetime
from typing import Any

from gateway.states import State
from gateway.store.records import DeliveryAttempt, DisabledEndpoint, EventDeliveries, JobEvent, OutboxEvent
from gateway.store.rows import events_query


class WebhookOutbox(abc.ABC):
    """Events are pending, delivered or failed (a dead letter); every try is logged; transitions are numbered."""

    @abc.abstractmethod
    async def due_events(self, now: datetime, limit: int = 100) -> list[OutboxEvent]:
        """Pending events whose next attempt is due and that are their job's earliest pending event (webhooks go
        out in order per job: a later event waits for the one before it), in delivery order. Delivered and
        failed events are never due."""

    async def record_attempt(
        self,
        attempt: DeliveryAttempt,
        *,
        generation: int,
        next_attempt_at: datetime | None = None,
        failure: str | None = None,
    ) -> bool:
        """Log one try of a pending event (in the same transaction) and move the event on:

        - `attempt.ok`: delivered at `attempt.at`;
        - else with `failure`: failed (dead-lettered) with that reason;
        - else: due again at `next_attempt_at` (required then).

        `attempts` and `step` grow by one and `last_error` takes the attempt's message. The move applies only while
        the event is still pending at `generation` (a retry or replay made meanwhile wins); the attempt is logged
        regardless. Returns whether the move applied; an unknown event id is a `StoreError`.
        """
        if not attempt.ok and failure is None and next_attempt_at is None:
            raise ValueError("a failed attempt needs next_attempt_at or a failure")
        return await self._record_attempt(attempt, generation, next_attempt_at, failure)

    @abc.abstractmethod
    async def _record_attempt(
        self, attempt: DeliveryAttempt, generation: int, next_attempt_at: datetime | None, failure: str | None
    ) -> bool:
        """`record_attempt` of a checked attempt, in one transaction (`common_outbox.moved`: how the event moves)."""

    @abc.abstractmethod
    async def disable_endpoint(self, endpoint: DisabledEndpoint) -> list[str]:
        """The receiver at (tenant, url) answered 410 Gone: remember it, and dead-letter every pending event to that
        URL of that tenant with `endpoint.reason`, in one transaction. Until re-enabled (`retry_event`,
        `replay_events`), events queued for it are created failed with the same reason. Returns the ids of the
        events it dead-lettered."""

    @abc.abstractmethod
    async def disabled_endpoint(self, tenant: str, url: str) -> DisabledEndpoint | None:
        """The tenant's disabled endpoint at `url`, or None while deliveries to it are allowed."""

    @abc.abstractmethod
    async def get_event(self, event_id: str, *, tenant: str | None = None) -> OutboxEvent | None:
        """The event, or None (also when `tenant` is given and the event is another tenant's)."""

    @abc.abstractmethod
    async def job_deliveries(self, job_id: str) -> list[EventDeliveries]:
        """Every webhook event of the job by version, each with every try of it (oldest first)."""

    @abc.abstractmethod
    async def retry_event(self, event_id: str, *, tenant: str, now: datetime) -> OutboxEvent | None:
        """Send the event again now, whatever its state: pending and due at `now`, a fresh schedule (`step` 0),
        `generation` + 1, its endpoint re-enabled; in one transaction. None when the tenant has no such event."""

    @abc.abstractmethod
    async def replay_events(self, job_id: str, *, from_version: int, now: datetime) -> list[OutboxEvent]:
        """`retry_event` for each of the job's events with a version of at least `from_version`, in one
        transaction (they go out in version order); returns them by version."""

    @abc.abstractmethod
    async def webhook_events(self, job_id: str) -> list[OutboxEvent]:
        """Every webhook event of the job, delivered or not, in the order they were queued."""

    @abc.abstractmethod
    async def pending_event_count(self) -> int:
        """Number of pending events (neither delivered nor failed)."""

    # the event stream of a tenant

    async def job_events(
        self,
        tenant: str,
        *,
        after: int = 0,
        provider: str | None = None,
        state: State | str | None = None,
        limit: int = 100,
    ) -> list[JobEvent]:
        """The tenant's transitions with a sequence number above `after`, in sequence order, optionally only of
        one provider's jobs and of one state (the state the transition entered).

        Every transition gets a store-wide sequence number when it is stored (`create_job`, `record_status`),
        strictly increasing in commit order: once a reader has seen number N, no transition numbered N or below
        can appear later (so resuming after N has no gap and no duplicate, across restarts). A backend with
        concurrent writers must allocate the number under the lock that orders its commits."""
        return await self._job_events(*events_query(tenant, after=after, provider=provider, state=state, limit=limit))

    @abc.abstractmethod
    async def _job_events(self, sql: str, params: list[Any]) -> list[JobEvent]:
        """The events read by `sql` (`rows.events_query`: transitions with their `seq`), each with its job."""

    @abc.abstractmethod
    async def last_event_seq(self) -> int:
        """The highest sequence number given so far (0 before the first transition)."""
