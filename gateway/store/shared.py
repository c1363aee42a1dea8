"""What a store shared by several gateway replicas adds to `Store` (PostgreSQL): the replica set, one leased
owner per non-terminal job, and notifications of every transition to every replica.

Leases: each non-terminal job has at most one owner replica at a time, and a fencing token that grows on every
change of owner. Each replica holds a lease with an expiry (database time), renewed by its `heartbeat`; a job is
owned while its owner's lease runs. A replica polls only the jobs it holds; `create_job` gives the new job to the
replica that stored it; `claim_jobs` takes jobs without a live owner (never stored by a live replica, released,
or whose owner stopped renewing: e.g. it was SIGKILLed) in batches, skipping rows another replica is claiming at
that moment; `renew_leases` finds the jobs another replica took over (a cancel through it). The
store remembers the token of each job it holds, and its status writes (`record_status`, `touch`, `mark_stale`)
apply only while that token is still the job's: a replica whose lease was taken over gets `LeaseLost` and never
records a conflicting transition."""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gateway.store.base import Store
from gateway.store.records import JobRecord

#: a transition was stored: (job id, its new version, whether the job has a webhook, i.e. an outbox event)
ChangeCallback = Callable[[str, int, bool], None]


@dataclass(frozen=True)
class ClusterView:
    """What one heartbeat saw: live replicas (this one included), jobs still to be watched, and whether this
    replica's own lease had run out before it (then every job it held may be another's: it lets go of all)."""

    replicas: int
    open_jobs: int
    lapsed: bool = False
    #: jobs the database says this replica owns, and jobs without a live owner (claimable now)
    owned: int = 0
    claimable: int = 0
    #: a webhook event is due that no live replica has leased (e.g. one a dead replica let lapse): the dispatcher
    #: is woken, so that it need not read the outbox every few seconds to find such events
    events_waiting: bool = False


class SharedStore(Store):
    """A store several replicas use at once (see the module docstring)."""

    #: this replica's name in the replica set and as job owner
    replica: str
    #: seconds a lease lasts without renewal (a dead replica's jobs are taken over after at most this)
    lease_s: float

    @property
    @abc.abstractmethod
    def round_trips(self) -> int:
        """Statements sent to the database so far (BEGIN and COMMIT count): what the benchmarks report."""

    @abc.abstractmethod
    def held(self) -> dict[str, int]:
        """The jobs this replica holds, with their fencing tokens (a copy)."""

    @abc.abstractmethod
    def forget_held(self) -> list[str]:
        """Stop considering any job held (the leases may have run out while the database was unreachable); their
        ids. Writes about them are refused until they are claimed again."""

    @abc.abstractmethod
    async def heartbeat(self) -> ClusterView:
        """Renew this replica's lease (forgetting replicas whose lease ran out long ago) and look around."""

    @abc.abstractmethod
    async def claim_jobs(self, limit: int) -> list[JobRecord]:
        """Take up to `limit` non-terminal jobs that have no live owner, oldest lease first; held afterwards."""

    @abc.abstractmethod
    async def renew_leases(self) -> set[str]:
        """The ids of jobs this replica turned out to have lost (taken over by another); jobs whose rows still
        name it but that it no longer holds are freed for claiming."""

    @abc.abstractmethod
    async def release_jobs(self, job_ids: list[str]) -> None:
        """Give these jobs up at once, so another replica may claim them (rebalancing)."""

    @abc.abstractmethod
    async def take_over(self, job_id: str) -> bool:
        """Hold this job now (a cancel through this replica polls it here), taking it from its owner if needed;
        False when it is terminal or unknown."""

    @abc.abstractmethod
    async def retire(self) -> None:
        """A clean shutdown: release every job and leave the replica set."""

    @abc.abstractmethod
    async def listen(self, on_change: ChangeCallback, on_connected: Callable[[bool], Awaitable[None] | None]) -> None:
        """Receive every replica's transitions until cancelled (reconnecting after an outage);
        `on_connected(again)` runs on each (re)connection: after a gap, readers must re-read."""
