"""The cleanup context that makes a replica part of a cluster when its store is shared (PostgreSQL): the lease
keeper (which jobs this replica polls, its share of each vendor's limits) and the listener that brings every
replica's transitions to this one's long polls, event streams and webhook dispatcher. Nothing for SQLite."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from gateway.clock import Clock
from gateway.server.keys import DISPATCHER, LEASES, STORE, WATCHER
from gateway.store.shared import SharedStore
from gateway.watch.leases import LeaseKeeper

#: on a shared store, the webhook dispatcher's idle outbox read comes once per this many lease times
SHARED_IDLE_POLL_LEASES = 20


def cluster_ctx(clock: Clock) -> Callable[[web.Application], AsyncIterator[None]]:
    """The context, for the app's clock."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        store = app[STORE]
        if not isinstance(store, SharedStore):
            yield
            return
        watcher = app[WATCHER]
        dispatcher = app[DISPATCHER]
        # every queued event is announced (below), and the lease keeper's heartbeat says when a due event is held
        # by no replica (one a dead replica let lapse): the outbox need not be read every few seconds on every
        # replica; the idle read stays as a safety net
        dispatcher.idle_poll_s = max(dispatcher.idle_poll_s, SHARED_IDLE_POLL_LEASES * store.lease_s)

        def on_change(job_id: str, version: int, queued_event: bool) -> None:
            watcher.heard(job_id, version)
            watcher.notifier.publish(job_id)
            if queued_event:
                dispatcher.wake()

        def on_connected(again: bool) -> None:
            if again:  # notifications sent while disconnected are lost: every reader re-reads the store
                watcher.notifier.publish_all()
                dispatcher.wake()

        listener = asyncio.create_task(store.listen(on_change, on_connected), name="gateway-listen")
        keeper = LeaseKeeper(store, watcher, watcher.lanes, clock, on_events_waiting=dispatcher.wake)
        app[LEASES] = keeper
        try:
            await keeper.start()
            yield
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
            await watcher.stop()  # no poll may write after the leases are handed back
            await keeper.stop()

    return ctx
