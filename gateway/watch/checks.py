"""The watcher's freshness notes, written in batches.

Most polls find nothing new: the vendor confirms the snapshot (`checked_at` moves, `stale` clears) or cannot be
asked (`stale` is set). Those notes change no version and tell no reader anything they cannot already read from
the watcher's in-memory snapshot, so they are collected here (the latest per job) and written with one
`Store.save_checks` call every `every_s` seconds, instead of one store round-trip per poll. A transition is never
batched: the watcher writes it at once, and first `forget`s the job's pending note so an older note cannot land
after it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.states import StaleReason
from gateway.store.base import Store
from gateway.store.records import Check

log = logging.getLogger("gateway.watch")

#: seconds between two writes of the pending notes
FLUSH_EVERY_S = 1.0


class CheckBatcher:
    def __init__(
        self,
        store: Store,
        clock: Clock = SYSTEM_CLOCK,
        every_s: float = FLUSH_EVERY_S,
        on_lost: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.every_s = every_s
        #: told of each job whose note a shared store refused (its lease was taken over)
        self.on_lost = on_lost
        self._pending: dict[str, Check] = {}
        self._task: asyncio.Task[None] | None = None

    def confirm(self, job_id: str, checked_at: datetime, estimated_finish_at: datetime | None = None) -> None:
        """The vendor confirmed the job's snapshot at `checked_at` (with its latest estimate of the finish)."""
        self._pending[job_id] = Check(job_id, checked_at, False, None, estimated_finish_at)

    def stale(self, job_id: str, reason: StaleReason | None = None) -> None:
        """The vendor could not be asked about the job (or could not confirm it), for `reason`."""
        self._pending[job_id] = Check(job_id, None, True, reason)

    def forget(self, job_id: str) -> None:
        """Drop the job's pending note (a write that supersedes it is about to be made)."""
        self._pending.pop(job_id, None)

    def take(self, job_ids: list[str]) -> list[Check]:
        """Remove and return the pending notes of `job_ids` (the jobs are handed to another replica, which keeps
        their cadence from the last check written with them)."""
        return [note for job_id in job_ids if (note := self._pending.pop(job_id, None)) is not None]

    @property
    def pending(self) -> int:
        return len(self._pending)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="gateway-watch-checks")

    async def stop(self) -> None:
        """Stop the periodic writes and write what is pending."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.flush()

    async def _run(self) -> None:
        while True:
            await self.clock.sleep(self.every_s)
            await self.flush()

    async def flush(self) -> None:
        """Write every pending note in one store call; on a store failure they are logged and dropped (the next
        poll of each job makes a new one: a freshness note is never worth blocking the watcher for)."""
        if not self._pending:
            return
        batch, self._pending = list(self._pending.values()), {}
        try:
            lost = await self.store.save_checks(batch)
        except Exception as exc:
            log.warning("could not write %d freshness notes (%s); the next polls write new ones", len(batch), exc)
            return
        for job_id in lost:
            log.info("job %s: lease taken over by another replica; no longer polled here", job_id)
            if self.on_lost is not None:
                self.on_lost(job_id)
