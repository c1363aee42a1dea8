"""The PostgreSQL store: the same behaviour as the embedded SQLite store, for several gateway replicas sharing one
database. Every replica reads and writes the same rows; a job's status is written only by the replica holding its
lease (`gateway.store.shared`), each transition is announced with NOTIFY so every replica's long polls and event
streams hear it, webhook events are leased to one replica at a time, and artifact bytes live in the database
(`pg_artifacts`) so any replica can serve them.

Consistency: a status write reads the job, applies the shared rules (`transition.apply_status`) and writes back
in ONE statement guarded by (owner, fencing token, version): the update, its transition row, its outbox event and
its notification commit together or not at all."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from gateway.states import CanonicalStatus, StaleReason
from gateway.store.artifacts import ArtifactFiles
from gateway.store.base import Idempotency, JobExists, JobNotFound, LeaseLost, LostRace, earlier_job
from gateway.store.codec import dumps, to_us
from gateway.store.common_sql import SqlCommon
from gateway.store.ledger import entry_values, usage_entry
from gateway.store.pg_artifacts import load_artifact, save_artifact
from gateway.store.pg_db import PgDatabase
from gateway.store.pg_idempotency import PgIdempotency
from gateway.store.pg_leases import PgLeases
from gateway.store.pg_outbox import PgOutbox
from gateway.store.pg_reads import PgReads
from gateway.store.pg_rows import (
    ENDING_TRANSITION,
    FIRST_TRANSITION,
    INSERT_JOB,
    INSERT_USAGE,
    LEASED,
    SAVE_CHECKS,
    SELECT_JOB,
    TRANSITION,
    UPDATE_JOB,
    first_transition_args,
    insert_args,
    transition_args,
    update_args,
)
from gateway.store.pg_usage import PgUsage
from gateway.store.records import Check, JobRecord, NextAttempt, StatusUpdate, StoredArtifact
from gateway.store.rows import (
    JOB_COLUMNS,
    check_values,
    job_from,
)
from gateway.store.transition import apply_status, move_to_attempt

#: a status write that lost a race with another write to the same job (not a lease change) is tried again
WRITE_TRIES = 5


def default_replica_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class PostgresStore(PgOutbox, PgReads, PgIdempotency, PgUsage, SqlCommon[PgDatabase], PgLeases):
    """The shared store (see the module docstring)."""

    def __init__(
        self,
        dsn: str,
        *,
        state_dir: Path,
        replica: str | None = None,
        lease_s: float = 15.0,
        pool_min: int = 1,
        pool_max: int = 10,
    ) -> None:
        if lease_s < 1:
            raise ValueError("lease_s must be at least 1 second")
        self.db = PgDatabase(dsn, pool_min=pool_min, pool_max=pool_max)
        self.state_dir = Path(state_dir)
        #: a local cache of artifacts read from the database (any replica can rebuild it)
        self.files = ArtifactFiles(self.state_dir / "artifacts")
        self.replica = replica or default_replica_name()
        self.lease_s = lease_s
        self._held: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"PostgresStore(replica={self.replica!r})"

    # lifecycle

    async def open(self) -> None:
        if not self.db.is_open:
            self.files.ensure()
            await self.db.open()

    async def close(self) -> None:
        await self.db.close()

    async def ping(self) -> None:
        await self.db.fetchval("SELECT max(version) FROM schema_version")

    async def schema_version(self) -> int:
        return int(await self.db.fetchval("SELECT max(version) FROM schema_version"))

    @property
    def round_trips(self) -> int:
        return self.db.round_trips

    # jobs

    async def _create_job(
        self, job: JobRecord, idempotency: Idempotency | None, sources: list[str] | None, input: str | None
    ) -> tuple[JobRecord, bool]:
        async with self.db.tx() as tx:
            if idempotency is not None:
                other = earlier_job(idempotency, await self._idempotent(tx, idempotency[0], idempotency[1]))
                if other is not None:
                    return other, False
            fence = await tx.fetchval(INSERT_JOB, *insert_args(job, self.replica, self._lease_us))
            if fence is None:
                raise JobExists(job.id)
            if idempotency is not None:
                inserted = await tx.fetchval(
                    "INSERT INTO idempotency (tenant, key, body_hash, job_id, created_us) VALUES ($1, $2, $3, $4, $5) "
                    "ON CONFLICT (tenant, key) DO NOTHING RETURNING 1",
                    *idempotency,
                    job.id,
                    to_us(job.created_at),
                )
                if inserted is None:
                    raise LostRace
                await tx.execute(  # the key's job ends any reservation of the key
                    "DELETE FROM idempotency_reservations WHERE tenant = $1 AND key = $2", *idempotency[:2]
                )
            if sources is not None:
                await tx.execute("INSERT INTO job_sources (job_id, texts) VALUES ($1, $2)", job.id, dumps(sources))
            if input is not None:
                await tx.execute("INSERT INTO job_inputs (job_id, input) VALUES ($1, $2)", job.id, input)
            await tx.execute(FIRST_TRANSITION, *first_transition_args(job, to_us(job.created_at)))
            if job.terminal:
                entry = usage_entry(job, job.status, job.created_at, None, final=True)
                await tx.execute(INSERT_USAGE, *entry_values(entry))
        if not job.terminal:
            self._held[job.id] = fence
        return job, True

    # status writes (fenced: only the lease holder's apply)

    async def _owned(self, job_id: str) -> tuple[JobRecord, int]:
        """The stored job and this replica's fencing token for it; LeaseLost when it is not (or no longer) ours."""
        row = await self.db.fetchrow(SELECT_JOB, job_id)
        if row is None:
            raise JobNotFound(job_id)
        job = job_from(row)
        fence = self._held.get(job_id)
        if job.terminal:
            return job, 0  # no lease: its state is frozen
        if fence is None or row["owner"] != self.replica or row["fence"] != fence:
            self._held.pop(job_id, None)
            raise LeaseLost(job_id)
        return job, fence

    async def _record_status(self, job_id: str, update: StatusUpdate) -> tuple[JobRecord, bool]:
        checked_at = update.checked_at
        for _ in range(WRITE_TRIES):
            job, fence = await self._owned(job_id)
            prior = job.version
            transitioned = apply_status(job, update)
            if transitioned and job.terminal:  # the attempt ends: its ledger entry goes with the transition
                entry = usage_entry(job, job.status, checked_at, await self.get_result(job_id), final=True)
                args = transition_args(job, to_us(checked_at), self.replica, fence, prior)
                applied = await self.db.fetch(ENDING_TRANSITION, *args, *entry_values(entry))
            elif transitioned:
                args = transition_args(job, to_us(checked_at), self.replica, fence, prior)
                applied = await self.db.fetch(TRANSITION, *args)
            else:
                applied = await self.db.fetch(UPDATE_JOB, *update_args(job, self.replica, fence, prior))
            if applied:
                if job.terminal:
                    self._held.pop(job_id, None)
                return job, transitioned
        raise LeaseLost(job_id)

    async def _next_attempt(self, job_id: str, ended: CanonicalStatus, move: NextAttempt) -> JobRecord:
        at = move.at
        job, fence = await self._owned(job_id)
        if job.terminal:
            raise ValueError(f"job {job_id} is already {job.state.value}")
        prior = job.version
        entry = usage_entry(job, ended, at, await self.get_result(job_id), final=False)
        move_to_attempt(job, move)
        async with self.db.tx() as tx:
            applied = await tx.fetch(
                ENDING_TRANSITION, *transition_args(job, to_us(at), self.replica, fence, prior), *entry_values(entry)
            )
            if not applied:  # the lease moved on (or another write came first): nothing of this is stored
                raise LeaseLost(job_id)
            await tx.execute("DELETE FROM results WHERE job_id = $1", job_id)
        return job

    async def mark_stale(
        self, job_id: str, *, checked_at: datetime | None = None, reason: StaleReason | None = None
    ) -> JobRecord | None:
        row = await self.db.fetchrow(
            f"UPDATE jobs SET stale = 1, checked_us = coalesce($4, checked_us), stale_reason = $5 "
            f"WHERE {LEASED} RETURNING {JOB_COLUMNS}",
            job_id,
            self.replica,
            self._held.get(job_id),
            None if checked_at is None else to_us(checked_at),
            None if reason is None else reason.model_dump_json(),
        )
        if row is not None:
            return job_from(row)
        if await self.get_job(job_id) is None:
            return None
        self._held.pop(job_id, None)
        raise LeaseLost(job_id)

    async def save_checks(self, checks: Sequence[Check]) -> list[str]:
        latest = {c.job_id: c for c in checks}  # a job named twice: its later note wins
        if not latest:
            return []
        columns: list[list[Any]] = [[], [], [], [], [], []]
        for check in latest.values():
            for column, value in zip(columns, (*check_values(check), self._held.get(check.job_id, 0)), strict=True):
                column.append(value)
        rows = await self.db.fetch(SAVE_CHECKS, *columns, self.replica)
        applied = {row["id"] for row in rows}
        unknown = set(latest) - applied
        if not unknown:
            return []
        existing = await self.db.fetch("SELECT id FROM jobs WHERE id = ANY($1::text[])", list(unknown))
        lost = [row["id"] for row in existing]
        for job_id in lost:
            self._held.pop(job_id, None)
        return lost

    async def touch(self, job_id: str, *, checked_at: datetime, estimated_finish_at: datetime | None = None) -> None:
        done = await self.db.fetchval(
            f"UPDATE jobs SET checked_us = $4, stale = 0, stale_reason = NULL, eta_us = $5 WHERE {LEASED} RETURNING 1",
            job_id,
            self.replica,
            self._held.get(job_id),
            to_us(checked_at),
            None if estimated_finish_at is None else to_us(estimated_finish_at),
        )
        if done is None:
            if await self.get_job(job_id) is None:
                raise JobNotFound(job_id)
            self._held.pop(job_id, None)
            raise LeaseLost(job_id)

    # history

    # results and artifacts

    async def save_result(self, job_id: str, result: dict[str, Any]) -> None:
        async with self.db.tx() as tx:
            found = await tx.fetchval("UPDATE jobs SET result_available = 1 WHERE id = $1 RETURNING 1", job_id)
            if found is None:
                raise JobNotFound(job_id)
            await tx.execute(
                "INSERT INTO results (job_id, result, saved_us) VALUES ($1, $2, gw_now_us()) "
                "ON CONFLICT (job_id) DO UPDATE SET result = excluded.result, saved_us = excluded.saved_us",
                job_id,
                dumps(result),
            )

    async def save_artifact(
        self, job_id: str, *, content_type: str, filename: str | None, chunks: AsyncIterator[bytes]
    ) -> StoredArtifact:
        if await self.get_job(job_id) is None:
            raise JobNotFound(job_id)
        return await save_artifact(self.db, self.files, job_id, content_type, filename, chunks)

    async def get_artifact(self, job_id: str) -> StoredArtifact | None:
        return await load_artifact(self.db, self.files, job_id)
