"""Tells waiting readers (long polls, SSE streams) that a job has a new version.

Fed by this process's watcher, and on a shared store also by every other replica's transitions (the store's
LISTEN/NOTIFY, gateway.server.cluster): readers always re-read the store, so a duplicate wake-up costs one read."""

from __future__ import annotations

import asyncio

from gateway.clock import wait_event


class Subscription:
    """Every job id published since the last `next()`: a reader of all jobs (the operator's live view)."""

    def __init__(self) -> None:
        self.pending: set[str] = set()
        self.event = asyncio.Event()

    def add(self, job_id: str) -> None:
        self.pending.add(job_id)
        self.event.set()

    async def next(self, seconds: float) -> set[str]:
        """The ids published since the last call (waiting up to `seconds` for one); empty after the timeout."""
        await wait_event(self.event, seconds)
        self.event.clear()
        found, self.pending = self.pending, set()
        return found


class Notifier:
    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self._subscriptions: set[Subscription] = set()
        #: set when the server shuts down: every wait returns at once, streams end
        self.closing = False

    def close(self) -> None:
        """Wake every waiting reader for good (server shutdown)."""
        self.closing = True
        for event in self._events.values():
            event.set()
        self._events.clear()
        for subscription in self._subscriptions:
            subscription.event.set()

    def publish(self, job_id: str) -> None:
        """Wake every reader waiting on this job, and tell every subscription."""
        event = self._events.pop(job_id, None)
        if event is not None:
            event.set()
        for subscription in self._subscriptions:
            subscription.add(job_id)

    def publish_all(self) -> None:
        """Wake every waiting reader (each re-reads its job): news may have been missed (a shared store's
        notifications were interrupted)."""
        events, self._events = self._events, {}
        for event in events.values():
            event.set()

    def subscribe(self) -> Subscription:
        """Hear of every job that changes (or is created) from now on; `unsubscribe` when done."""
        subscription = Subscription()
        self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    async def wait(self, job_id: str, seconds: float) -> bool:
        """Wait until the next publish for this job or the timeout; True when woken by a publish."""
        if self.closing:
            return False
        event = self._events.get(job_id)
        if event is None:
            event = self._events[job_id] = asyncio.Event()
        await wait_event(event, seconds)
        if not event.is_set() and self._events.get(job_id) is event and not _has_waiters(event):
            self._events.pop(job_id, None)
        return event.is_set()


def _has_waiters(event: asyncio.Event) -> bool:
    return bool(getattr(event, "_waiters", None))
