"""The embedded store: one SQLite file (WAL) driven from one dedicated worker thread, artifacts beside it.

Durability: WAL with `synchronous=NORMAL` (the default here). A commit is complete once its frames are
written to the WAL file, i.e. handed to the operating system, so a killed process (SIGKILL, OOM kill, crash)
loses no committed transaction. Only a power loss or kernel crash may roll back the last few commits
(never corrupting the file). `?synchronous=full` in the store URL fsyncs the WAL on every commit to cover
that too, at the cost of one fsync per transition.

Concurrency: every database call runs on the store's single worker thread, so the event loop never blocks
on SQLite and calls are serialized in-process. Writes take the write lock up front (`BEGIN IMMEDIATE`),
so several processes may share one file (the demo's replicas): a write waits up to the busy timeout for
another process's write instead of failing half-way.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from gateway.states import CanonicalStatus, StaleReason
from gateway.store.artifacts import ArtifactFiles
from gateway.store.base import Idempotency, JobExists, JobNotFound, LostRace, Store, earlier_job
from gateway.store.codec import dumps, now_us, to_us
from gateway.store.common_sql import SqlCommon
from gateway.store.records import Check, JobRecord, NextAttempt, StatusUpdate, StoredArtifact, to_utc
from gateway.store.rows import (
    INSERT_JOB,
    INSERT_TRANSITION,
    JOB_COLUMNS,
    SAVE_CHECK,
    UPDATE_JOB,
    check_values,
    job_from,
    job_values,
    transition_values,
)
from gateway.store.sqlite_db import SqliteDatabase
from gateway.store.sqlite_idempotency import SqliteIdempotency, store_key
from gateway.store.sqlite_outbox import SqliteOutbox, queue_event
from gateway.store.sqlite_reads import SqliteReads
from gateway.store.sqlite_usage import SqliteUsage, end_attempt
from gateway.store.transition import apply_status, move_to_attempt

log = logging.getLogger("gateway.store")


class SqliteStore(SqliteOutbox, SqliteReads, SqliteIdempotency, SqliteUsage, SqlCommon[SqliteDatabase], Store):
    """The embedded store (see the module docstring for durability and concurrency)."""

    def __init__(
        self, path: str | Path, *, state_dir: Path, synchronous: str = "normal", busy_timeout_s: float = 10.0
    ) -> None:
        self.db = SqliteDatabase(str(path), synchronous=synchronous, busy_timeout_s=busy_timeout_s)
        self.path = str(path)
        self.state_dir = Path(state_dir)
        self.files = ArtifactFiles(self.state_dir / "artifacts")

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r})"

    @property
    def artifacts_dir(self) -> Path:
        return self.files.directory

    # lifecycle

    async def open(self) -> None:
        if not self.db.is_open:
            await asyncio.to_thread(self.files.ensure)
            await self.db.open()

    async def close(self) -> None:
        await self.db.close()

    async def ping(self) -> None:
        await self.db.read(lambda conn: conn.execute("SELECT version FROM schema_version LIMIT 1").fetchall())

    async def schema_version(self) -> int:
        """The schema version of the open database."""
        return await self.db.read(lambda conn: conn.execute("PRAGMA user_version").fetchone()[0])

    # jobs

    @staticmethod
    def _load(conn: sqlite3.Connection, job_id: str) -> JobRecord | None:
        row = conn.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else job_from(row)

    @classmethod
    def _load_or_raise(cls, conn: sqlite3.Connection, job_id: str) -> JobRecord:
        job = cls._load(conn, job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    @staticmethod
    def _add_transition(conn: sqlite3.Connection, job: JobRecord, at: datetime) -> None:
        """Store the job's current version as a transition (with the next sequence number) and queue its webhook
        when it has a URL."""
        at_us = to_us(at)
        conn.execute(INSERT_TRANSITION, (*transition_values(job, at_us), job.tenant, job.provider))
        if job.webhook_url:
            queue_event(conn, job, at_us)

    async def _create_job(
        self, job: JobRecord, idempotency: Idempotency | None, sources: list[str] | None, input: str | None
    ) -> tuple[JobRecord, bool]:
        return await self.db.write(self._create, job, idempotency, sources, input)

    def _create(
        self,
        conn: sqlite3.Connection,
        job: JobRecord,
        idempotency: Idempotency | None,
        sources: list[str] | None,
        input: str | None,
    ) -> tuple[JobRecord, bool]:
        if idempotency is not None:
            other = earlier_job(idempotency, self._idempotent(conn, idempotency[0], idempotency[1]))
            if other is not None:
                return other, False
        try:
            conn.execute(INSERT_JOB, job_values(job))
        except sqlite3.IntegrityError:
            raise JobExists(job.id) from None
        if idempotency is not None and not store_key(conn, idempotency, job.id, to_us(job.created_at)):
            raise LostRace
        if sources is not None:
            conn.execute("INSERT INTO job_sources (job_id, texts) VALUES (?, ?)", (job.id, dumps(sources)))
        if input is not None:
            conn.execute("INSERT INTO job_inputs (job_id, input) VALUES (?, ?)", (job.id, input))
        self._add_transition(conn, job, job.created_at)
        if job.terminal:
            end_attempt(conn, job, job.status, job.created_at, final=True)
        return job, True

    async def _record_status(self, job_id: str, update: StatusUpdate) -> tuple[JobRecord, bool]:
        return await self.db.write(self._write_status, job_id, update)

    def _write_status(self, conn: sqlite3.Connection, job_id: str, update: StatusUpdate) -> tuple[JobRecord, bool]:
        job = self._load_or_raise(conn, job_id)
        transitioned = apply_status(job, update)
        conn.execute(UPDATE_JOB, job_values(job))
        if transitioned:
            self._add_transition(conn, job, update.checked_at)
            if job.terminal:
                end_attempt(conn, job, job.status, update.checked_at, final=True)
        return job, transitioned

    async def _next_attempt(self, job_id: str, ended: CanonicalStatus, move: NextAttempt) -> JobRecord:
        def write(conn: sqlite3.Connection) -> JobRecord:
            job = self._load_or_raise(conn, job_id)
            if job.terminal:
                raise ValueError(f"job {job_id} is already {job.state.value}")
            end_attempt(conn, job, ended, move.at, final=False)
            move_to_attempt(job, move)
            conn.execute(UPDATE_JOB, job_values(job))
            self._add_transition(conn, job, move.at)
            return job

        return await self.db.write(write)

    async def mark_stale(
        self, job_id: str, *, checked_at: datetime | None = None, reason: StaleReason | None = None
    ) -> JobRecord | None:
        return await self.db.write(self._mark_stale, job_id, None if checked_at is None else to_utc(checked_at), reason)

    async def touch(self, job_id: str, *, checked_at: datetime, estimated_finish_at: datetime | None = None) -> None:
        eta_us = None if estimated_finish_at is None else to_us(estimated_finish_at)
        await self.db.write(
            lambda conn: conn.execute(
                "UPDATE jobs SET checked_us = ?, stale = 0, stale_reason = NULL, eta_us = ? WHERE id = ?",
                (to_us(checked_at), eta_us, job_id),
            )
        )

    async def save_checks(self, checks: Sequence[Check]) -> list[str]:
        latest = {c.job_id: c for c in checks}  # a job named twice: its later note wins
        if latest:
            await self.db.write(lambda conn: conn.executemany(SAVE_CHECK, [check_values(c) for c in latest.values()]))
        return []

    def _mark_stale(
        self, conn: sqlite3.Connection, job_id: str, checked_at: datetime | None, reason: StaleReason | None
    ) -> JobRecord | None:
        job = self._load(conn, job_id)
        if job is None:
            return None
        job.stale = True
        job.stale_reason = reason
        if checked_at is not None:
            job.checked_at = checked_at
        conn.execute(UPDATE_JOB, job_values(job))
        return job

    # results and artifacts

    async def save_result(self, job_id: str, result: dict[str, Any]) -> None:
        await self.db.write(self._save_result, job_id, dumps(result))

    def _save_result(self, conn: sqlite3.Connection, job_id: str, result: str) -> None:
        self._load_or_raise(conn, job_id)
        conn.execute(
            "INSERT INTO results (job_id, result, saved_us) VALUES (?, ?, ?) "
            "ON CONFLICT (job_id) DO UPDATE SET result = excluded.result, saved_us = excluded.saved_us",
            (job_id, result, now_us()),
        )
        conn.execute("UPDATE jobs SET result_available = 1 WHERE id = ?", (job_id,))

    async def save_artifact(
        self, job_id: str, *, content_type: str, filename: str | None, chunks: AsyncIterator[bytes]
    ) -> StoredArtifact:
        if await self.get_job(job_id) is None:
            raise JobNotFound(job_id)
        name, size = await self.files.write(job_id, chunks)
        await self.db.write(self._save_artifact_row, job_id, content_type, filename, size, name)
        return StoredArtifact(
            job_id=job_id, content_type=content_type, filename=filename, size=size, path=self.files.directory / name
        )

    @staticmethod
    def _save_artifact_row(
        conn: sqlite3.Connection, job_id: str, content_type: str, filename: str | None, size: int, name: str
    ) -> None:
        conn.execute(
            "INSERT INTO artifacts (job_id, content_type, filename, size, file, saved_us) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (job_id) DO UPDATE SET content_type = excluded.content_type, filename = excluded.filename, "
            "size = excluded.size, file = excluded.file, saved_us = excluded.saved_us",
            (job_id, content_type, filename, size, name, now_us()),
        )

    async def get_artifact(self, job_id: str) -> StoredArtifact | None:
        row = await self.db.read(
            lambda conn: conn.execute(
                "SELECT content_type, filename, size, file FROM artifacts WHERE job_id = ?", (job_id,)
            ).fetchone()
        )
        if row is None:
            return None
        path = await asyncio.to_thread(self.files.existing, job_id, row["file"])
        if path is None:
            return None
        return StoredArtifact(
            job_id=job_id, content_type=row["content_type"], filename=row["filename"], size=row["size"], path=path
        )
