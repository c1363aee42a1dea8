"""The lease loop of a replica on a shared store (PostgreSQL): which jobs this replica polls.

Every `lease_s / 3` seconds (and at start) one round:
1. heartbeat: the replica set and the number of jobs still to watch; each lane takes its 1/N share of the vendor's
   configured rate and concurrency (N live replicas), so the totals the vendor sees stay as configured;
   the heartbeat renews this replica's lease, which covers every job it holds (one row, however many jobs);
2. when the jobs the database says it owns are not those it holds: find those taken over by another replica (a
   cancel through it), dropped from the watcher; the cluster's freshness notes are written about once a second
   in total (each replica batches them for `N` seconds);
3. balance: the fair share is ceil(open jobs / replicas); a replica holding well over it releases the excess
   (jobs not being polled at that moment, with their last checks, so their next owner keeps their cadence), one
   under it claims unowned jobs in batches (`SKIP LOCKED`), e.g. the jobs of a replica that died once its leases
   ran out, or those another one just released.

A replica that has not managed to renew for a whole lease time (the database is unreachable) stops polling: its
leases may have run out and another replica may own the jobs now; it claims again once the database answers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from collections.abc import Callable
from typing import Any

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.store.records import JobRecord
from gateway.store.shared import SharedStore
from gateway.watch.checks import FLUSH_EVERY_S
from gateway.watch.engine import Watcher
from gateway.watch.lanes import Lane

log = logging.getLogger("gateway.watch")

#: the most jobs one claim statement takes
CLAIM_BATCH = 1000
#: a replica releases jobs only when it holds more than its share by this fraction (and CLAIM_SLACK jobs)
RELEASE_MARGIN = 0.1
RELEASE_SLACK = 8
#: a claimed job that is overdue is polled within this many seconds (spread, so a takeover is no burst)
OVERDUE_SPREAD_S = 1.0


class LeaseKeeper:
    """Keeps this replica's share of the jobs (see the module docstring)."""

    def __init__(
        self,
        store: SharedStore,
        watcher: Watcher,
        lanes: dict[str, Lane],
        clock: Clock = SYSTEM_CLOCK,
        on_events_waiting: Callable[[], None] | None = None,
    ):
        self.store = store
        #: called when a heartbeat sees a due webhook event no replica holds (the webhook dispatcher's wake)
        self.on_events_waiting = on_events_waiting
        self.watcher = watcher
        self.lanes = lanes
        self.clock = clock
        self.period_s = store.lease_s / 3
        self.replicas = 1
        self.open_jobs = 0
        self.rounds = 0
        #: clock time of the last round that reached the database (None before the first)
        self.renewed_at: float | None = None
        self.last_error: str | None = None
        self._task: asyncio.Task[None] | None = None

    # lifecycle

    async def start(self) -> None:
        """The first round (claiming this replica's share), then the loop."""
        await self._round_safely()
        self._task = asyncio.create_task(self._run(), name="gateway-leases")

    async def stop(self) -> None:
        """Stop, and hand every held job back at once so the other replicas need not wait for the leases."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.store.retire(), 5.0)

    async def _run(self) -> None:
        while True:
            await self.clock.sleep(self.period_s)
            await self._round_safely()

    # readiness

    def healthy(self) -> bool:
        """The last renewal reached the database less than a lease time ago."""
        return self.renewed_at is not None and self.clock() - self.renewed_at < self.store.lease_s

    def status(self) -> dict[str, Any]:
        ago = None if self.renewed_at is None else round(self.clock() - self.renewed_at, 3)
        return {
            "replica": self.store.replica,
            "ok": self.healthy(),
            "replicas": self.replicas,
            "held": len(self.store.held()),
            "open_jobs": self.open_jobs,
            "lease_s": self.store.lease_s,
            "renewed_s_ago": ago,
            "error": self.last_error,
            "round_trips": self.store.round_trips,
        }

    # one round

    async def _round_safely(self) -> None:
        try:
            await self.round()
            self.last_error = None
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.last_error = type(exc).__name__
            log.warning("lease round failed (%s); retrying in %.1f s", exc, self.period_s)
            if self.renewed_at is not None and self.clock() - self.renewed_at >= self.store.lease_s:
                self._let_go()

    def _let_go(self) -> None:
        """The leases may have run out: stop polling every job (another replica may own them now)."""
        dropped = self.store.forget_held()
        for job_id in dropped:
            self.watcher.forget(job_id)
        if dropped:
            log.warning("no lease renewal for %.0f s: stopped polling %d jobs", self.store.lease_s, len(dropped))

    async def round(self) -> None:
        """Heartbeat, renew, balance (one round; the loop calls it every `period_s`)."""
        view = await self.store.heartbeat()
        if view.events_waiting and self.on_events_waiting is not None:
            self.on_events_waiting()
        if view.lapsed:
            self._let_go()
        self.replicas, self.open_jobs = view.replicas, view.open_jobs
        for lane in self.lanes.values():
            lane.share(view.replicas)
        # the cluster writes its freshness notes about once a second in total, however many replicas share them
        self.watcher.checks.every_s = FLUSH_EVERY_S * view.replicas
        if view.owned != len(self.store.held()):  # a job was taken over (or is owned but not held): look closer
            for job_id in await self.store.renew_leases():
                self.watcher.forget(job_id)
        self.renewed_at = self.clock()
        self.rounds += 1
        share = math.ceil(view.open_jobs / view.replicas)
        held = self.store.held()
        if len(held) > share * (1 + RELEASE_MARGIN) + RELEASE_SLACK:
            await self._release(list(held), len(held) - share)
            return
        need = share - len(held)
        if view.claimable == 0:
            return
        while need > 0:
            jobs = await self.store.claim_jobs(min(need, CLAIM_BATCH))
            for job in jobs:
                self._watch(job)
            need -= len(jobs)
            if len(jobs) < CLAIM_BATCH:
                break

    async def _release(self, held: list[str], count: int) -> None:
        idle = [job_id for job_id in held if not self.watcher.polling(job_id)]
        chosen = random.sample(idle, min(count, len(idle)))
        notes = self.watcher.checks.take(chosen)  # their last checks go with them: the next owner keeps the cadence
        for job_id in chosen:
            self.watcher.forget(job_id)
        if notes:
            await self.store.save_checks(notes)
        await self.store.release_jobs(chosen)
        log.info("released %d jobs to the other replicas", len(chosen))

    def _watch(self, job: JobRecord) -> None:
        """Watch a claimed job, keeping its cadence: first poll one interval after its last check."""
        lane = self.lanes.get(job.provider)
        if lane is None:
            return
        delay = random.uniform(0, OVERDUE_SPREAD_S)
        if job.checked_at is not None:
            since = (self.clock.now() - job.checked_at).total_seconds()
            delay = max(delay, lane.first_interval() - since)
        self.watcher.watch(job, delay=delay)
