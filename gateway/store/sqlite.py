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
import base64
import binascii
import contextlib
import hashlib
import json
import logging
import os
import sqlite3
import tempfile
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from gateway.states import CanonicalStatus, State, is_regression, is_transition
from gateway.store.base import (
    Idempotency,
    IdempotencyMismatch,
    JobExists,
    JobNotFound,
    Store,
    StoreError,
    WebhookPayloadFactory,
)
from gateway.store.records import JobRecord, OutboxEvent, StoredArtifact, TransitionRecord, to_utc

log = logging.getLogger("gateway.store")

T = TypeVar("T")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_SYNCHRONOUS = ("normal", "full", "extra")
_MAX_CURSOR_LEN = 512
#: artifact bytes gathered before one write to disk (bounds memory, saves thread hops for tiny chunks)
_WRITE_BUFFER = 256 * 1024

#: The schema, as an ordered list of migrations: entry N-1 brings a database from version N-1 to N.
#: Append only; never edit a released entry. The applied version is PRAGMA user_version, and every
#: applied migration is also logged in `schema_version`.
MIGRATIONS: list[tuple[str, ...]] = [
    (  # 1: initial schema
        """CREATE TABLE schema_version (
            version INTEGER PRIMARY KEY,
            applied_at INTEGER NOT NULL
        )""",
        """CREATE TABLE jobs (
            id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            provider TEXT NOT NULL,
            state TEXT NOT NULL,
            terminal INTEGER NOT NULL,
            version INTEGER NOT NULL,
            created_us INTEGER NOT NULL,
            updated_us INTEGER NOT NULL,
            finished_us INTEGER,
            checked_us INTEGER,
            stale INTEGER NOT NULL DEFAULT 0,
            webhook_url TEXT,
            route TEXT,
            result_available INTEGER NOT NULL DEFAULT 0,
            anomalies INTEGER NOT NULL DEFAULT 0,
            vendor_ref TEXT NOT NULL,
            status TEXT NOT NULL,
            metadata TEXT NOT NULL,
            attempts TEXT NOT NULL
        )""",
        "CREATE INDEX jobs_by_tenant ON jobs (tenant, created_us, id)",
        "CREATE INDEX jobs_by_tenant_state ON jobs (tenant, state, created_us, id)",
        "CREATE INDEX jobs_by_tenant_provider ON jobs (tenant, provider, created_us, id)",
        "CREATE INDEX jobs_open ON jobs (created_us, id) WHERE terminal = 0",
        """CREATE TABLE idempotency (
            tenant TEXT NOT NULL,
            key TEXT NOT NULL,
            body_hash TEXT NOT NULL,
            job_id TEXT NOT NULL REFERENCES jobs (id),
            created_us INTEGER NOT NULL,
            PRIMARY KEY (tenant, key)
        ) WITHOUT ROWID""",
        """CREATE TABLE transitions (
            job_id TEXT NOT NULL REFERENCES jobs (id),
            version INTEGER NOT NULL,
            at_us INTEGER NOT NULL,
            state TEXT NOT NULL,
            vendor_status TEXT,
            stage TEXT,
            progress INTEGER,
            status TEXT NOT NULL,
            PRIMARY KEY (job_id, version)
        ) WITHOUT ROWID""",
        """CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            job_id TEXT NOT NULL REFERENCES jobs (id),
            tenant TEXT NOT NULL,
            url TEXT NOT NULL,
            payload TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_us INTEGER NOT NULL,
            delivered_us INTEGER,
            last_error TEXT,
            created_us INTEGER NOT NULL
        )""",
        "CREATE INDEX outbox_due ON outbox (next_attempt_us, seq) WHERE delivered_us IS NULL",
        """CREATE TABLE results (
            job_id TEXT PRIMARY KEY REFERENCES jobs (id),
            result TEXT NOT NULL,
            saved_us INTEGER NOT NULL
        )""",
        """CREATE TABLE artifacts (
            job_id TEXT PRIMARY KEY REFERENCES jobs (id),
            content_type TEXT NOT NULL,
            filename TEXT,
            size INTEGER NOT NULL,
            file TEXT NOT NULL,
            saved_us INTEGER NOT NULL
        )""",
    ),
    (  # 2: webhook events are delivered in order per job: find a job's earliest pending event quickly
        "CREATE INDEX outbox_job_pending ON outbox (job_id, seq) WHERE delivered_us IS NULL",
    ),
]

SCHEMA_VERSION = len(MIGRATIONS)


def _us(value: datetime) -> int:
    """Microseconds since the epoch (UTC) of an aware datetime."""
    return (to_utc(value) - _EPOCH) // _US


def _dt(value: int | None) -> datetime | None:
    return None if value is None else _EPOCH + value * _US


def _now_us() -> int:
    return _us(datetime.now(UTC))


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def encode_cursor(created_us: int, job_id: str) -> str:
    """The opaque cursor of a page that ends at (created_us, job_id)."""
    return base64.urlsafe_b64encode(_json([created_us, job_id]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    """(created_us, job_id) of a cursor made by `encode_cursor`; ValueError for anything else."""
    try:
        if not cursor or len(cursor) > _MAX_CURSOR_LEN:
            raise ValueError
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        created_us, job_id = json.loads(raw.decode())
        if type(created_us) is not int or not isinstance(job_id, str):
            raise ValueError
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ValueError("malformed cursor") from None
    return created_us, job_id


def _artifact_file_name(job_id: str) -> str:
    """A file name for a job's artifact that no job id can turn into a path outside the artifacts dir."""
    return hashlib.sha256(job_id.encode()).hexdigest() + ".bin"


_JOB_FIELDS = (
    "id", "tenant", "provider", "state", "terminal", "version", "created_us", "updated_us", "finished_us",
    "checked_us", "stale", "webhook_url", "route", "result_available", "anomalies", "vendor_ref", "status",
    "metadata", "attempts",
)  # fmt: skip
_JOB_COLUMNS = ", ".join(_JOB_FIELDS)
#: columns a job never changes after it is created
_JOB_FIXED = ("id", "tenant", "created_us")
_INSERT_JOB = f"INSERT INTO jobs ({_JOB_COLUMNS}) VALUES ({', '.join(':' + f for f in _JOB_FIELDS)})"
_UPDATE_JOB = f"UPDATE jobs SET {', '.join(f'{f} = :{f}' for f in _JOB_FIELDS if f not in _JOB_FIXED)} WHERE id = :id"
_TRANSITION_COLUMNS = "job_id, version, at_us, state, vendor_status, stage, progress, status"
_OUTBOX_COLUMNS = "id, job_id, tenant, url, payload, attempts, next_attempt_us, delivered_us, last_error, created_us"


def _job_values(job: JobRecord) -> dict[str, Any]:
    """The column values of a job."""
    return {
        "id": job.id,
        "tenant": job.tenant,
        "provider": job.provider,
        "state": job.status.state.value,
        "terminal": int(job.status.terminal),
        "version": job.version,
        "created_us": _us(job.created_at),
        "updated_us": _us(job.updated_at),
        "finished_us": None if job.finished_at is None else _us(job.finished_at),
        "checked_us": None if job.checked_at is None else _us(job.checked_at),
        "stale": int(job.stale),
        "webhook_url": job.webhook_url,
        "route": job.route,
        "result_available": int(job.result_available),
        "anomalies": job.anomalies,
        "vendor_ref": _json(job.vendor_ref),
        "status": job.status.model_dump_json(),
        "metadata": _json(job.metadata),
        "attempts": _json(job.attempts),
    }


def _job_from(row: sqlite3.Row) -> JobRecord:
    return JobRecord(
        id=row["id"],
        tenant=row["tenant"],
        provider=row["provider"],
        vendor_ref=json.loads(row["vendor_ref"]),
        status=CanonicalStatus.model_validate_json(row["status"]),
        version=row["version"],
        created_at=_dt(row["created_us"]),
        updated_at=_dt(row["updated_us"]),
        finished_at=_dt(row["finished_us"]),
        checked_at=_dt(row["checked_us"]),
        stale=bool(row["stale"]),
        metadata=json.loads(row["metadata"]),
        webhook_url=row["webhook_url"],
        route=row["route"],
        attempts=json.loads(row["attempts"]),
        result_available=bool(row["result_available"]),
        anomalies=row["anomalies"],
    )


def _transition_from(row: sqlite3.Row) -> TransitionRecord:
    return TransitionRecord(
        job_id=row["job_id"],
        version=row["version"],
        at=_dt(row["at_us"]),
        state=row["state"],
        vendor_status=row["vendor_status"],
        stage=row["stage"],
        progress=row["progress"],
        status=CanonicalStatus.model_validate_json(row["status"]),
    )


def _event_from(row: sqlite3.Row) -> OutboxEvent:
    return OutboxEvent(
        id=row["id"],
        job_id=row["job_id"],
        tenant=row["tenant"],
        url=row["url"],
        payload=json.loads(row["payload"]),
        attempts=row["attempts"],
        next_attempt_at=_dt(row["next_attempt_us"]),
        delivered_at=_dt(row["delivered_us"]),
        last_error=row["last_error"],
        created_at=_dt(row["created_us"]),
    )


class _LostRace(Exception):
    """Another writer stored the same idempotency key first; the transaction is retried."""


class SqliteStore(Store):
    """The embedded store (see the module docstring for durability and concurrency)."""

    def __init__(
        self,
        path: str | Path,
        *,
        state_dir: Path,
        synchronous: str = "normal",
        busy_timeout_s: float = 10.0,
        webhook_payload_factory: WebhookPayloadFactory | None = None,
    ) -> None:
        sync = synchronous.lower()
        if sync not in _SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {', '.join(_SYNCHRONOUS)}, not {synchronous!r}")
        self.path = str(path)
        self.state_dir = Path(state_dir)
        self.artifacts_dir = self.state_dir / "artifacts"
        self.synchronous = sync
        self.busy_timeout_s = busy_timeout_s
        self.webhook_payload_factory = webhook_payload_factory
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        #: reads run on their own thread and connection (WAL readers never wait for the writer), so API
        #: reads do not queue behind the watcher's writes; an in-memory database has only the one connection
        self._reader: ThreadPoolExecutor | None = None
        self._rconn: sqlite3.Connection | None = None

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r})"

    # plumbing: everything below `_call` runs on the worker thread

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise StoreError("the store is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError("the store is closed")
        return self._conn

    def _transaction(self, begin: str, fn: Callable[..., T], *args: Any) -> T:
        return self._transaction_on(self._connection(), begin, fn, *args)

    def _read_transaction(self, fn: Callable[..., T], *args: Any) -> T:
        conn = self._rconn if self._rconn is not None else self._connection()
        return self._transaction_on(conn, "BEGIN", fn, *args)

    @staticmethod
    def _transaction_on(conn: sqlite3.Connection, begin: str, fn: Callable[..., T], *args: Any) -> T:
        conn.execute(begin)
        try:
            result = fn(conn, *args)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return result

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        """The one way to change the database: `fn(conn, *args)` in one immediate transaction."""
        return await self._call(self._transaction, "BEGIN IMMEDIATE", fn, *args)

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(conn, *args)` on one consistent snapshot, on the reader thread."""
        if self._reader is None:
            return await self._call(self._transaction, "BEGIN", fn, *args)
        return await asyncio.get_running_loop().run_in_executor(self._reader, self._read_transaction, fn, *args)

    # lifecycle

    async def open(self) -> None:
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gateway-store")
        try:
            await self._call(self._connect)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise
        if self.path != ":memory:":
            self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gateway-store-read")
            await asyncio.get_running_loop().run_in_executor(self._reader, self._connect_reader)

    def _connect_reader(self) -> None:
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys=ON")
        self._rconn = conn

    def _connect(self) -> None:
        self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            if self.path != ":memory:":
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StoreError(f"cannot use WAL journal mode on {self.path} (got {mode!r})")
            conn.execute(f"PRAGMA synchronous={self.synchronous.upper()}")
            conn.execute("PRAGMA foreign_keys=ON")
            self._conn = conn
            self._transaction("BEGIN IMMEDIATE", self._migrate)
        except BaseException:
            self._conn = None
            conn.close()
            raise

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        current = conn.execute("PRAGMA user_version").fetchone()[0]
        if current > SCHEMA_VERSION:
            raise StoreError(f"the store's schema version {current} is newer than this gateway's ({SCHEMA_VERSION})")
        for version in range(current + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[version - 1]:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (version, _now_us()))
            conn.execute(f"PRAGMA user_version = {version:d}")
            log.info("store schema migrated to version %d", version)

    async def close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            await asyncio.get_running_loop().run_in_executor(reader, self._disconnect_reader)
            reader.shutdown(wait=False)
        executor, self._executor = self._executor, None
        if executor is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(executor, self._disconnect)
        finally:
            executor.shutdown(wait=False)

    def _disconnect_reader(self) -> None:
        conn, self._rconn = self._rconn, None
        if conn is not None:
            conn.close()

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    async def ping(self) -> None:
        await self._read(lambda conn: conn.execute("SELECT version FROM schema_version LIMIT 1").fetchall())

    async def schema_version(self) -> int:
        """The schema version of the open database."""
        return await self._read(lambda conn: conn.execute("PRAGMA user_version").fetchone()[0])

    # jobs

    @staticmethod
    def _load(conn: sqlite3.Connection, job_id: str, tenant: str | None = None) -> JobRecord | None:
        if tenant is None:
            row = conn.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        else:
            row = conn.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ? AND tenant = ?", (job_id, tenant)
            ).fetchone()
        return None if row is None else _job_from(row)

    @classmethod
    def _load_or_raise(cls, conn: sqlite3.Connection, job_id: str) -> JobRecord:
        job = cls._load(conn, job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    @staticmethod
    def _save(conn: sqlite3.Connection, job: JobRecord) -> None:
        """Write back every mutable column of a loaded job."""
        conn.execute(_UPDATE_JOB, _job_values(job))

    @staticmethod
    def _add_transition(
        conn: sqlite3.Connection, job: JobRecord, at: datetime, factory: WebhookPayloadFactory | None
    ) -> None:
        """Store the job's current version as a transition and queue its webhook when it has a URL."""
        status = job.status
        conn.execute(
            f"INSERT INTO transitions ({_TRANSITION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                job.id,
                job.version,
                _us(at),
                status.state.value,
                status.vendor_status,
                status.stage,
                status.progress,
                status.model_dump_json(),
            ),
        )
        if job.webhook_url and factory is not None:
            event_id = f"evt_{job.id}_{job.version}"
            payload = factory(job, event_id)
            conn.execute(
                f"INSERT INTO outbox ({_OUTBOX_COLUMNS}) VALUES (?, ?, ?, ?, ?, 0, ?, NULL, NULL, ?)",
                (event_id, job.id, job.tenant, job.webhook_url, _json(payload), _us(at), _now_us()),
            )

    async def create_job(
        self,
        record: JobRecord,
        *,
        idempotency: Idempotency | None = None,
        webhook_payload_factory: WebhookPayloadFactory | None = None,
    ) -> tuple[JobRecord, bool]:
        if idempotency is not None and idempotency[0] != record.tenant:
            raise ValueError("the idempotency key's tenant is not the job's tenant")
        job = record.model_copy(deep=True)
        job.version = 1
        if job.status.terminal and job.finished_at is None:
            job.finished_at = job.updated_at
        try:
            return await self._write(self._create, job, idempotency, webhook_payload_factory)
        except _LostRace:
            # another process stored the key between our check and insert: its job is the answer
            return await self._write(self._create, job, idempotency, webhook_payload_factory)

    def _create(
        self,
        conn: sqlite3.Connection,
        job: JobRecord,
        idempotency: Idempotency | None,
        factory: WebhookPayloadFactory | None,
    ) -> tuple[JobRecord, bool]:
        if idempotency is not None:
            existing = self._idempotent(conn, idempotency[0], idempotency[1])
            if existing is not None:
                body_hash, other = existing
                if body_hash != idempotency[2]:
                    raise IdempotencyMismatch(idempotency[0], idempotency[1], other.id)
                return other, False
        try:
            conn.execute(_INSERT_JOB, _job_values(job))
        except sqlite3.IntegrityError:
            raise JobExists(job.id) from None
        if idempotency is not None:
            inserted = conn.execute(
                "INSERT INTO idempotency (tenant, key, body_hash, job_id, created_us) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (tenant, key) DO NOTHING",
                (*idempotency, job.id, _us(job.created_at)),
            ).rowcount
            if inserted != 1:
                raise _LostRace
        self._add_transition(conn, job, job.created_at, factory)
        return job, True

    async def get_job(self, job_id: str, *, tenant: str | None = None) -> JobRecord | None:
        return await self._read(self._load, job_id, tenant)

    @classmethod
    def _idempotent(cls, conn: sqlite3.Connection, tenant: str, key: str) -> tuple[str, JobRecord] | None:
        row = conn.execute(
            "SELECT body_hash, job_id FROM idempotency WHERE tenant = ? AND key = ?", (tenant, key)
        ).fetchone()
        if row is None:
            return None
        return row["body_hash"], cls._load_or_raise(conn, row["job_id"])

    async def find_idempotent(self, tenant: str, key: str) -> tuple[str, JobRecord] | None:
        return await self._read(self._idempotent, tenant, key)

    async def list_jobs(
        self,
        tenant: str,
        *,
        state: State | str | None = None,
        provider: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[list[JobRecord], str | None]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        where = ["tenant = ?"]
        params: list[Any] = [tenant]
        if state is not None:
            where.append("state = ?")
            params.append(State(state).value)
        if provider is not None:
            where.append("provider = ?")
            params.append(provider)
        if cursor is not None:
            where.append("(created_us, id) < (?, ?)")
            params.extend(decode_cursor(cursor))
        sql = f"SELECT {_JOB_COLUMNS} FROM jobs WHERE {' AND '.join(where)} ORDER BY created_us DESC, id DESC LIMIT ?"
        rows = await self._read(lambda conn: conn.execute(sql, (*params, limit + 1)).fetchall())
        jobs = [_job_from(row) for row in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            next_cursor = encode_cursor(last["created_us"], last["id"])
        return jobs, next_cursor

    async def record_status(
        self,
        job_id: str,
        status: CanonicalStatus,
        *,
        checked_at: datetime,
        vendor_ref: dict[str, Any] | None = None,
        webhook_payload_factory: WebhookPayloadFactory | None = None,
    ) -> tuple[JobRecord, bool]:
        factory = webhook_payload_factory or self.webhook_payload_factory
        return await self._write(self._record_status, job_id, status, to_utc(checked_at), vendor_ref, factory)

    def _record_status(
        self,
        conn: sqlite3.Connection,
        job_id: str,
        status: CanonicalStatus,
        checked_at: datetime,
        vendor_ref: dict[str, Any] | None,
        factory: WebhookPayloadFactory | None,
    ) -> tuple[JobRecord, bool]:
        job = self._load_or_raise(conn, job_id)
        previous = job.status
        transitioned = False
        if previous.terminal:
            # terminal is sticky: a later state (non-terminal or another terminal one) is an anomaly
            if is_regression(previous, status) or status.state != previous.state:
                job.anomalies += 1
                log.warning(
                    "job %s: vendor reported %s (%r) after terminal %s; ignored (anomaly %d)",
                    job_id,
                    status.state.value,
                    status.vendor_status,
                    previous.state.value,
                    job.anomalies,
                )
        elif is_transition(previous, status):
            if job.webhook_url and factory is None:
                raise ValueError(f"job {job_id} has a webhook_url but no webhook_payload_factory was given")
            job.status = status.model_copy(deep=True)
            job.version += 1
            job.updated_at = checked_at
            if status.terminal:
                job.finished_at = checked_at
            transitioned = True
        job.checked_at = checked_at
        job.stale = False
        if vendor_ref is not None:
            job.vendor_ref = dict(vendor_ref)
        self._save(conn, job)
        if transitioned:
            self._add_transition(conn, job, checked_at, factory)
        return job, transitioned

    async def mark_stale(self, job_id: str, *, checked_at: datetime | None = None) -> JobRecord | None:
        return await self._write(self._mark_stale, job_id, None if checked_at is None else to_utc(checked_at))

    async def touch(self, job_id: str, *, checked_at: datetime) -> None:
        await self._write(
            lambda conn: conn.execute(
                "UPDATE jobs SET checked_us = ?, stale = 0 WHERE id = ?", (_us(checked_at), job_id)
            )
        )

    def _mark_stale(self, conn: sqlite3.Connection, job_id: str, checked_at: datetime | None) -> JobRecord | None:
        job = self._load(conn, job_id)
        if job is None:
            return None
        job.stale = True
        if checked_at is not None:
            job.checked_at = checked_at
        self._save(conn, job)
        return job

    async def transitions(self, job_id: str, *, after_version: int = 0) -> list[TransitionRecord]:
        rows = await self._read(
            lambda conn: conn.execute(
                f"SELECT {_TRANSITION_COLUMNS} FROM transitions WHERE job_id = ? AND version > ? ORDER BY version",
                (job_id, after_version),
            ).fetchall()
        )
        return [_transition_from(row) for row in rows]

    async def non_terminal_jobs(self) -> list[JobRecord]:
        rows = await self._read(
            lambda conn: conn.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE terminal = 0 ORDER BY created_us, id"
            ).fetchall()
        )
        return [_job_from(row) for row in rows]

    async def count_by_state(self) -> dict[str, int]:
        rows = await self._read(lambda conn: conn.execute("SELECT state, count(*) FROM jobs GROUP BY state").fetchall())
        counts = {state.value: 0 for state in State}
        counts.update({row[0]: row[1] for row in rows})
        return counts

    # results and artifacts

    async def save_result(self, job_id: str, result: dict[str, Any]) -> None:
        await self._write(self._save_result, job_id, _json(result))

    def _save_result(self, conn: sqlite3.Connection, job_id: str, result: str) -> None:
        self._load_or_raise(conn, job_id)
        conn.execute(
            "INSERT INTO results (job_id, result, saved_us) VALUES (?, ?, ?) "
            "ON CONFLICT (job_id) DO UPDATE SET result = excluded.result, saved_us = excluded.saved_us",
            (job_id, result, _now_us()),
        )
        conn.execute("UPDATE jobs SET result_available = 1 WHERE id = ?", (job_id,))

    async def get_result(self, job_id: str) -> dict[str, Any] | None:
        row = await self._read(
            lambda conn: conn.execute("SELECT result FROM results WHERE job_id = ?", (job_id,)).fetchone()
        )
        return None if row is None else json.loads(row[0])

    async def save_artifact(
        self, job_id: str, *, content_type: str, filename: str | None, chunks: AsyncIterator[bytes]
    ) -> StoredArtifact:
        if await self.get_job(job_id) is None:
            raise JobNotFound(job_id)
        name = _artifact_file_name(job_id)
        fd, tmp = await asyncio.to_thread(tempfile.mkstemp, dir=self.artifacts_dir, prefix=f".{name}.", suffix=".part")
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                buffer = bytearray()
                async for chunk in chunks:
                    buffer += chunk
                    size += len(chunk)
                    if len(buffer) >= _WRITE_BUFFER:
                        await asyncio.to_thread(out.write, bytes(buffer))
                        buffer.clear()
                await asyncio.to_thread(_finish_file, out, bytes(buffer))
            final = self.artifacts_dir / name
            await asyncio.to_thread(os.replace, tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        await self._write(self._save_artifact_row, job_id, content_type, filename, size, name)
        return StoredArtifact(job_id=job_id, content_type=content_type, filename=filename, size=size, path=final)

    @staticmethod
    def _save_artifact_row(
        conn: sqlite3.Connection, job_id: str, content_type: str, filename: str | None, size: int, name: str
    ) -> None:
        conn.execute(
            "INSERT INTO artifacts (job_id, content_type, filename, size, file, saved_us) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (job_id) DO UPDATE SET content_type = excluded.content_type, filename = excluded.filename, "
            "size = excluded.size, file = excluded.file, saved_us = excluded.saved_us",
            (job_id, content_type, filename, size, name, _now_us()),
        )

    async def get_artifact(self, job_id: str) -> StoredArtifact | None:
        return await self._read(self._get_artifact, job_id)

    def _get_artifact(self, conn: sqlite3.Connection, job_id: str) -> StoredArtifact | None:
        row = conn.execute(
            "SELECT content_type, filename, size, file FROM artifacts WHERE job_id = ?", (job_id,)
        ).fetchone()
        if row is None:
            return None
        path = self.artifacts_dir / row["file"]
        if not path.is_file():
            log.error("job %s: artifact file %s is missing", job_id, path)
            return None
        return StoredArtifact(
            job_id=job_id, content_type=row["content_type"], filename=row["filename"], size=row["size"], path=path
        )

    # webhook outbox

    async def due_events(self, now: datetime, limit: int = 100) -> list[OutboxEvent]:
        rows = await self._read(
            lambda conn: conn.execute(
                f"SELECT {_OUTBOX_COLUMNS} FROM outbox AS o WHERE delivered_us IS NULL AND next_attempt_us <= ? "
                "AND NOT EXISTS (SELECT 1 FROM outbox AS p WHERE p.job_id = o.job_id AND p.delivered_us IS NULL "
                "AND p.seq < o.seq) ORDER BY next_attempt_us, seq LIMIT ?",
                (_us(now), limit),
            ).fetchall()
        )
        return [_event_from(row) for row in rows]

    async def mark_delivered(self, event_id: str, at: datetime) -> None:
        await self._write(self._update_event, "delivered_us = ?", (_us(at),), event_id)

    @staticmethod
    def _update_event(conn: sqlite3.Connection, assignments: str, values: tuple[Any, ...], event_id: str) -> None:
        """Change an event that is still pending (a delivered event stays delivered)."""
        conn.execute(f"UPDATE outbox SET {assignments} WHERE id = ? AND delivered_us IS NULL", (*values, event_id))

    async def reschedule(
        self, event_id: str, *, next_attempt_at: datetime, attempts: int, last_error: str | None
    ) -> None:
        await self._write(
            self._update_event,
            "next_attempt_us = ?, attempts = ?, last_error = ?",
            (_us(next_attempt_at), attempts, last_error),
            event_id,
        )

    async def pending_event_count(self) -> int:
        return await self._read(
            lambda conn: conn.execute("SELECT count(*) FROM outbox WHERE delivered_us IS NULL").fetchone()[0]
        )


def _finish_file(out: Any, tail: bytes) -> None:
    """Write the last bytes and make the file durable before it is renamed into place."""
    if tail:
        out.write(tail)
    out.flush()
    os.fsync(out.fileno())
