"""The store interface every backend implements, and its errors (`gateway.store.open_store` picks a backend)."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from gateway.states import CanonicalStatus, StaleReason, State
from gateway.store.outbox_base import WebhookOutbox
from gateway.store.records import (
    Check,
    Idempotency,
    JobRecord,
    NextAttempt,
    StatusUpdate,
    StoredArtifact,
    TransitionRecord,
    UsageEntry,
    to_utc,
)
from gateway.store.transition import new_job

__all__ = ["Idempotency"]  # re-exported: callers name it with the store interface


class StoreError(Exception):
    """Base class of the store's own errors."""


class IdempotencyMismatch(StoreError):
    """The tenant's idempotency key was used before with another request body (`job_id` is None while that
    request is still in flight)."""

    def __init__(self, tenant: str, key: str, job_id: str | None) -> None:
        super().__init__(f"idempotency key {key!r} was used with another request body (job {job_id})")
        self.tenant = tenant
        self.key = key
        self.job_id = job_id


def earlier_job(idempotency: Idempotency, found: tuple[str, JobRecord] | None) -> JobRecord | None:
    """The job an earlier request with the same key and body created (`found`: the key's (body hash, job)), to be
    answered again; None when the key has no job yet; IdempotencyMismatch when that request had another body."""
    if found is None:
        return None
    body_hash, job = found
    if body_hash != idempotency[2]:
        raise IdempotencyMismatch(idempotency[0], idempotency[1], job.id)
    return job


@dataclass(frozen=True)
class IdempotencyClaim:
    """What `Store.reserve_idempotency` found: exactly one of the three is set."""

    #: the job an earlier request with this key and body created: answer it again, call no vendor
    job: JobRecord | None = None
    #: the caller now holds the key's reservation: it may call the vendor
    reserved: bool = False
    #: another request holds a live reservation until then (unless it renews it): wait for it
    held_until: datetime | None = None


class JobNotFound(StoreError, LookupError):
    """A write named a job the store does not have."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job {job_id!r}")
        self.job_id = job_id


class JobExists(StoreError):
    """`create_job` was given an id that is already stored (without a matching idempotency key)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id!r} already exists")
        self.job_id = job_id


class StoreUnavailable(StoreError):
    """The database cannot be reached right now (the API answers 503 `unavailable`); nothing was changed, and the
    same call may succeed later: the store reconnects by itself."""


class LostRace(StoreError):
    """Another writer stored the same idempotency key between a backend's check and its insert: `create_job` tries
    once more, and finds that writer's job."""


class LeaseLost(StoreError):
    """A write about a job that this replica no longer owns: another replica took its lease over (the fencing
    token moved on), so the write is refused and the job is that replica's to watch (shared stores only)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id!r} is leased to another replica")
        self.job_id = job_id


class Store(WebhookOutbox, abc.ABC):
    """The gateway's durable state: jobs, transitions, idempotency keys, results, artifacts, webhook outbox."""

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # lifecycle

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and bring the schema up to date."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Finish pending work and release the database."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Return when the store answers; raise when it does not (readiness)."""

    # jobs

    async def create_job(
        self,
        record: JobRecord,
        *,
        idempotency: Idempotency | None = None,
        sources: list[str] | None = None,
        input: str | None = None,
    ) -> tuple[JobRecord, bool]:
        """Store a new job at version 1 with its first transition; with `idempotency`, at most one job per key.
        `sources` (the texts of a text job, in input order) and `input` (its canonical input, sealed: what a
        fail-over submits again) are kept with it, in the same transaction. A job created terminal gets its usage
        ledger entry in that transaction too (see `record_status`).

        Returns (job, created). An existing key with the same body hash gives (that job, False); with another
        hash, `IdempotencyMismatch`; an id already stored, `JobExists`. A job with a `webhook_url` also gets
        version 1 queued in the outbox, in the same transaction. Storing the key's job ends any reservation of
        the key (`reserve_idempotency`), in the same transaction.
        """
        job = new_job(record, idempotency)
        try:
            return await self._create_job(job, idempotency, sources, input)
        except LostRace:
            # another writer stored the key between the check and the insert: its job is the answer
            return await self._create_job(job, idempotency, sources, input)

    @abc.abstractmethod
    async def _create_job(
        self, job: JobRecord, idempotency: Idempotency | None, sources: list[str] | None, input: str | None
    ) -> tuple[JobRecord, bool]:
        """`create_job` of the record `new_job` made, in one transaction; LostRace to be tried again."""

    @abc.abstractmethod
    async def get_job(self, job_id: str, *, tenant: str | None = None) -> JobRecord | None:
        """The job, or None (also when `tenant` is given and the job is another tenant's)."""

    @abc.abstractmethod
    async def find_idempotent(self, tenant: str, key: str) -> tuple[str, JobRecord] | None:
        """(body hash, job) stored for the tenant's idempotency key, or None."""

    @abc.abstractmethod
    async def reserve_idempotency(
        self, idempotency: Idempotency, *, owner: str, now: datetime, lease_s: float
    ) -> IdempotencyClaim:
        """Reserve the tenant's idempotency key for the request `owner` BEFORE the vendor is called, atomically
        for every process sharing the store, so that concurrent duplicates never reach the vendor.

        - The key already has a job: the same body hash gives `IdempotencyClaim(job=...)`; another hash raises
          `IdempotencyMismatch`.
        - Another owner holds a reservation that has not expired at `now`: the same body hash gives
          `IdempotencyClaim(held_until=<its expiry>)` (the caller waits and asks again); another hash raises
          `IdempotencyMismatch` (job_id None).
        - Otherwise (no reservation, one that expired because its holder died, or the caller's own) the caller
          holds the reservation until `now + lease_s`: `IdempotencyClaim(reserved=True)`.

        The holder renews it (`renew_idempotency`) while the vendor works, and ends it either by storing the
        job (`create_job` with the same idempotency) or by giving it up (`release_idempotency`).
        """

    @abc.abstractmethod
    async def renew_idempotency(self, tenant: str, key: str, *, owner: str, now: datetime, lease_s: float) -> bool:
        """Extend `owner`'s reservation of the key to `now + lease_s`; False when it is not (or no longer)
        `owner`'s: it ended, or it expired and another request took it over."""

    @abc.abstractmethod
    async def release_idempotency(self, tenant: str, key: str, *, owner: str) -> None:
        """End `owner`'s reservation of the key without a job (the vendor call failed): the next request with
        the key may try again. Another owner's reservation is left alone."""

    @abc.abstractmethod
    async def jobs_with_vendor_ref(self, provider: str, vendor_ref: dict[str, Any]) -> list[JobRecord]:
        """The jobs of every tenant that are this vendor job: `provider` is the job's, and its vendor_ref agrees
        with `vendor_ref` on every top-level key both have, sharing at least one. Oldest first."""

    async def list_jobs(
        self,
        tenant: str,
        *,
        state: State | str | None = None,
        provider: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[list[JobRecord], str | None]:
        """The tenant's jobs, newest first, and the cursor of the next page (None on the last page).

        Raises ValueError for a malformed cursor or a limit below 1.
        """
        return await self._jobs_page(tenant, state, provider, limit, cursor)

    async def operator_jobs(
        self,
        *,
        tenant: str | None = None,
        state: State | str | None = None,
        provider: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[list[JobRecord], str | None]:
        """Every tenant's jobs (or one tenant's), newest first, paged as `list_jobs`: the operator's view."""
        return await self._jobs_page(tenant, state, provider, limit, cursor)

    @abc.abstractmethod
    async def _jobs_page(
        self, tenant: str | None, state: State | str | None, provider: str | None, limit: int, cursor: str | None
    ) -> tuple[list[JobRecord], str | None]:
        """`operator_jobs` (and `list_jobs`, with a tenant)."""

    @abc.abstractmethod
    async def get_sources(self, job_id: str) -> list[str] | None:
        """The source texts stored with the job at `create_job`, or None."""

    async def record_status(
        self,
        job_id: str,
        status: CanonicalStatus,
        *,
        checked_at: datetime,
        vendor_ref: dict[str, Any] | None = None,
        private_ref: str | None = None,
        estimated_finish_at: datetime | None = None,
        attempts: list[dict[str, Any]] | None = None,
    ) -> tuple[JobRecord, bool]:
        """Apply a freshly observed status in one transaction; returns (job, transitioned).

        A transition bumps the version, stores a TransitionRecord and, for a job with a `webhook_url`,
        an OutboxEvent for that version (its body is rendered when it is sent). A change of `status.eta_s`
        alone is no transition. A terminal state is sticky: a later different state is not applied and counts
        as an anomaly. Always sets `checked_at` and `estimated_finish_at` (None: no estimate), clears `stale`
        and `stale_reason`, and replaces `vendor_ref`, the sealed `private_ref` and `attempts` when given (attempts only
        while the job is not terminal yet). Raises JobNotFound.

        The transition that makes a job terminal also writes the usage ledger entry of its current attempt
        (`gateway.store.ledger.usage_entry`, with the usage of the result kept before), in the same transaction and
        at most once per (job, attempt).
        """
        eta = None if estimated_finish_at is None else to_utc(estimated_finish_at)
        update = StatusUpdate(status, to_utc(checked_at), vendor_ref, private_ref, eta, attempts)
        return await self._record_status(job_id, update)

    @abc.abstractmethod
    async def _record_status(self, job_id: str, update: StatusUpdate) -> tuple[JobRecord, bool]:
        """`record_status` (`transition.apply_status` says how the job changes)."""

    async def next_attempt(
        self,
        job_id: str,
        *,
        ended: CanonicalStatus,
        provider: str,
        vendor_ref: dict[str, Any],
        private_ref: str | None,
        attempts: list[dict[str, Any]],
        at: datetime,
    ) -> JobRecord:
        """Fail-over: the job's current attempt ended in `ended` (never recorded as the job's state) and the job
        goes on at `provider` under the same id, in one transaction: the usage ledger entry of the ended attempt,
        then the job `queued` at the new provider with its new vendor_ref, sealed private fields and `attempts`
        (the new attempt last), as a transition (version + 1, outbox event, notification) at `at`; `result_available`
        and `stale` cleared. Raises JobNotFound; ValueError when the job is already terminal; LeaseLost (shared
        stores) when this replica no longer holds the job."""
        move = NextAttempt(provider, vendor_ref, private_ref, attempts, to_utc(at))
        return await self._next_attempt(job_id, ended, move)

    @abc.abstractmethod
    async def _next_attempt(self, job_id: str, ended: CanonicalStatus, move: NextAttempt) -> JobRecord:
        """`next_attempt` (`transition.move_to_attempt` says how the job changes)."""

    @abc.abstractmethod
    async def get_input(self, job_id: str) -> str | None:
        """The sealed canonical input kept with the job at `create_job`, or None."""

    @abc.abstractmethod
    async def mark_stale(
        self, job_id: str, *, checked_at: datetime | None = None, reason: StaleReason | None = None
    ) -> JobRecord | None:
        """Mark the snapshot as not confirmed lately, and why (no transition); None when there is no such job."""

    @abc.abstractmethod
    async def touch(self, job_id: str, *, checked_at: datetime, estimated_finish_at: datetime | None = None) -> None:
        """The vendor confirmed the stored snapshot unchanged: set checked_at and the vendor's latest estimate
        of the finish (None: none), clear stale and its reason (no transition). The watcher's cheap path for
        the common poll that finds nothing new."""

    @abc.abstractmethod
    async def save_checks(self, checks: Sequence[Check]) -> list[str]:
        """Apply many freshness notes at once, in ONE round-trip and transaction (never a transition, never a
        version bump): a confirmation (`stale` False) is `touch` (checked_at, the estimate, stale and its reason
        cleared); a stale note is `mark_stale` with its `reason` (checked_at kept unless the note has one).
        A job named twice: its later note wins. Notes naming jobs the store does not have are skipped.

        The watcher batches the notes of the polls that found nothing new (and of vendor failures) and sends
        them here about once a second; it never sends a note older than a `record_status` it made for the same
        job since. Returns the ids of jobs whose notes were refused because this replica no longer holds their
        lease (a shared store; the watcher stops polling them); a single-process store returns []."""

    @abc.abstractmethod
    async def transitions(self, job_id: str, *, after_version: int = 0) -> list[TransitionRecord]:
        """The job's transitions with a version above `after_version`, oldest first."""

    @abc.abstractmethod
    async def get_transition(self, job_id: str, version: int) -> TransitionRecord | None:
        """The job's transition at `version`, or None."""

    @abc.abstractmethod
    async def non_terminal_jobs(self) -> list[JobRecord]:
        """Every job still to be watched (oldest first), e.g. to resume watching after a restart."""

    @abc.abstractmethod
    async def count_by_state(self) -> dict[str, int]:
        """Number of jobs per state, every state present (zero included)."""

    @abc.abstractmethod
    async def count_by_provider_state(self) -> dict[str, dict[str, int]]:
        """Number of jobs per provider and state (every state present for each provider that has jobs)."""

    # usage ledger and budgets

    @abc.abstractmethod
    async def usage(self, tenant: str, *, since: datetime, until: datetime) -> list[UsageEntry]:
        """The tenant's ledger entries of attempts that ended in [since, until), oldest first."""

    @abc.abstractmethod
    async def job_usage(self, job_id: str) -> list[UsageEntry]:
        """The ledger entries of one job, by attempt."""

    @abc.abstractmethod
    async def spend(self, tenant: str, *, since: datetime) -> dict[str, int]:
        """The tenant's recorded cost per currency (millionths of its unit) of attempts that ended since `since`."""

    @abc.abstractmethod
    async def reserve_budget_job(self, tenant: str, day: str, limit: int) -> int | None:
        """Count one more job for the tenant on `day` (a budget's jobs per day), atomically across every writer:
        the new count, or None (and nothing counted) when `limit` jobs are counted already."""

    @abc.abstractmethod
    async def release_budget_job(self, tenant: str, day: str) -> None:
        """Give back one job counted by `reserve_budget_job` (its submit failed before a job was made)."""

    @abc.abstractmethod
    async def budget_jobs(self, tenant: str, day: str) -> int:
        """The jobs counted for the tenant on `day`."""

    # results and artifacts

    @abc.abstractmethod
    async def save_result(self, job_id: str, result: dict[str, Any]) -> None:
        """Keep the job's result forever (replacing an earlier one) and set `result_available`."""

    @abc.abstractmethod
    async def get_result(self, job_id: str) -> dict[str, Any] | None:
        """The stored result, or None."""

    @abc.abstractmethod
    async def save_artifact(
        self, job_id: str, *, content_type: str, filename: str | None, chunks: AsyncIterator[bytes]
    ) -> StoredArtifact:
        """Stream the job's output file to disk (never whole in memory) and keep it forever."""

    @abc.abstractmethod
    async def get_artifact(self, job_id: str) -> StoredArtifact | None:
        """The stored artifact (with its path on disk), or None."""
