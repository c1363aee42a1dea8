"""The SQLite store's idempotency keys: the job a key produced, and the reservation a request holds on a key
while the vendor works (so concurrent duplicates wait for it instead of reaching the vendor)."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from gateway.store.base import Idempotency, IdempotencyClaim, IdempotencyMismatch, JobNotFound, earlier_job
from gateway.store.codec import from_us, to_us
from gateway.store.records import JobRecord
from gateway.store.rows import JOB_COLUMNS, job_from
from gateway.store.sqlite_db import SqliteDatabase


def key_job(conn: sqlite3.Connection, tenant: str, key: str) -> tuple[str, JobRecord] | None:
    """(body hash, job) of the tenant's key, or None."""
    row = conn.execute(
        "SELECT body_hash, job_id FROM idempotency WHERE tenant = ? AND key = ?", (tenant, key)
    ).fetchone()
    if row is None:
        return None
    job = conn.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?", (row["job_id"],)).fetchone()
    if job is None:
        raise JobNotFound(row["job_id"])
    return row["body_hash"], job_from(job)


def store_key(conn: sqlite3.Connection, idempotency: Idempotency, job_id: str, created_us: int) -> bool:
    """Record the key's job and end any reservation of the key; False when the key already has a job."""
    inserted = conn.execute(
        "INSERT INTO idempotency (tenant, key, body_hash, job_id, created_us) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (tenant, key) DO NOTHING",
        (*idempotency, job_id, created_us),
    ).rowcount
    conn.execute("DELETE FROM idempotency_reservations WHERE tenant = ? AND key = ?", idempotency[:2])
    return inserted == 1


class SqliteIdempotency:
    """The idempotency part of `SqliteStore` (see `Store` for the contract of each method)."""

    db: SqliteDatabase

    @staticmethod
    def _idempotent(conn: sqlite3.Connection, tenant: str, key: str) -> tuple[str, JobRecord] | None:
        return key_job(conn, tenant, key)

    async def find_idempotent(self, tenant: str, key: str) -> tuple[str, JobRecord] | None:
        return await self.db.read(key_job, tenant, key)

    async def reserve_idempotency(
        self, idempotency: Idempotency, *, owner: str, now: datetime, lease_s: float
    ) -> IdempotencyClaim:
        return await self.db.write(self._reserve, idempotency, owner, to_us(now), round(lease_s * 1_000_000))

    @staticmethod
    def _reserve(
        conn: sqlite3.Connection, idempotency: Idempotency, owner: str, now_us: int, lease_us: int
    ) -> IdempotencyClaim:
        tenant, key, body_hash = idempotency
        job = earlier_job(idempotency, key_job(conn, tenant, key))
        if job is not None:
            return IdempotencyClaim(job=job)
        held = conn.execute(
            "SELECT body_hash, owner, expires_us FROM idempotency_reservations WHERE tenant = ? AND key = ?",
            (tenant, key),
        ).fetchone()
        if held is not None and held["owner"] != owner and held["expires_us"] > now_us:
            if held["body_hash"] != body_hash:
                raise IdempotencyMismatch(tenant, key, None)
            return IdempotencyClaim(held_until=from_us(held["expires_us"]))
        conn.execute(
            "INSERT INTO idempotency_reservations (tenant, key, body_hash, owner, expires_us) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (tenant, key) DO UPDATE SET body_hash = excluded.body_hash, owner = excluded.owner, "
            "expires_us = excluded.expires_us",
            (tenant, key, body_hash, owner, now_us + lease_us),
        )
        return IdempotencyClaim(reserved=True)

    async def renew_idempotency(self, tenant: str, key: str, *, owner: str, now: datetime, lease_s: float) -> bool:
        expires_us = to_us(now) + round(lease_s * 1_000_000)
        renewed: int = await self.db.write(
            lambda conn: (
                conn.execute(
                    "UPDATE idempotency_reservations SET expires_us = ? WHERE tenant = ? AND key = ? AND owner = ?",
                    (expires_us, tenant, key, owner),
                ).rowcount
            )
        )
        return renewed == 1
