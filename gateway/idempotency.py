"""Idempotency-Key reservations: a key is reserved in the store before the vendor is called, so concurrent
duplicates wait for the first request and never reach the vendor.

    async with reservations.reserve((tenant, key, body_hash)) as earlier:
        if earlier is not None:
            return earlier, False          # the key's job: answered again, no vendor call
        ...                                # call the vendor, then store the job with the same idempotency

While the vendor works the holder renews its lease; a holder that fails gives the key up, so the next request
may try again; a holder that dies (crash, kill) leaves a reservation that expires after the lease and is then
taken over. A duplicate waits (woken at once in this process, re-reading the store across processes) up to
`wait_s`, then answers `IdempotencyInProgress` with how long the reservation still runs.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field

from gateway.clock import Clock
from gateway.store.base import Idempotency, Store
from gateway.store.records import JobRecord

log = logging.getLogger("gateway.idempotency")

#: a waiting duplicate re-reads the store at least this often (the holder may be another process)
RECHECK_S = 0.5


class IdempotencyInProgress(Exception):
    """Another request with this Idempotency-Key and body is still in flight; try again after `retry_after`."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("a request with this Idempotency-Key is still in progress")
        self.retry_after = retry_after


@dataclass
class KeyReservations:
    store: Store
    clock: Clock
    #: how long a duplicate waits for the request holding the key
    wait_s: float = 60.0
    #: how long a reservation lives unless renewed (renewed every third of it while the vendor works)
    lease_s: float = 30.0
    _wakers: dict[tuple[str, str], asyncio.Event] = field(default_factory=dict, init=False, repr=False)

    @asynccontextmanager
    async def reserve(self, idempotency: Idempotency) -> AsyncIterator[JobRecord | None]:
        """The key's earlier job, or None once the caller holds the key (see the module docstring)."""
        tenant, key, _ = idempotency
        owner = secrets.token_hex(12)
        earlier = await self._claim(idempotency, owner)
        if earlier is not None:
            yield earlier
            return
        renewing = asyncio.create_task(self._renew(tenant, key, owner))
        try:
            yield None
        except BaseException:
            await asyncio.shield(self.store.release_idempotency(tenant, key, owner=owner))
            raise
        finally:
            renewing.cancel()
            with suppress(asyncio.CancelledError):
                await renewing
            waker = self._wakers.pop((tenant, key), None)
            if waker is not None:
                waker.set()

    async def _claim(self, idempotency: Idempotency, owner: str) -> JobRecord | None:
        deadline = self.clock() + self.wait_s
        slot = idempotency[:2]
        while True:
            waker = self._wakers.setdefault(slot, asyncio.Event())  # before reading: no wake-up is missed
            claim = await self.store.reserve_idempotency(
                idempotency, owner=owner, now=self.clock.now(), lease_s=self.lease_s
            )
            if claim.job is not None or claim.reserved:
                self._forget(slot, waker)
                return claim.job
            left = deadline - self.clock()
            if left <= 0 or claim.held_until is None:
                self._forget(slot, waker)
                until = claim.held_until or self.clock.now()
                raise IdempotencyInProgress(max(1.0, math.ceil((until - self.clock.now()).total_seconds())))
            await self.clock.wait(waker, min(left, RECHECK_S))

    def _forget(self, slot: tuple[str, str], waker: asyncio.Event) -> None:
        """Drop a waker nobody waits on any more."""
        if self._wakers.get(slot) is waker and not getattr(waker, "_waiters", None):
            del self._wakers[slot]

    async def _renew(self, tenant: str, key: str, owner: str) -> None:
        while True:
            await self.clock.sleep(self.lease_s / 3)
            try:
                kept = await self.store.renew_idempotency(
                    tenant, key, owner=owner, now=self.clock.now(), lease_s=self.lease_s
                )
            except Exception:  # the store is briefly unavailable: the lease still runs, try again
                log.warning("could not renew the reservation of an Idempotency-Key", exc_info=True)
                continue
            if not kept:
                log.warning("an Idempotency-Key reservation expired while its request was still working")
                return
